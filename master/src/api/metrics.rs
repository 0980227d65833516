//! `GET /metrics`: the Prometheus text exposition. The guard lets it through
//! for the `metrics` role and above, or bare from loopback with
//! `master.metrics_open`.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::error::HttpError;
use super::AppState;
use crate::metrics::CONTENT_TYPE;

pub async fn metrics(State(state): State<AppState>) -> Result<Response, HttpError> {
    let fleet = state.scheduler.fleet().await?;
    let body = state.metrics.encode(fleet);
    Ok(([(header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response())
}
