use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;

use super::cost;
use super::error::{not_found, HttpError};
use super::AppState;
use crate::model::{
    now_millis, Build, BuildDetail, BuildId, BuildState, SubmitRequest, SubmitResponse,
};

pub async fn submit(
    State(state): State<AppState>,
    Json(req): Json<SubmitRequest>,
) -> Result<(StatusCode, Json<SubmitResponse>), HttpError> {
    let submit_id = uuid::Uuid::new_v4().simple().to_string();
    let builds = crate::config::expand_submit(&state.config, &req.builder, &req.params, &submit_id)
        .map_err(|e| {
            tracing::warn!(builder = %req.builder, "submit refused: {e}");
            let status = if e.is_bad_param() {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::UNPROCESSABLE_ENTITY
            };
            HttpError(status, e.to_string())
        })?;
    let ids = state.scheduler.submit(builds).await?;
    Ok((
        StatusCode::CREATED,
        Json(SubmitResponse {
            submit_id,
            builds: ids,
        }),
    ))
}

#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(default = "super::query::default_limit")]
    limit: u32,
}

pub async fn list(
    State(state): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Vec<Build>>, HttpError> {
    Ok(Json(
        state
            .store
            .list_builds(super::query::clamp(q.limit))
            .await?,
    ))
}

pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<BuildId>,
) -> Result<Json<BuildDetail>, HttpError> {
    let build = state
        .store
        .get_build(id)
        .await?
        .ok_or_else(|| not_found(id))?;
    let prices = cost::prices(state.store.as_ref(), &build).await?;
    let estimated_cost = cost::estimate(&build, &prices, now_millis());
    Ok(Json(BuildDetail {
        build,
        estimated_cost,
    }))
}

#[derive(serde::Serialize)]
pub struct CancelAnswer {
    id: BuildId,
    state: BuildState,
}

pub async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<BuildId>,
) -> Result<Json<CancelAnswer>, HttpError> {
    let build = state
        .store
        .get_build(id)
        .await?
        .ok_or_else(|| not_found(id))?;
    if build.state.is_finished() {
        return Err(HttpError(
            StatusCode::CONFLICT,
            format!("build {id} already finished ({})", build.state.as_str()),
        ));
    }
    let new_state = state.scheduler.cancel(id).await?;
    Ok(Json(CancelAnswer {
        id,
        state: new_state,
    }))
}
