//! A fake GitHub Actions API for the runner manager's tests, built from
//! the documented shapes of the REST endpoints burst calls
//! (installation tokens, `generate-jitconfig`, runners, workflow runs and
//! jobs) and of the `workflow_job` webhook, which it delivers to the
//! master signed like GitHub does. It records every call and can be told
//! to fail the next calls of an endpoint (5xx, 403 rate limits, 404s).
//!
//! The fake runner (`fixtures/fake-runner/run.sh`) talks to it through two
//! routes of its own: `POST /_fake/runner/start` with its JIT config takes
//! a queued job its labels fit (GitHub's in_progress webhook goes out) and
//! `POST /_fake/runner/complete` ends it (completed goes out, the
//! ephemeral registration is removed).

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use base64::Engine;
use serde_json::{json, Value};

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    pub path: String,
    pub authorization: Option<String>,
    pub body: Value,
    pub at: std::time::Instant,
    pub wall: std::time::SystemTime,
}

#[derive(Debug, Clone)]
pub struct FakeJob {
    pub id: u64,
    pub run_id: u64,
    pub labels: Vec<String>,
    pub status: String,
    pub conclusion: Option<String>,
    pub runner_name: Option<String>,
    /// How long the fake runner "runs" it, and the outcome it reports.
    pub seconds: f64,
    pub exit: i32,
}

#[derive(Debug, Clone)]
pub struct FakeRunner {
    pub id: u64,
    pub name: String,
    pub labels: Vec<String>,
    pub runner_group_id: u64,
    pub status: String,
    pub busy: bool,
    jit: String,
}

/// A scripted refusal of the next call to an endpoint.
#[derive(Debug, Clone)]
pub struct Fault {
    /// Matched against the path: `generate-jitconfig`, `/runners`, …
    pub endpoint: &'static str,
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub message: &'static str,
}

impl Fault {
    pub fn status(endpoint: &'static str, status: u16) -> Self {
        Self {
            endpoint,
            status,
            headers: Vec::new(),
            message: "fake failure",
        }
    }

    /// A secondary rate limit: 403 with `Retry-After`.
    pub fn secondary(endpoint: &'static str, retry_after: u64) -> Self {
        Self {
            endpoint,
            status: 403,
            headers: vec![("retry-after", retry_after.to_string())],
            message: "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
        }
    }

    /// The primary limit used up: 403, remaining 0, reset at `reset`
    /// (Unix seconds).
    pub fn primary(endpoint: &'static str, reset: u64) -> Self {
        Self {
            endpoint,
            status: 403,
            headers: vec![
                ("x-ratelimit-remaining", "0".into()),
                ("x-ratelimit-reset", reset.to_string()),
            ],
            message: "API rate limit exceeded for installation.",
        }
    }
}

#[derive(Default)]
struct Inner {
    repo: String,
    calls: Vec<Call>,
    faults: VecDeque<Fault>,
    jobs: BTreeMap<u64, FakeJob>,
    runners: BTreeMap<u64, FakeRunner>,
    next_id: u64,
    /// Where webhooks go, and their HMAC key.
    hook: Option<(String, String)>,
    /// `queued` deliveries are dropped (a lost webhook).
    lose_queued: bool,
    /// Runners get no job while set (GitHub has not assigned one yet).
    hold_jobs: bool,
    /// Every delivery sent: (delivery id, action, job id, body).
    deliveries: Vec<(String, String, u64, Vec<u8>)>,
    /// The URL the JIT configs tell the fake runner to call.
    runner_url: String,
    /// Jobs in progress at once, most seen.
    max_in_progress: usize,
    /// Every JIT config handed out.
    issued: Vec<String>,
}

#[derive(Clone)]
pub struct FakeGithub {
    inner: Arc<Mutex<Inner>>,
    addr: SocketAddr,
    http: reqwest::Client,
}

