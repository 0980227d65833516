use std::sync::Arc;

use axum::middleware;
use axum::routing::{delete, get, post};
use axum::Router;

use crate::config::LiveConfig;
use crate::logs::LogStore;
use crate::metrics::Metrics;
use crate::scheduler::SchedulerHandle;
use crate::store::Store;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The config in force: take it per request (`config.get()`), a
    /// reload swaps it.
    pub config: LiveConfig,
    /// `POST /api/v1/config/reload` (also SIGHUP).
    pub reloader: Arc<crate::daemon::reload::Reloader>,
    /// `POST /api/v1/gc`; also runs in the background.
    pub janitor: Arc<crate::janitor::Janitor>,
    pub store: Arc<dyn Store>,
    pub scheduler: SchedulerHandle,
    pub logs: Arc<LogStore>,
    pub artifacts: Arc<crate::artifacts::ArtifactStore>,
    pub metrics: Arc<Metrics>,
    /// Browser sessions made at `POST /login` (the web UI).
    pub sessions: Arc<crate::ui::Sessions>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(super::metrics::metrics))
        .route("/readyz", get(super::ready::readyz))
        .route(
            "/api/v1/builds",
            post(super::builds::submit).get(super::builds::list),
        )
        .route("/api/v1/builds/{id}", get(super::builds::get))
        .route("/api/v1/builds/{id}/cancel", post(super::builds::cancel))
        .route("/api/v1/builds/{id}/log", get(super::log_stream::log))
        .route("/api/v1/builds/{id}/artifacts", get(super::artifacts::list))
        .route(
            "/api/v1/builds/{id}/artifacts/{*path}",
            get(super::artifacts::download),
        )
        .route("/api/v1/workers", get(super::workers::workers))
        .route("/api/v1/instances", get(super::workers::instances))
        .route("/api/v1/pools", get(super::workers::pools))
        .route("/api/v1/grid", get(super::grid::grid))
        .route("/api/v1/cost", get(super::cost::cost))
        .route(
            "/api/v1/tokens",
            post(super::tokens::create).get(super::tokens::list),
        )
        .route("/api/v1/tokens/{name}", delete(super::tokens::revoke))
        .route("/api/v1/config/reload", post(super::admin::reload))
        .route("/api/v1/gc", post(super::admin::gc))
        // The web UI, behind the same gate.
        .merge(crate::ui::routes())
        .merge(crate::triggers::routes())
        // `layer`, not `route_layer`: unknown paths are gated too.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            super::guard::guard,
        ))
        .with_state(state)
}
