//! The UI's routes, merged into the API router before its guard layer so
//! the same gate (host, origin, token or session, role, CSRF) applies.

use axum::extract::DefaultBodyLimit;
use axum::http::Method;
use axum::routing::{get, post};
use axum::Router;

use super::{
    assets, build_events, build_page, builds_page, csrf, events, grid, log_page, login, sources,
    workers,
};
use crate::api::AppState;

pub const LOGIN: &str = "/login";
pub const LOGOUT: &str = "/logout";
/// Static files: public (they hold nothing but CSS and the script).
pub const ASSETS: &str = "/ui/assets/";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(builds_page::list))
        .route("/builds", get(builds_page::list))
        .route("/builds/{id}", get(build_page::page))
        .route("/builds/{id}/events", get(build_events::build))
        .route("/builds/{id}/cancel", post(build_page::cancel))
        .route("/builds/{id}/rebuild", post(build_page::rebuild))
        .route(
            "/builds/{id}/attempts/{attempt}/steps/{step}/log",
            get(log_page::page),
        )
        .route(
            "/builds/{id}/attempts/{attempt}/steps/{step}/log/events",
            get(log_page::events),
        )
        .route("/ui/events", get(events::builds))
        .route(LOGIN, get(login::form).post(login::submit))
        .route(LOGOUT, post(login::logout))
        .route("/ui/assets/{name}", get(assets::serve))
        .route("/grid", get(grid::page))
        .route("/workers", get(workers::page))
        .route("/sources", get(sources::page))
        .layer(DefaultBodyLimit::max(csrf::FORM_LIMIT))
}

/// A path the UI serves as HTML: an unauthenticated GET of it is sent to
/// the login form rather than answered 401.
pub fn is_page(path: &str) -> bool {
    !path.starts_with("/api/") && path != "/metrics"
}

/// Reached without a token or session: the login form and static assets.
pub fn is_public(method: &Method, path: &str) -> bool {
    let read = matches!(*method, Method::GET | Method::HEAD);
    path == LOGIN || (read && path.starts_with(ASSETS))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_login_and_assets_are_public() {
        assert!(is_public(&Method::GET, "/login"));
        assert!(is_public(&Method::POST, "/login"));
        assert!(is_public(&Method::GET, "/ui/assets/burst.css"));
        assert!(!is_public(&Method::POST, "/ui/assets/burst.css"));
        for path in [
            "/",
            "/builds",
            "/builds/1",
            "/logout",
            "/ui/events",
            "/api/v1/builds",
        ] {
            assert!(!is_public(&Method::GET, path), "{path}");
        }
        assert!(is_page("/builds/1"));
        assert!(!is_page("/api/v1/builds"));
        assert!(!is_page("/metrics"));
    }
}