impl FakeGithub {
    /// Listens on `bind:0`; JIT configs name `http://<runner_host>:PORT`
    /// (a Docker bridge's gateway, for runners in containers).
    pub async fn start(
        bind: std::net::IpAddr,
        runner_host: std::net::IpAddr,
        repo: &str,
    ) -> anyhow::Result<FakeGithub> {
        let listener = tokio::net::TcpListener::bind((bind, 0)).await?;
        let addr = listener.local_addr()?;
        let fake = FakeGithub {
            inner: Arc::new(Mutex::new(Inner {
                repo: repo.to_owned(),
                next_id: 1000,
                runner_url: format!("http://{}", SocketAddr::new(runner_host, addr.port())),
                ..Default::default()
            })),
            addr,
            http: reqwest::Client::new(),
        };
        let app = Router::new()
            .route("/app/installations/{id}/access_tokens", post(access_token))
            .route(
                "/repos/{owner}/{repo}/actions/runners/generate-jitconfig",
                post(generate_jitconfig),
            )
            .route("/repos/{owner}/{repo}/actions/runners", get(list_runners))
            .route(
                "/repos/{owner}/{repo}/actions/runners/{id}",
                delete(delete_runner),
            )
            .route(
                "/orgs/{org}/actions/runners/generate-jitconfig",
                post(generate_org_jitconfig),
            )
            .route("/orgs/{org}/actions/runners", get(list_runners))
            .route(
                "/orgs/{org}/actions/runners/{id}",
                delete(delete_org_runner),
            )
            .route("/orgs/{org}/repos", get(org_repos))
            .route("/installation/repositories", get(installation_repos))
            .route("/repos/{owner}/{repo}/actions/runs", get(list_runs))
            .route(
                "/repos/{owner}/{repo}/actions/runs/{run}/jobs",
                get(list_jobs),
            )
            .route("/_fake/runner/start", post(runner_start))
            .route("/_fake/runner/complete", post(runner_complete))
            .layer(axum::middleware::from_fn_with_state(fake.clone(), record))
            .with_state(fake.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(fake)
    }

    /// Loopback only.
    pub async fn start_local(repo: &str) -> anyhow::Result<FakeGithub> {
        let lo = std::net::IpAddr::from([127, 0, 0, 1]);
        Self::start(lo, lo, repo).await
    }

    /// The API root (`[github] api_url`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        f(&mut self.inner.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Webhooks go to `<master>/hooks/github`, signed with `secret`.
    pub fn deliver_to(&self, master_url: &str, secret: &str) {
        let hook = (format!("{master_url}/hooks/github"), secret.to_owned());
        self.with(|i| i.hook = Some(hook));
    }

    /// Drops (true) or sends (false) the `queued` webhooks from now on.
    /// While `hold`, online runners are given no job.
    pub fn hold_jobs(&self, hold: bool) {
        self.with(|i| i.hold_jobs = hold);
    }

    pub fn lose_queued_webhooks(&self, lose: bool) {
        self.with(|i| i.lose_queued = lose);
    }

    /// Refuses the next calls matching each fault, in order.
    pub fn fail_next(&self, faults: impl IntoIterator<Item = Fault>) {
        self.with(|i| i.faults.extend(faults));
    }

    /// Queues a job (its own workflow run) and sends the `queued` webhook.
    pub async fn queue_job(&self, labels: &[&str], seconds: f64, exit: i32) -> u64 {
        self.queue_job_in(None, labels, seconds, exit).await
    }

    /// A job in workflow run `run` (one of an earlier job's), or in a new
    /// run when `None`.
    pub async fn queue_job_in(
        &self,
        run: Option<u64>,
        labels: &[&str],
        seconds: f64,
        exit: i32,
    ) -> u64 {
        let job = self.with(|i| {
            i.next_id += 1;
            let run_id = run.unwrap_or(i.next_id);
            i.next_id += 1;
            let job = FakeJob {
                id: i.next_id,
                run_id,
                labels: labels.iter().map(|l| (*l).to_owned()).collect(),
                status: "queued".into(),
                conclusion: None,
                runner_name: None,
                seconds,
                exit,
            };
            i.jobs.insert(job.id, job.clone());
            job
        });
        self.send("queued", &job).await;
        job.id
    }

    /// Cancels a job that no runner took: GitHub sends `completed` with
    /// conclusion `cancelled` and no runner.
    pub async fn cancel_job(&self, id: u64) {
        let job = self.with(|i| {
            let job = i.jobs.get_mut(&id)?;
            job.status = "completed".into();
            job.conclusion = Some("cancelled".into());
            Some(job.clone())
        });
        if let Some(job) = job {
            self.send("completed", &job).await;
        }
    }

    /// Sends the last delivery again, with the same delivery id (as
    /// GitHub's "Redeliver" does) or a new one.
    pub async fn redeliver_last(&self, same_id: bool) -> anyhow::Result<u16> {
        let last = self.with(|i| i.deliveries.last().cloned());
        let Some((id, _, _, body)) = last else {
            anyhow::bail!("nothing was delivered");
        };
        let id = if same_id { id } else { format!("{id}-again") };
        self.post_hook(&id, body).await
    }

    pub fn calls(&self) -> Vec<Call> {
        self.with(|i| i.calls.clone())
    }

    /// Calls whose path contains `part`.
    pub fn calls_to(&self, part: &str) -> Vec<Call> {
        self.with(|i| {
            i.calls
                .iter()
                .filter(|c| c.path.contains(part))
                .cloned()
                .collect()
        })
    }

    pub fn jobs(&self) -> Vec<FakeJob> {
        self.with(|i| i.jobs.values().cloned().collect())
    }

    pub fn job(&self, id: u64) -> Option<FakeJob> {
        self.with(|i| i.jobs.get(&id).cloned())
    }

    pub fn runners(&self) -> Vec<FakeRunner> {
        self.with(|i| i.runners.values().cloned().collect())
    }

    /// Registers a runner the way another tool would (for reconcile
    /// tests): offline, not busy.
    pub fn register_runner(&self, name: &str) -> u64 {
        self.with(|i| {
            i.next_id += 1;
            let id = i.next_id;
            i.runners.insert(
                id,
                FakeRunner {
                    id,
                    name: name.to_owned(),
                    labels: vec!["self-hosted".into()],
                    runner_group_id: 1,
                    status: "offline".into(),
                    busy: false,
                    jit: String::new(),
                },
            );
            id
        })
    }

    /// Every JIT config handed out, to check none leaked into logs.
    pub fn jit_configs(&self) -> Vec<String> {
        self.with(|i| i.issued.clone())
    }

    pub fn max_in_progress(&self) -> usize {
        self.with(|i| i.max_in_progress)
    }

    /// Deliveries sent so far: (action, job id).
    pub fn deliveries(&self) -> Vec<(String, u64)> {
        self.with(|i| {
            i.deliveries
                .iter()
                .map(|(_, a, j, _)| (a.clone(), *j))
                .collect()
        })
    }

    async fn send(&self, action: &str, job: &FakeJob) {
        let (repo, lose) = self.with(|i| (i.repo.clone(), i.lose_queued));
        let body = json!({
            "action": action,
            "workflow_job": job_json(&repo, job),
            "repository": { "id": 1, "full_name": repo, "private": true },
            "sender": { "login": "octocat" },
        })
        .to_string()
        .into_bytes();
        let id = self.with(|i| {
            i.next_id += 1;
            format!("fake-delivery-{}", i.next_id)
        });
        self.with(|i| {
            i.deliveries
                .push((id.clone(), action.to_owned(), job.id, body.clone()))
        });
        if lose && action == "queued" {
            return;
        }
        // GitHub does not retry a failed delivery by itself: a test that
        // needs one calls `redeliver_last`.
        let _ = self.post_hook(&id, body).await;
    }

    /// The `ping` an App's webhook sends when it is set up, signed with
    /// `secret` (the master's, or a wrong one): the answer's status.
    pub async fn ping(&self, secret: &str) -> anyhow::Result<u16> {
        let Some((url, _)) = self.with(|i| i.hook.clone()) else {
            anyhow::bail!("no webhook URL: call deliver_to first");
        };
        let body =
            json!({ "zen": "Keep it logically awesome.", "hook_id": 1, "hook": { "type": "App" } })
                .to_string()
                .into_bytes();
        let signature = burst_master::triggers::github_signature(secret, &body);
        let answer = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .header("x-github-event", "ping")
            .header("x-github-delivery", "fake-ping")
            .header("x-hub-signature-256", signature)
            .body(body)
            .send()
            .await?;
        Ok(answer.status().as_u16())
    }

    async fn post_hook(&self, id: &str, body: Vec<u8>) -> anyhow::Result<u16> {
        let Some((url, secret)) = self.with(|i| i.hook.clone()) else {
            return Ok(0);
        };
        let signature = burst_master::triggers::github_signature(&secret, &body);
        let answer = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .header("x-github-event", "workflow_job")
            .header("x-github-delivery", id)
            .header("x-hub-signature-256", signature)
            .body(body)
            .send()
            .await?;
        Ok(answer.status().as_u16())
    }
}

impl Inner {
    fn in_progress(&self) -> usize {
        self.jobs
            .values()
            .filter(|j| j.status == "in_progress")
            .count()
    }
}

fn job_json(repo: &str, job: &FakeJob) -> Value {
    json!({
        "id": job.id,
        "run_id": job.run_id,
        "run_attempt": 1,
        "status": job.status,
        "conclusion": job.conclusion,
        "name": format!("job-{}", job.id),
        "labels": job.labels,
        "runner_id": null,
        "runner_name": job.runner_name,
        "runner_group_id": 1,
        "html_url": format!("https://github.com/{repo}/actions/runs/{}/job/{}", job.run_id, job.id),
        "steps": [],
    })
}

fn runner_json(r: &FakeRunner) -> Value {
    json!({
        "id": r.id,
        "name": r.name,
        "os": "Linux",
        "status": r.status,
        "busy": r.busy,
        "labels": r.labels.iter().map(|l| json!({ "id": 1, "name": l, "type": "custom" })).collect::<Vec<_>>(),
    })
}

fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({ "message": message, "documentation_url": "https://docs.github.com/rest" })),
    )
        .into_response()
}

