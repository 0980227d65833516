//! `/api/v1/workers`, `/api/v1/pools` and `/api/v1/instances`. The workers
//! page renders the same loaders, so the API stays the one source.

use axum::extract::{Query, State};
use axum::Json;
use serde::Deserialize;

use super::error::HttpError;
use super::AppState;
use crate::model::{Instance, PoolView, WorkerView};

pub async fn workers(State(state): State<AppState>) -> Result<Json<Vec<WorkerView>>, HttpError> {
    Ok(Json(load_workers(&state).await?))
}

/// Every worker the scheduler holds, by id.
pub async fn load_workers(state: &AppState) -> Result<Vec<WorkerView>, HttpError> {
    Ok(state.scheduler.workers().await?)
}

/// Pools by name: caps, counts, launch backoff and its last error.
pub async fn pools(State(state): State<AppState>) -> Result<Json<Vec<PoolView>>, HttpError> {
    Ok(Json(load_pools(&state).await?))
}

pub async fn load_pools(state: &AppState) -> Result<Vec<PoolView>, HttpError> {
    Ok(state.scheduler.pools().await?)
}

#[derive(Deserialize)]
pub struct LedgerQuery {
    #[serde(default)]
    pub live: bool,
    #[serde(default = "super::query::default_limit")]
    pub limit: u32,
}

/// The instance ledger: everything burst launched, newest first (`?live=true`
/// for what may still exist).
pub async fn instances(
    State(state): State<AppState>,
    Query(q): Query<LedgerQuery>,
) -> Result<Json<Vec<Instance>>, HttpError> {
    Ok(Json(load_instances(&state, &q).await?))
}

pub async fn load_instances(state: &AppState, q: &LedgerQuery) -> Result<Vec<Instance>, HttpError> {
    let rows = if q.live {
        state.store.live_instances().await?
    } else {
        state
            .store
            .list_instances(super::query::clamp(q.limit))
            .await?
    };
    Ok(rows)
}
