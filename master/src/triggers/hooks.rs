//! `POST /hooks/github`, `/hooks/gitlab` and `/hooks/generic/{name}`.
//! They are outside the API token guard (`api/guard.rs` lets `/hooks/`
//! through): each request is authenticated by its source's secret instead,
//! and every refusal is logged like the guard's. Also the read-only views
//! `GET /api/v1/sources` and `GET /api/v1/builds/{id}/reports`, which stay
//! behind the guard.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::{to_bytes, Bytes};
use axum::extract::{ConnectInfo, Path, Request};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use burst_common::error_chain::Chain;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::change::Change;
use super::hub::{HubHandle, Submitter};
use super::signature::{github_valid, token_valid};
use super::status::SourceStatus;
use super::{github, gitlab, source_params};
use crate::config::{Config, LiveConfig, SourceConfig, SourceKind};
use crate::metrics::Metrics;
use crate::model::{now_millis, BuildId};
use crate::store::Store;

/// Largest webhook body read. GitHub caps payloads at 25 MB, but a push
/// of a few hundred commits is well under this; past it the answer is 413.
pub const HOOK_BODY_LIMIT: usize = 5 * 1024 * 1024;
/// Longest delivery id remembered.
const MAX_DELIVERY_ID: usize = 200;

/// What the webhook handlers reach; the daemon adds it as an extension.
#[derive(Clone)]
pub struct Hooks {
    /// The config in force (a reload may change builders).
    pub config: LiveConfig,
    pub store: Arc<dyn Store>,
    pub hub: HubHandle,
    pub submitter: Arc<dyn Submitter>,
    pub metrics: Arc<Metrics>,
    pub status: Arc<SourceStatus>,
    /// The GitHub runner manager (`[github]`): `workflow_job` events go to it.
    pub runners: Option<Arc<crate::github::RunnerManager>>,
}

/// A payload read: a change to act on, or why there is nothing to do.
#[derive(Debug)]
pub(super) enum Parsed {
    Change(Change),
    Ignored(String),
}

/// The routes, for `api::router` to merge. Without the `Hooks` extension
/// (a router built without triggers) they answer 404.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/hooks/github", post(github_hook))
        .route("/hooks/gitlab", post(gitlab_hook))
        .route("/hooks/generic/{name}", post(generic_hook))
        .route("/api/v1/sources", get(super::status::sources))
        .route("/api/v1/builds/{id}/reports", get(build_reports))
}

/// An answer with a JSON body.
fn answer(status: StatusCode, body: serde_json::Value) -> Response {
    (status, Json(body)).into_response()
}

/// A refused request: logged like the API guard's refusals (never the
/// secret or the signature), then answered.
fn refuse(req: &Asked, status: StatusCode, why: impl Into<String>) -> Response {
    let why = why.into();
    tracing::warn!(
        target: "auth",
        caller = "anonymous",
        route = %req.route,
        peer = %req.peer,
        status = status.as_u16(),
        "refused webhook: {why}"
    );
    answer(status, json!({ "error": why }))
}

fn ignored(why: String) -> Response {
    tracing::info!("webhook ignored: {why}");
    answer(
        StatusCode::ACCEPTED,
        json!({ "status": "ignored", "reason": why }),
    )
}

/// The request's route and peer, for the log.
struct Asked {
    route: String,
    peer: String,
}

async fn read(req: Request, route: String) -> Result<(Asked, HeaderMap, Bytes), Box<Response>> {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "unknown".to_owned(), |c| c.0.to_string());
    let asked = Asked { route, peer };
    let (parts, body) = req.into_parts();
    match to_bytes(body, HOOK_BODY_LIMIT).await {
        Ok(bytes) => Ok((asked, parts.headers, bytes)),
        Err(_) => Err(Box::new(refuse(
            &asked,
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is over {HOOK_BODY_LIMIT} bytes, or could not be read"),
        ))),
    }
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The answer of a router built without the `Hooks` extension.
fn no_hooks() -> Response {
    answer(
        StatusCode::NOT_FOUND,
        json!({ "error": "this master has no webhook sources" }),
    )
}

/// The configured sources of `kind` and their secrets' values.
fn candidates(config: &Config, kind: SourceKind) -> Vec<(&SourceConfig, &str)> {
    config
        .sources
        .iter()
        .filter(|s| s.kind == kind)
        .filter_map(|s| {
            let secret = s.secret.as_deref()?;
            Some((s, config.secret_values.get(secret)?))
        })
        .collect()
}

