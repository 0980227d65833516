use axum::extract::{Query, State};
use axum::Json;
use serde::Deserialize;

use super::error::HttpError;
use super::AppState;
use crate::model::{Instance, WorkerView};

pub async fn workers(State(state): State<AppState>) -> Result<Json<Vec<WorkerView>>, HttpError> {
    Ok(Json(state.scheduler.workers().await?))
}

#[derive(Deserialize)]
pub struct LedgerQuery {
    #[serde(default)]
    live: bool,
    #[serde(default = "super::query::default_limit")]
    limit: u32,
}

/// The instance ledger: everything burst launched, newest first (`?live=true`
/// for what may still exist).
pub async fn instances(
    State(state): State<AppState>,
    Query(q): Query<LedgerQuery>,
) -> Result<Json<Vec<Instance>>, HttpError> {
    let rows = if q.live {
        state.store.live_instances().await?
    } else {
        state
            .store
            .list_instances(super::query::clamp(q.limit))
            .await?
    };
    Ok(Json(rows))
}
