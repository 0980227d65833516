//! The operator's routes (admin role, `guard.rs`): `POST
//! /api/v1/config/reload` and `POST /api/v1/gc[?dry_run=true]`.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use burst_common::error_chain::Chain;
use serde::{Deserialize, Serialize};

use super::{AppState, Caller};
use crate::daemon::reload::ReloadError;
use crate::janitor::GcReport;

/// A refused reload: why, and each problem as `file:line: key: message`.
#[derive(Debug, Serialize, Deserialize)]
pub struct ReloadRefused {
    pub error: String,
    #[serde(default)]
    pub problems: Vec<String>,
}

pub async fn reload(State(state): State<AppState>, caller: Caller) -> Response {
    tracing::info!(target: "audit", caller = %caller.name, "config reload asked for");
    match state.reloader.reload().await {
        Ok(report) => Json(report).into_response(),
        Err(e) => {
            let status = match e {
                ReloadError::Stopped => StatusCode::SERVICE_UNAVAILABLE,
                ReloadError::NoFile => StatusCode::CONFLICT,
                _ => StatusCode::UNPROCESSABLE_ENTITY,
            };
            // The problems are in `error` too, one per line, for clients
            // that show only it (the CLI).
            let mut error = Chain(&e).to_string();
            for problem in e.problems() {
                error.push('\n');
                error.push_str(problem);
            }
            let body = ReloadRefused {
                error,
                problems: e.problems().to_vec(),
            };
            (status, Json(body)).into_response()
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct GcQuery {
    #[serde(default)]
    pub dry_run: bool,
}

pub async fn gc(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<GcQuery>,
) -> Result<Json<GcReport>, super::error::HttpError> {
    tracing::info!(target: "audit", caller = %caller.name, dry_run = q.dry_run, "retention pass asked for");
    Ok(Json(state.janitor.sweep(q.dry_run).await?))
}