async fn github_hook(ext: Option<Extension<Hooks>>, req: Request) -> Response {
    let Some(Extension(hooks)) = ext else {
        return no_hooks();
    };
    let (asked, headers, body) = match read(req, "POST /hooks/github".into()).await {
        Ok(r) => r,
        Err(r) => return *r,
    };
    let Some(signature) = header(&headers, "x-hub-signature-256") else {
        hooks.metrics.hook_refused("github", "unsigned");
        return refuse(
            &asked,
            StatusCode::UNAUTHORIZED,
            "unsigned: X-Hub-Signature-256 is missing (set the webhook's secret)",
        );
    };
    if header(&headers, "x-github-event") == Some("workflow_job") {
        return workflow_job(&hooks, &asked, &headers, signature, &body).await;
    }
    let config = hooks.config.get();
    let sources = candidates(&config, SourceKind::Github);
    let Some(source) = sources
        .iter()
        .find(|(_, secret)| github_valid(secret, &body, signature))
        .map(|(s, _)| *s)
    else {
        if let Some(r) = runner_app_event(&hooks, &headers, signature, &body) {
            return r;
        }
        hooks.metrics.hook_refused("github", "bad_signature");
        return refuse(
            &asked,
            StatusCode::UNAUTHORIZED,
            "X-Hub-Signature-256 matches no github source's secret",
        );
    };
    let Some(event) = header(&headers, "x-github-event") else {
        return refuse(&asked, StatusCode::BAD_REQUEST, "X-GitHub-Event is missing");
    };
    let delivery = header(&headers, "x-github-delivery");
    let parsed = github::parse(&source.name, event, &body);
    act(&hooks, &asked, source, delivery, parsed).await
}

async fn gitlab_hook(ext: Option<Extension<Hooks>>, req: Request) -> Response {
    let Some(Extension(hooks)) = ext else {
        return no_hooks();
    };
    let (asked, headers, body) = match read(req, "POST /hooks/gitlab".into()).await {
        Ok(r) => r,
        Err(r) => return *r,
    };
    let Some(token) = header(&headers, "x-gitlab-token") else {
        hooks.metrics.hook_refused("gitlab", "unsigned");
        return refuse(
            &asked,
            StatusCode::UNAUTHORIZED,
            "X-Gitlab-Token is missing (set the webhook's secret token)",
        );
    };
    let config = hooks.config.get();
    let sources = candidates(&config, SourceKind::Gitlab);
    // Every candidate is compared, so the time taken does not tell which
    // source (if any) came close.
    let mut found = None;
    for (s, secret) in &sources {
        if token_valid(secret, token) && found.is_none() {
            found = Some(*s);
        }
    }
    let Some(source) = found else {
        hooks.metrics.hook_refused("gitlab", "bad_token");
        return refuse(
            &asked,
            StatusCode::UNAUTHORIZED,
            "X-Gitlab-Token matches no gitlab source's secret",
        );
    };
    let Some(event) = header(&headers, "x-gitlab-event") else {
        return refuse(&asked, StatusCode::BAD_REQUEST, "X-Gitlab-Event is missing");
    };
    // Retries of one event carry the same Idempotency-Key (GitLab 17.4+);
    // older GitLabs send a per-event UUID.
    let delivery =
        header(&headers, "idempotency-key").or_else(|| header(&headers, "x-gitlab-event-uuid"));
    let parsed = gitlab::parse(&source.name, event, &body);
    act(&hooks, &asked, source, delivery, parsed).await
}

/// Another event signed with `[github] webhook_secret`: a GitHub App's
/// webhook also sends `ping` when it is set up, and installation events.
/// They are authentic, so they are answered (200 `pong`, or 202 `ignored`),
/// not refused; none of them launches anything. `None`: not signed so.
fn runner_app_event(
    hooks: &Hooks,
    headers: &HeaderMap,
    signature: &str,
    body: &[u8],
) -> Option<Response> {
    let config = hooks.config.get();
    let g = config.github.as_ref()?;
    let secret = config.secret_values.get(&g.webhook_secret)?;
    if !github_valid(secret, body, signature) {
        return None;
    }
    let event = header(headers, "x-github-event").unwrap_or("");
    tracing::info!(event, "GitHub App event needs nothing");
    Some(if event == "ping" {
        answer(StatusCode::OK, json!({ "status": "pong" }))
    } else {
        answer(
            StatusCode::ACCEPTED,
            json!({ "status": "ignored", "event": event }),
        )
    })
}

/// The delivery-id namespace of `workflow_job` deliveries.
const RUNNER_DELIVERIES: &str = ":github-runners";

