use std::collections::BTreeMap;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::Json;
use serde::Deserialize;

use super::caller::Caller;
use super::cost;
use super::error::{not_found, HttpError};
use super::secret_view::mask_build;
use super::submit_body::{SubmitBody, MAX_BATCH_BUILDS};
use super::AppState;
use crate::model::{
    key_problem, now_millis, Build, BuildDetail, BuildId, BuildQuery, BuildState, IdempotencyKey,
    Role, SubmitResponse, IDEMPOTENCY_HEADER,
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
    let (submit_id, ids, replayed) = submit_builds(&state, &caller, &body, key, None).await?;
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

/// Expands and queues a submit: the API's `POST /api/v1/builds` (one or a
/// batch) and the UI's rebuild. `only_cell` keeps just the build of that
/// matrix cell (a rebuild of one cell). Returns the submit id, the build ids
/// and whether the idempotency key replayed an earlier submit.
pub(crate) async fn submit_builds(
    state: &AppState,
    caller: &Caller,
    body: &SubmitBody,
    key: Option<IdempotencyKey>,
    only_cell: Option<&BTreeMap<String, String>>,
) -> Result<(String, Vec<BuildId>, bool), HttpError> {
    let submit_id = uuid::Uuid::new_v4().simple().to_string();
    let mut builds = Vec::new();
    for (index, req) in body.requests() {
        let expanded = crate::config::expand_submit(
            &state.config.get(),
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
    if let Some(cell) = only_cell {
        builds.retain(|b| &b.cell == cell);
        if builds.is_empty() {
            return Err(HttpError(
                StatusCode::CONFLICT,
                format!(
                    "builder {:?} no longer has the matrix cell {cell:?}",
                    body.builders()
                ),
            ));
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
    Ok((submit_id, ids, replayed))
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
    // Listed, not `#[serde(flatten)]`: flattening makes serde_urlencoded
    // refuse the numeric `limit`.
    #[serde(default)]
    builder: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    submitter: Option<String>,
    #[serde(default)]
    before: Option<String>,
}

/// What the builds list may be narrowed to: the API's query parameters and
/// the UI's filter form alike. Empty values (an HTML form's blank field)
/// filter nothing. `before` pages: the builds older than that id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct BuildFilter {
    #[serde(default)]
    pub builder: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub submitter: Option<String>,
    #[serde(default)]
    pub before: Option<String>,
}

fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

impl BuildFilter {
    /// No filter given (paging aside).
    pub fn is_empty(&self) -> bool {
        [&self.builder, &self.state, &self.label, &self.submitter]
            .into_iter()
            .all(|v| given(v).is_none())
    }

    /// The store query: an unknown state or a `before` that is not an id
    /// is refused (400), never read as "no filter".
    pub fn to_query(&self, limit: u32) -> Result<BuildQuery, HttpError> {
        let bad = |what: String| HttpError(StatusCode::BAD_REQUEST, what);
        let state = given(&self.state)
            .map(|s| BuildState::parse(s).ok_or_else(|| bad(format!("unknown build state {s:?}"))))
            .transpose()?;
        let before = given(&self.before)
            .map(|s| {
                s.parse::<BuildId>()
                    .map_err(|_| bad(format!("`before` must be a build id, not {s:?}")))
            })
            .transpose()?;
        let owned = |v: &Option<String>| given(v).map(str::to_owned);
        Ok(BuildQuery {
            builder: owned(&self.builder),
            state,
            label: owned(&self.label),
            submitter: owned(&self.submitter),
            before,
            limit: super::query::clamp(limit),
        })
    }

    /// The filter (and `before`) as a query string, blank values left out.
    pub fn query_string(&self) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("builder", &self.builder),
            ("state", &self.state),
            ("label", &self.label),
            ("submitter", &self.submitter),
            ("before", &self.before),
        ] {
            if let Some(v) = given(v) {
                q.append_pair(k, v);
            }
        }
        q.finish()
    }

    /// An older page (`before` given), not the newest.
    pub fn is_paged(&self) -> bool {
        given(&self.before).is_some()
    }

    /// The same filter from the newest build on (live rows follow the
    /// first page only).
    pub fn newest(&self) -> BuildFilter {
        BuildFilter {
            before: None,
            ..self.clone()
        }
    }
}

/// The newest builds (at most `limit`) that pass the filter, older than
/// its `before`, secrets masked: `GET /api/v1/builds` and the UI's builds
/// page and live rows. One store query over the whole history.
pub(crate) async fn recent(
    state: &AppState,
    filter: &BuildFilter,
    limit: u32,
) -> Result<Vec<Build>, HttpError> {
    let query = filter.to_query(limit)?;
    let mut builds = state.store.query_builds(&query).await?;
    for build in &mut builds {
        mask_build(build, &state.config.get(), state.logs.mask());
    }
    Ok(builds)
}

/// `GET /api/v1/builds[?builder=&state=&label=&submitter=&before=&limit=]`.
/// A full page carries `Link: <…?before=LAST>; rel="next"`.
pub async fn list(
    State(state): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<(HeaderMap, Json<Vec<Build>>), HttpError> {
    let limit = super::query::clamp(q.limit);
    let filter = BuildFilter {
        builder: q.builder,
        state: q.state,
        label: q.label,
        submitter: q.submitter,
        before: q.before,
    };
    let builds = recent(&state, &filter, limit).await?;
    let mut headers = HeaderMap::new();
    if let (Some(last), true) = (builds.last(), limit > 0 && builds.len() == limit as usize) {
        let next = BuildFilter {
            before: Some(last.id.to_string()),
            ..filter.clone()
        };
        let link = format!(
            "</api/v1/builds?{}&limit={limit}>; rel=\"next\"",
            next.query_string()
        );
        if let Ok(value) = HeaderValue::from_str(&link) {
            headers.insert(header::LINK, value);
        }
    }
    Ok((headers, Json(builds)))
}

/// One build, secrets masked, with its estimated cost: `GET
/// /api/v1/builds/{id}` and the UI's build page.
pub(crate) async fn detail(state: &AppState, id: BuildId) -> Result<BuildDetail, HttpError> {
    let mut build = state
        .store
        .get_build(id)
        .await?
        .ok_or_else(|| not_found(id))?;
    mask_build(&mut build, &state.config.get(), state.logs.mask());
    let cost = cost::of_build(state.store.as_ref(), &build, now_millis()).await?;
    let estimated_cost = cost.map(|c| c.total());
    // Asked of the scheduler, which owns the queue; a stopping scheduler
    // just leaves it out.
    let queue = if build.state == BuildState::Queued {
        state.scheduler.queue_position(id).await.ok().flatten()
    } else {
        None
    };
    let github_jobs = if build.builder == crate::config::RUNNER_BUILDER {
        state.store.github_jobs_of_build(id).await?
    } else {
        Vec::new()
    };
    Ok(BuildDetail {
        build,
        estimated_cost,
        cost,
        queue,
        github_jobs,
    })
}

pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<BuildId>,
) -> Result<Json<BuildDetail>, HttpError> {
    Ok(Json(detail(&state, id).await?))
}

#[derive(serde::Serialize)]
pub struct CancelAnswer {
    id: BuildId,
    state: BuildState,
}

/// May this caller cancel that build? Admins any, submitters their own.
pub(crate) fn may_cancel(caller: &Caller, build: &Build) -> bool {
    let own = caller.is_token() && build.submitted_by.as_deref() == Some(caller.name.as_str());
    caller.role >= Role::Admin || (caller.role >= Role::Submitter && own)
}

pub async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<BuildId>,
) -> Result<Json<CancelAnswer>, HttpError> {
    let new_state = cancel_build(&state, &caller, id).await?;
    Ok(Json(CancelAnswer {
        id,
        state: new_state,
    }))
}

/// Cancels after checking the caller's right to: the API's cancel and the
/// UI's Cancel button.
pub(crate) async fn cancel_build(
    state: &AppState,
    caller: &Caller,
    id: BuildId,
) -> Result<BuildState, HttpError> {
    let build = state
        .store
        .get_build(id)
        .await?
        .ok_or_else(|| not_found(id))?;
    if !may_cancel(caller, &build) {
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
    Ok(new_state)
}