/// Records each call and answers a scripted fault instead, if one matches.
async fn record(
    State(fake): State<FakeGithub>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let path = uri.path().to_owned();
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let fault = fake.with(|i| {
        i.calls.push(Call {
            method: method.to_string(),
            path: path.clone(),
            authorization: headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            at: std::time::Instant::now(),
            wall: std::time::SystemTime::now(),
        });
        let at = i.faults.iter().position(|f| path.contains(f.endpoint))?;
        i.faults.remove(at)
    });
    if let Some(f) = fault {
        let mut resp = error(
            StatusCode::from_u16(f.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            f.message,
        );
        for (k, v) in f.headers {
            if let Ok(v) = v.parse() {
                resp.headers_mut().insert(k, v);
            }
        }
        return resp;
    }
    let req = axum::extract::Request::from_parts(parts, axum::body::Body::from(bytes));
    let mut resp = next.run(req).await;
    resp.headers_mut().insert(
        "x-ratelimit-remaining",
        "4999".parse().unwrap_or_else(|_| unreachable!()),
    );
    resp
}

/// An installation token, for a well-formed App JWT.
async fn access_token(Path(id): Path<u64>, headers: HeaderMap) -> Response {
    let jwt = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let claims = jwt
        .split('.')
        .nth(1)
        .and_then(|c| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(c)
                .ok()
        })
        .and_then(|c| serde_json::from_slice::<Value>(&c).ok());
    let Some(claims) = claims.filter(|c| c.get("iss").is_some() && c.get("exp").is_some()) else {
        return error(
            StatusCode::UNAUTHORIZED,
            "A JSON web token could not be decoded",
        );
    };
    (
        StatusCode::CREATED,
        Json(json!({
            "token": format!("ghs_fake_{id}_{}", claims["iss"].as_str().unwrap_or("")),
            "expires_at": "2099-01-01T00:00:00Z",
            "permissions": { "administration": "write", "actions": "read", "metadata": "read" },
        })),
    )
        .into_response()
}

