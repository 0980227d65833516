//! `/readyz`: whether the master can take work. `/healthz` only says the
//! process answers; this says 503, with the reason, while the store fails.

use axum::extract::State;
use axum::http::StatusCode;

use super::AppState;

pub async fn readyz(State(state): State<AppState>) -> (StatusCode, String) {
    match state.scheduler.store_fault() {
        None => (StatusCode::OK, "ready\n".to_owned()),
        Some(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: the store fails: {reason}\n"),
        ),
    }
}