/// A `workflow_job` delivery, for the runner manager: signed with
/// `[github] webhook_secret`.
async fn workflow_job(
    hooks: &Hooks,
    asked: &Asked,
    headers: &HeaderMap,
    signature: &str,
    body: &[u8],
) -> Response {
    let config = hooks.config.get();
    let (Some(runners), Some(g)) = (&hooks.runners, &config.github) else {
        hooks.metrics.hook_refused("github", "no_runners");
        return refuse(
            asked,
            StatusCode::NOT_FOUND,
            "workflow_job events need a [github] section",
        );
    };
    let valid = config
        .secret_values
        .get(&g.webhook_secret)
        .is_some_and(|secret| github_valid(secret, body, signature));
    if !valid {
        hooks.metrics.hook_refused("github", "bad_signature");
        return refuse(
            asked,
            StatusCode::UNAUTHORIZED,
            "X-Hub-Signature-256 does not match [github] webhook_secret",
        );
    }
    let event = match crate::github::JobEvent::parse(body) {
        Ok(e) => e,
        Err(why) => return refuse(asked, StatusCode::BAD_REQUEST, why),
    };
    // A redelivery of a `queued` is harmless (the job id is the key), but
    // one of an older action must not undo a newer one.
    if let Some(r) = dedup(
        hooks,
        asked,
        RUNNER_DELIVERIES,
        header(headers, "x-github-delivery"),
    )
    .await
    {
        return r;
    }
    match runners.on_event(&event).await {
        Ok(outcome) => {
            let (status, build) = match &outcome {
                crate::github::JobOutcome::Launched(b)
                | crate::github::JobOutcome::Duplicate(b)
                | crate::github::JobOutcome::CancelledLaunch(b) => (outcome.word(), Some(*b)),
                crate::github::JobOutcome::Started(b) | crate::github::JobOutcome::Completed(b) => {
                    (outcome.word(), *b)
                }
                crate::github::JobOutcome::Unmatched(why)
                | crate::github::JobOutcome::Ignored(why) => {
                    tracing::info!(
                        job = event.workflow_job.id,
                        "workflow_job needs no runner: {why}"
                    );
                    (outcome.word(), None)
                }
            };
            answer(
                StatusCode::ACCEPTED,
                json!({ "status": status, "job": event.workflow_job.id, "build": build }),
            )
        }
        Err(why) => {
            tracing::error!(
                job = event.workflow_job.id,
                "failed to handle a workflow_job event: {why}"
            );
            answer(StatusCode::SERVICE_UNAVAILABLE, json!({ "error": why }))
        }
    }
}

/// After authentication: check the repository, drop redeliveries, hand
/// the change to the hub.
async fn act(
    hooks: &Hooks,
    asked: &Asked,
    source: &SourceConfig,
    delivery: Option<&str>,
    parsed: Result<Parsed, String>,
) -> Response {
    let change = match parsed {
        Ok(Parsed::Change(c)) => c,
        Ok(Parsed::Ignored(why)) => {
            hooks.metrics.trigger_change(&source.name, "ignored");
            return ignored(why);
        }
        Err(why) => return refuse(asked, StatusCode::BAD_REQUEST, why),
    };
    if let Some(repo) = &source.repo {
        if !repo.eq_ignore_ascii_case(&change.repo) {
            hooks.metrics.trigger_change(&source.name, "ignored");
            return ignored(format!(
                "repository {:?} is not source {:?}'s {repo:?}",
                change.repo, source.name
            ));
        }
    }
    if let Err(why) = source_params::of(&change) {
        return refuse(asked, StatusCode::UNPROCESSABLE_ENTITY, why);
    }
    if let Some(r) = dedup(hooks, asked, &source.name, delivery).await {
        return r;
    }
    match hooks.hub.offer(change).await {
        Ok(outcome) => answer(
            StatusCode::ACCEPTED,
            json!({
                "status": "accepted",
                "source": source.name,
                "rules": outcome.rules,
                "builds": outcome.builds,
                "waiting": outcome.waiting,
            }),
        ),
        Err(e) => answer(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({ "error": e.to_string() }),
        ),
    }
}

/// Answers a redelivery (or a store failure); `None` for a new delivery,
/// which is now remembered.
async fn dedup(
    hooks: &Hooks,
    asked: &Asked,
    source: &str,
    delivery: Option<&str>,
) -> Option<Response> {
    let id = delivery?;
    if id.is_empty() || id.len() > MAX_DELIVERY_ID || !id.chars().all(|c| c.is_ascii_graphic()) {
        return Some(refuse(
            asked,
            StatusCode::BAD_REQUEST,
            format!("the delivery id must be 1 to {MAX_DELIVERY_ID} visible ASCII characters"),
        ));
    }
    match hooks.store.record_delivery(source, id, now_millis()).await {
        Ok(true) => None,
        Ok(false) => {
            tracing::info!(source, delivery = id, "webhook redelivery ignored");
            hooks.metrics.trigger_change(source, "duplicate");
            Some(answer(
                StatusCode::OK,
                json!({ "status": "duplicate", "delivery": id }),
            ))
        }
        Err(e) => {
            tracing::error!(source, error = %Chain(&e), "failed to record a webhook delivery");
            Some(answer(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({ "error": format!("failed to record the delivery: {}", Chain(&e)) }),
            ))
        }
    }
}