fn authorized(headers: &HeaderMap) -> bool {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("Bearer ghs_fake_") || v == "Bearer fake-fine-grained-token")
}

async fn generate_jitconfig(
    State(fake): State<FakeGithub>,
    Path((owner, repo)): Path<(String, String)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let known = fake.with(|i| format!("{owner}/{repo}") == i.repo);
    jit_for(&fake, known, &headers, &body)
}

/// `POST /orgs/{org}/actions/runners/generate-jitconfig`: the org owns the
/// fake's repository.
async fn generate_org_jitconfig(
    State(fake): State<FakeGithub>,
    Path(org): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let known = fake.with(|i| i.repo.split('/').next() == Some(org.as_str()));
    jit_for(&fake, known, &headers, &body)
}

/// The organization's repositories (a token's listing).
async fn org_repos(
    State(fake): State<FakeGithub>,
    Path(org): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !authorized(&headers) {
        return error(StatusCode::UNAUTHORIZED, "Bad credentials");
    }
    let repo = fake.with(|i| i.repo.clone());
    if repo.split('/').next() != Some(org.as_str()) {
        return error(StatusCode::NOT_FOUND, "Not Found");
    }
    Json(json!([{ "id": 1, "full_name": repo, "private": true }])).into_response()
}

/// The repositories an App's installation may use.
async fn installation_repos(State(fake): State<FakeGithub>, headers: HeaderMap) -> Response {
    if !authorized(&headers) {
        return error(StatusCode::UNAUTHORIZED, "Bad credentials");
    }
    let repo = fake.with(|i| i.repo.clone());
    Json(json!({
        "total_count": 1,
        "repositories": [{ "id": 1, "full_name": repo, "private": true }],
    }))
    .into_response()
}

