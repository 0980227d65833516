use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::Json;
use serde::Deserialize;

use super::caller::Caller;
use super::cost;
use super::error::{not_found, HttpError};
use super::secret_view::mask_build;
use super::submit_body::{SubmitBody, MAX_BATCH_BUILDS};
use super::AppState;
use crate::model::{
    key_problem, now_millis, Build, BuildDetail, BuildId, BuildState, IdempotencyKey, Role,
    SubmitResponse, IDEMPOTENCY_HEADER,
};
use crate::scheduler::Submitted;

/// `POST /api/v1/builds`: one submit or a batch (see `submit_body`). A
/// batch is one submit: every element is expanded first (one refused
/// element refuses it all, naming its index), then all its builds are queued
/// with one scheduler message, in one store transaction, under one submit
/// id and one idempotency key.
pub async fn submit(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Json<serde_json::Value>, JsonRejection>,
) -> Result<(StatusCode, HeaderMap, Json<SubmitResponse>), HttpError> {
    let body = SubmitBody::read(body).inspect_err(|HttpError(status, e)| {
        tracing::warn!(by = %caller.name, %status, "submit refused: {e}");
    })?;
    let key = idempotency_key(&headers, &caller, &body)?;
    let submit_id = uuid::Uuid::new_v4().simple().to_string();
    let mut builds = Vec::new();
    for (index, req) in body.requests() {
        let expanded = crate::config::expand_submit(
            &state.config,
            &req.builder,
            &req.params,
            &submit_id,
        )
        .map_err(|e| {
            let status = if e.is_bad_param() {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::UNPROCESSABLE_ENTITY
            };
            let text = match index {
                Some(i) => format!("element {i}: {e}"),
                None => e.to_string(),
            };
            tracing::warn!(by = %caller.name, builder = %req.builder, "submit refused: {text}");
            HttpError(status, text)
        })?;
        builds.extend(expanded);
        if builds.len() > MAX_BATCH_BUILDS {
            let text =
                format!("the batch expands to more than {MAX_BATCH_BUILDS} builds; split it");
            tracing::warn!(by = %caller.name, "submit refused: {text}");
            return Err(HttpError(StatusCode::PAYLOAD_TOO_LARGE, text));
        }
    }
    for b in &mut builds {
        b.submitted_by = Some(caller.name.clone());
    }
    let (submit_id, ids, replayed) = match state.scheduler.submit_once(builds, key).await? {
        Submitted::New(ids) => (submit_id, ids, false),
        Submitted::Replayed { submit_id, builds } => (submit_id, builds, true),
    };
    tracing::info!(
        target: "audit",
        by = %caller.name,
        builders = ?body.builders(),
        submits = body.requests().len(),
        submit_id = %submit_id,
        builds = ?ids,
        replayed,
        "builds submitted"
    );
    let mut answer_headers = HeaderMap::new();
    if replayed {
        answer_headers.insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    }
    Ok((
        StatusCode::CREATED,
        answer_headers,
        Json(SubmitResponse {
            submit_id,
            builds: ids,
        }),
    ))
}

/// Set on the answer to a submit whose key was seen before.
const REPLAYED_HEADER: &str = "idempotent-replayed";

/// The submit's `Idempotency-Key`, checked and scoped to the caller's token.
fn idempotency_key(
    headers: &HeaderMap,
    caller: &Caller,
    body: &SubmitBody,
) -> Result<Option<IdempotencyKey>, HttpError> {
    let Some(value) = headers.get(IDEMPOTENCY_HEADER) else {
        return Ok(None);
    };
    // A value that is not visible ASCII is refused like an empty one.
    let key = value.to_str().unwrap_or_default();
    if let Some(problem) = key_problem(key) {
        return Err(HttpError(StatusCode::BAD_REQUEST, problem));
    }
    Ok(Some(IdempotencyKey::new(&caller.name, key, body)))
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