/// `POST /hooks/generic/{name}`'s body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GenericRequest {
    builder: String,
    #[serde(default)]
    params: BTreeMap<String, String>,
}

#[derive(Serialize)]
struct GenericAnswer {
    status: &'static str,
    builds: Vec<BuildId>,
}

async fn generic_hook(
    ext: Option<Extension<Hooks>>,
    Path(name): Path<String>,
    req: Request,
) -> Response {
    let Some(Extension(hooks)) = ext else {
        return no_hooks();
    };
    let (asked, headers, body) = match read(req, format!("POST /hooks/generic/{name}")).await {
        Ok(r) => r,
        Err(r) => return *r,
    };
    let token = header(&headers, "authorization")
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim());
    let config = hooks.config.get();
    let source = candidates(&config, SourceKind::Generic)
        .into_iter()
        .find(|(s, _)| s.name == name);
    // An unknown name and a wrong token get the same answer, so names
    // cannot be probed.
    let source = match (source, token) {
        (Some((s, secret)), Some(t)) if token_valid(secret, t) => s,
        (_, None) => {
            hooks.metrics.hook_refused("generic", "unsigned");
            return refuse(
                &asked,
                StatusCode::UNAUTHORIZED,
                "authentication required: send `Authorization: Bearer <the source's secret>`",
            );
        }
        _ => {
            hooks.metrics.hook_refused("generic", "bad_token");
            return refuse(
                &asked,
                StatusCode::UNAUTHORIZED,
                "invalid token for this generic source",
            );
        }
    };
    let req: GenericRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return refuse(
                &asked,
                StatusCode::BAD_REQUEST,
                format!(
                    "failed to read the body: {e} (expected {{\"builder\": …, \"params\": {{…}}}})"
                ),
            )
        }
    };
    if !source.builders.contains(&req.builder) {
        return refuse(
            &asked,
            StatusCode::FORBIDDEN,
            format!(
                "source {:?} may not start builder {:?} (it may start: {})",
                source.name,
                req.builder,
                source.builders.join(", ")
            ),
        );
    }
    let delivery =
        header(&headers, "idempotency-key").or_else(|| header(&headers, "x-delivery-id"));
    if let Some(r) = dedup(&hooks, &asked, &source.name, delivery).await {
        return r;
    }
    let submit_id = uuid::Uuid::new_v4().simple().to_string();
    let mut builds = match crate::config::expand_submit(
        &hooks.config.get(),
        &req.builder,
        &req.params,
        &submit_id,
    ) {
        Ok(b) => b,
        Err(e) => {
            let status = if e.is_bad_param() {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::UNPROCESSABLE_ENTITY
            };
            return refuse(&asked, status, e.to_string());
        }
    };
    for b in &mut builds {
        b.submitted_by = Some(format!("source:{}", source.name));
    }
    crate::reporters::watch_submit(
        &hooks.config.get(),
        hooks.store.as_ref(),
        &source.name,
        &builds,
    )
    .await;
    match hooks.submitter.submit(builds).await {
        Ok(ids) => {
            tracing::info!(target: "audit", source = %source.name, builder = %req.builder, builds = ?ids, "builds triggered by a generic webhook");
            hooks.metrics.trigger_change(&source.name, "built");
            (
                StatusCode::CREATED,
                Json(GenericAnswer {
                    status: "accepted",
                    builds: ids,
                }),
            )
                .into_response()
        }
        Err(e) => answer(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({ "error": Chain(&e).to_string() }),
        ),
    }
}

/// `GET /api/v1/builds/{id}/reports`: the outbox rows of one build, so a
/// failed status delivery shows where the build does.
async fn build_reports(ext: Option<Extension<Hooks>>, Path(id): Path<BuildId>) -> Response {
    let Some(Extension(hooks)) = ext else {
        return no_hooks();
    };
    match hooks.store.build_reports(id).await {
        Ok(reports) => Json(reports).into_response(),
        Err(e) => answer(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({ "error": Chain(&e).to_string() }),
        ),
    }
}