fn jit_for(fake: &FakeGithub, known: bool, headers: &HeaderMap, body: &Value) -> Response {
    if !authorized(headers) {
        return error(StatusCode::UNAUTHORIZED, "Bad credentials");
    }
    let name = body["name"].as_str().unwrap_or("").to_owned();
    let labels: Vec<String> = body["labels"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|l| l.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let group = body["runner_group_id"].as_u64().unwrap_or(0);
    if name.is_empty() || labels.is_empty() || group == 0 {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "Validation Failed");
    }
    let made = fake.with(|i| {
        if !known {
            return Err((StatusCode::NOT_FOUND, "Not Found"));
        }
        if i.runners.values().any(|r| r.name == name) {
            return Err((
                StatusCode::CONFLICT,
                "Already exists - A runner with the same name already exists.",
            ));
        }
        i.next_id += 1;
        let id = i.next_id;
        let secret = format!("s{}x{}", id * 7919, id * 104_729);
        let url = base64::engine::general_purpose::STANDARD.encode(&i.runner_url);
        let jit = format!("fakejit.{url}.{id}.{secret}");
        let runner = FakeRunner {
            id,
            name: name.clone(),
            labels,
            runner_group_id: group,
            status: "offline".into(),
            busy: false,
            jit: jit.clone(),
        };
        i.issued.push(jit.clone());
        i.runners.insert(id, runner.clone());
        Ok((runner, jit))
    });
    match made {
        Ok((runner, jit)) => (
            StatusCode::CREATED,
            Json(json!({ "runner": runner_json(&runner), "encoded_jit_config": jit })),
        )
            .into_response(),
        Err((status, message)) => error(status, message),
    }
}

async fn list_runners(
    State(fake): State<FakeGithub>,
    headers: HeaderMap,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    if !authorized(&headers) {
        return error(StatusCode::UNAUTHORIZED, "Bad credentials");
    }
    let page: usize = q.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
    let per: usize = q.get("per_page").and_then(|p| p.parse().ok()).unwrap_or(30);
    let (total, runners) = fake.with(|i| {
        let all: Vec<Value> = i.runners.values().map(runner_json).collect();
        let page: Vec<Value> = all
            .iter()
            .skip((page - 1) * per)
            .take(per)
            .cloned()
            .collect();
        (all.len(), page)
    });
    Json(json!({ "total_count": total, "runners": runners })).into_response()
}

async fn delete_runner(
    State(fake): State<FakeGithub>,
    headers: HeaderMap,
    Path((_, _, id)): Path<(String, String, u64)>,
) -> Response {
    remove_runner(&fake, &headers, id)
}

async fn delete_org_runner(
    State(fake): State<FakeGithub>,
    headers: HeaderMap,
    Path((_, id)): Path<(String, u64)>,
) -> Response {
    remove_runner(&fake, &headers, id)
}

fn remove_runner(fake: &FakeGithub, headers: &HeaderMap, id: u64) -> Response {
    if !authorized(headers) {
        return error(StatusCode::UNAUTHORIZED, "Bad credentials");
    }
    // GitHub refuses to remove a runner that is running a job.
    let busy = fake.with(|i| i.runners.get(&id).map(|r| (r.busy, r.name.clone())));
    if let Some((true, name)) = busy {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            &format!("Bad request - Runner \"{name}\" is still running a job"),
        );
    }
    match fake.with(|i| i.runners.remove(&id)) {
        Some(_) => StatusCode::NO_CONTENT.into_response(),
        None => error(StatusCode::NOT_FOUND, "Not Found"),
    }
}

