//! `GET /login` (the form), `POST /login` (a token in, a session cookie
//! out) and `POST /logout`. Page ids: `#login` (the form), `#token`,
//! `#login-error`.

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use maud::html;
use serde::Deserialize;

use super::layout::{page, Nav};
use super::session;
use crate::api::guard::lookup;
use crate::api::{credentials, AppState, Caller};

#[derive(Deserialize)]
pub struct Next {
    #[serde(default)]
    next: Option<String>,
}

/// `/login?next=<where the browser was going>`.
pub fn login_url(back: &str) -> String {
    let mut url = String::from(super::router::LOGIN);
    if back != "/" {
        url.push_str("?next=");
        url.extend(form_urlencoded::byte_serialize(back.as_bytes()));
    }
    url
}

/// Only a path on this master: `//evil.example` and `/\evil` are browser
/// shorthands for another host, so they fall back to `/`.
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n,
        _ => "/",
    }
}

fn login_page(next: &str, error: Option<&str>) -> String {
    let body = html! {
        h1 { "Log in" }
        p { "Paste an API token (" code { "burst token create" } ", or the admin token in the state dir). \
             The master keeps a session for 12 hours; the token itself is never stored in the browser." }
        @if let Some(e) = error {
            p id="login-error" class="error" { (e) }
        }
        form id="login" method="post" action=(super::router::LOGIN) {
            input type="hidden" name="next" value=(next);
            label for="token" { "Token" }
            input id="token" name="token" type="password" autocomplete="off" required;
            button type="submit" { "Log in" }
        }
    };
    page("Log in", &Caller::anonymous(), Nav::None, body).into_string()
}

pub async fn form(Query(q): Query<Next>) -> Html<String> {
    Html(login_page(safe_next(q.next.as_deref()), None))
}

#[derive(Deserialize)]
pub struct LoginForm {
    token: String,
    #[serde(default)]
    next: Option<String>,
}

pub async fn submit(State(state): State<AppState>, Form(f): Form<LoginForm>) -> Response {
    let next = safe_next(f.next.as_deref()).to_owned();
    let hash = credentials::hash(f.token.trim());
    let caller = match lookup(&state, &hash, None).await {
        Ok(caller) => caller,
        Err(refusal) => {
            tracing::warn!(target: "auth", route = "POST /login", status = refusal.status.as_u16(), "refused login: {}", refusal.why);
            return (
                refusal.status,
                Html(login_page(&next, Some("That token is not valid."))),
            )
                .into_response();
        }
    };
    let id = state.sessions.create(hash);
    tracing::info!(target: "audit", by = %caller.name, role = %caller.role, "logged in to the web UI");
    let cookie = session::set_cookie(&id, state.config.get().master.tls.is_some());
    ([(header::SET_COOKIE, cookie)], Redirect::to(&next)).into_response()
}

pub async fn logout(State(state): State<AppState>, caller: Caller, headers: HeaderMap) -> Response {
    if let Some(id) = session::cookie_value(&headers) {
        state.sessions.remove(id);
    }
    tracing::info!(target: "audit", by = %caller.name, "logged out of the web UI");
    let cookie = session::clear_cookie(state.config.get().master.tls.is_some());
    (
        StatusCode::SEE_OTHER,
        [
            (header::SET_COOKIE, cookie),
            (header::LOCATION, super::router::LOGIN.to_owned()),
        ],
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_this_master() {
        assert_eq!(safe_next(Some("/builds/3?x=1")), "/builds/3?x=1");
        for bad in [
            "//evil.example/",
            "/\\evil.example",
            "https://evil.example",
            "builds",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad}");
        }
        assert_eq!(safe_next(None), "/");
        assert_eq!(login_url("/"), "/login");
        assert_eq!(
            login_url("/builds?state=queued"),
            "/login?next=%2Fbuilds%3Fstate%3Dqueued"
        );
    }

    #[test]
    fn the_login_page_escapes_next() {
        let html = login_page("/\"><script>alert(1)</script>", None);
        assert!(!html.contains("<script>alert"), "{html}");
    }
}
