use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;

use super::caller::Caller;
use super::cost;
use super::error::{not_found, HttpError};
use super::secret_view::mask_build;
use super::AppState;
use crate::model::{
    now_millis, Build, BuildDetail, BuildId, BuildState, Role, SubmitRequest, SubmitResponse,
};

pub async fn submit(
    State(state): State<AppState>,
    caller: Caller,
    Json(req): Json<SubmitRequest>,
) -> Result<(StatusCode, Json<SubmitResponse>), HttpError> {
    let submit_id = uuid::Uuid::new_v4().simple().to_string();
    let mut builds =
        crate::config::expand_submit(&state.config, &req.builder, &req.params, &submit_id)
            .map_err(|e| {
                tracing::warn!(by = %caller.name, builder = %req.builder, "submit refused: {e}");
                let status = if e.is_bad_param() {
                    StatusCode::BAD_REQUEST
                } else {
                    StatusCode::UNPROCESSABLE_ENTITY
                };
                HttpError(status, e.to_string())
            })?;
    for b in &mut builds {
        b.submitted_by = Some(caller.name.clone());
    }
    let ids = state.scheduler.submit(builds).await?;
    tracing::info!(
        target: "audit",
        by = %caller.name,
        builder = %req.builder,
        submit_id = %submit_id,
        builds = ?ids,
        "builds submitted"
    );
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
    let mut builds = state
        .store
        .list_builds(super::query::clamp(q.limit))
        .await?;
    for build in &mut builds {
        mask_build(build, &state.config, state.logs.mask());
    }
    Ok(Json(builds))
}

pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<BuildId>,
) -> Result<Json<BuildDetail>, HttpError> {
    let mut build = state
        .store
        .get_build(id)
        .await?
        .ok_or_else(|| not_found(id))?;
    mask_build(&mut build, &state.config, state.logs.mask());
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
    caller: Caller,
    Path(id): Path<BuildId>,
) -> Result<Json<CancelAnswer>, HttpError> {
    let build = state
        .store
        .get_build(id)
        .await?
        .ok_or_else(|| not_found(id))?;
    let own = caller.is_token() && build.submitted_by.as_deref() == Some(caller.name.as_str());
    if caller.role < Role::Admin && !own {
        tracing::warn!(
            target: "auth",
            caller = %caller.name,
            build = id,
            "refused API request: cancel of another's build"
        );
        return Err(HttpError(
            StatusCode::FORBIDDEN,
            format!(
                "token {:?} may cancel only its own builds; build {id} was submitted by {}",
                caller.name,
                build.submitted_by.as_deref().unwrap_or("an unknown caller")
            ),
        ));
    }
    if build.state.is_finished() {
        return Err(HttpError(
            StatusCode::CONFLICT,
            format!("build {id} already finished ({})", build.state.as_str()),
        ));
    }
    let new_state = state.scheduler.cancel(id).await?;
    tracing::info!(target: "audit", by = %caller.name, build = id, "build cancelled");
    Ok(Json(CancelAnswer {
        id,
        state: new_state,
    }))
}