async fn list_runs(
    State(fake): State<FakeGithub>,
    headers: HeaderMap,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    if !authorized(&headers) {
        return error(StatusCode::UNAUTHORIZED, "Bad credentials");
    }
    let status = q.get("status").cloned();
    let runs: Vec<Value> = fake.with(|i| {
        // A run is queued until one of its jobs starts, and completed when
        // all of them are.
        let mut runs: BTreeMap<u64, Vec<&str>> = BTreeMap::new();
        for j in i.jobs.values() {
            runs.entry(j.run_id).or_default().push(&j.status);
        }
        runs.into_iter()
            .map(|(id, jobs)| {
                let run_status = if jobs.iter().all(|s| *s == "queued") {
                    "queued"
                } else if jobs.iter().all(|s| *s == "completed") {
                    "completed"
                } else {
                    "in_progress"
                };
                (id, run_status)
            })
            .filter(|(_, st)| status.as_deref().is_none_or(|s| s == *st))
            .map(|(id, st)| json!({ "id": id, "status": st, "name": "ci" }))
            .collect()
    });
    Json(json!({ "total_count": runs.len(), "workflow_runs": runs })).into_response()
}

async fn list_jobs(
    State(fake): State<FakeGithub>,
    headers: HeaderMap,
    Path((_, _, run)): Path<(String, String, u64)>,
) -> Response {
    if !authorized(&headers) {
        return error(StatusCode::UNAUTHORIZED, "Bad credentials");
    }
    let jobs: Vec<Value> = fake.with(|i| {
        i.jobs
            .values()
            .filter(|j| j.run_id == run)
            .map(|j| job_json(&i.repo, j))
            .collect()
    });
    Json(json!({ "total_count": jobs.len(), "jobs": jobs })).into_response()
}

/// The fake runner presents its JIT config: it is online, and takes the
/// oldest queued job its labels fit, if any (`{"job": null}` otherwise:
/// it asks again).
async fn runner_start(State(fake): State<FakeGithub>, body: Bytes) -> Response {
    let jit = String::from_utf8_lossy(&body).trim().to_owned();
    let taken = fake.with(|i| {
        let runner = i
            .runners
            .values_mut()
            .find(|r| r.jit == jit && !jit.is_empty())?;
        runner.status = "online".into();
        if runner.busy {
            return Some(None);
        }
        if i.hold_jobs {
            return Some(None);
        }
        let labels = runner.labels.clone();
        let name = runner.name.clone();
        let fits = |j: &FakeJob| {
            j.status == "queued"
                && j.labels
                    .iter()
                    .all(|l| labels.iter().any(|o| o.eq_ignore_ascii_case(l)))
        };
        let job = i.jobs.values_mut().find(|j| fits(j))?;
        job.status = "in_progress".into();
        job.runner_name = Some(name);
        let job = job.clone();
        if let Some(r) = i.runners.values_mut().find(|r| r.jit == jit) {
            r.busy = true;
        }
        i.max_in_progress = i.max_in_progress.max(i.in_progress());
        Some(Some(job))
    });
    match taken {
        None if !fake.with(|i| i.runners.values().any(|r| r.jit == jit)) => {
            error(StatusCode::UNAUTHORIZED, "unknown JIT config")
        }
        Some(Some(job)) => {
            fake.send("in_progress", &job).await;
            Json(json!({ "job": job.id, "sleep": job.seconds.to_string(), "exit": job.exit }))
                .into_response()
        }
        _ => Json(json!({ "job": null })).into_response(),
    }
}

/// `<jit> <job>`: the job is over; its conclusion follows the exit the
/// fake runner was told, and the ephemeral registration goes.
async fn runner_complete(State(fake): State<FakeGithub>, body: Bytes) -> Response {
    let text = String::from_utf8_lossy(&body).to_string();
    let mut parts = text.split_whitespace();
    let (Some(jit), Some(job)) = (
        parts.next(),
        parts.next().and_then(|j| j.parse::<u64>().ok()),
    ) else {
        return error(StatusCode::BAD_REQUEST, "want: <jit> <job>");
    };
    let done = fake.with(|i| {
        let runner = i.runners.values().find(|r| r.jit == jit)?.id;
        i.runners.remove(&runner);
        let job = i.jobs.get_mut(&job)?;
        job.status = "completed".into();
        job.conclusion = Some(if job.exit == 0 { "success" } else { "failure" }.into());
        Some(job.clone())
    });
    match done {
        Some(job) => {
            fake.send("completed", &job).await;
            StatusCode::OK.into_response()
        }
        None => error(StatusCode::NOT_FOUND, "unknown runner or job"),
    }
}
