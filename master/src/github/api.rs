//! The GitHub REST calls the runner manager makes, each through one
//! `call`: authentication (App installation tokens, cached, or a
//! fine-grained token), the rate gate (`rate.rs`), retries of 5xx and
//! network errors with jittered backoff, and a metric per call.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use burst_common::backoff::Backoff;
use burst_common::error_chain::Chain;
use jsonwebtoken::EncodingKey;
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::time::Instant;

use super::app_key::app_jwt;
use super::job::Job;
use super::rate::{Quota, RateGate};
use crate::config::{GithubConfig, Secrets};
use crate::metrics::Metrics;

/// Tries of one call before its error is returned (rate-limit waits do
/// not count: they end when GitHub says).
const MAX_TRIES: u32 = 4;
/// Rate-limit answers waited on before one call gives up.
const MAX_RATE_WAITS: u32 = 8;
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Installation tokens live an hour; one is replaced well before.
const TOKEN_REUSE: Duration = Duration::from_secs(45 * 60);
/// Pages listed at most (100 items each).
const MAX_PAGES: u32 = 20;

/// Where runners register: a repository or an organization.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    Repo(String),
    Org(String),
}

impl Scope {
    fn path(&self) -> String {
        match self {
            Self::Repo(r) => format!("repos/{r}"),
            Self::Org(o) => format!("orgs/{o}"),
        }
    }

    /// The account whose installation token a call uses.
    pub fn account(&self) -> &str {
        match self {
            Self::Repo(r) => r.split_once('/').map_or(r.as_str(), |(o, _)| o),
            Self::Org(o) => o,
        }
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Repo(r) => write!(f, "repository {r}"),
            Self::Org(o) => write!(f, "organization {o}"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("failed to call GitHub ({endpoint})")]
    Http {
        endpoint: &'static str,
        #[source]
        source: reqwest::Error,
    },
    #[error("GitHub answered {status} to {endpoint}: {message}")]
    Status {
        endpoint: &'static str,
        status: u16,
        message: String,
    },
    #[error("GitHub kept rate-limiting {endpoint}")]
    RateLimited { endpoint: &'static str },
    #[error("failed to read GitHub's answer to {endpoint}: {detail}")]
    Decode {
        endpoint: &'static str,
        detail: String,
    },
    #[error("failed to authenticate to GitHub: {0}")]
    Auth(String),
}

impl ApiError {
    /// Trying again will not help (bad request, no permission, not found).
    pub fn is_permanent(&self) -> bool {
        match self {
            Self::Status { status, .. } => (400..500).contains(status) && *status != 429,
            Self::Auth(_) => true,
            _ => false,
        }
    }
}

/// How the manager proves who it is.
pub enum Credentials {
    App {
        app_id: u64,
        key: EncodingKey,
        /// Lower-cased account login -> installation id.
        installations: BTreeMap<String, u64>,
    },
    Token(String),
}

impl Credentials {
    /// From `[github]`: the App's key file, or the token's secret value.
    pub fn from_config(g: &GithubConfig, secrets: &Secrets) -> Result<Self, String> {
        if let Some(name) = &g.token_secret {
            let token = secrets
                .get(name)
                .ok_or_else(|| format!("secret {name:?} (github.token_secret) has no value"))?;
            return Ok(Self::Token(token.to_owned()));
        }
        let (Some(app_id), Some(path)) = (g.app_id, &g.private_key_file) else {
            return Err("[github] needs app_id and private_key_file, or token_secret".into());
        };
        Ok(Self::App {
            app_id,
            key: super::app_key::read_app_key(path)?,
            installations: g
                .installations
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), *v))
                .collect(),
        })
    }
}

/// A registered self-hosted runner, as the runners endpoints list it.
#[derive(Debug, Clone, Deserialize)]
pub struct Runner {
    pub id: u64,
    pub name: String,
    pub status: String,
    #[serde(default)]
    pub busy: bool,
}

/// What `generate-jitconfig` answered.
pub struct Jit {
    pub runner_id: u64,
    pub encoded: String,
}

pub struct GithubApi {
    http: reqwest::Client,
    base: String,
    credentials: Credentials,
    gate: Mutex<RateGate>,
    tokens: tokio::sync::Mutex<HashMap<u64, (String, Instant)>>,
    metrics: Arc<Metrics>,
}

impl GithubApi {
    pub fn new(base: &str, credentials: Credentials, metrics: Arc<Metrics>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(CALL_TIMEOUT)
            .user_agent(concat!("burst/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            credentials,
            gate: Mutex::new(RateGate::default()),
            tokens: tokio::sync::Mutex::new(HashMap::new()),
            metrics,
        }
    }

    pub async fn generate_jitconfig(
        &self,
        scope: &Scope,
        name: &str,
        labels: &[String],
        runner_group_id: u64,
    ) -> Result<Jit, ApiError> {
        #[derive(Deserialize)]
        struct Answer {
            runner: Runner,
            encoded_jit_config: String,
        }
        let body = json!({
            "name": name,
            "runner_group_id": runner_group_id,
            "labels": labels,
            "work_folder": "_work",
        });
        let path = format!("{}/actions/runners/generate-jitconfig", scope.path());
        let a: Answer = self
            .call(
                "generate_jitconfig",
                Method::POST,
                &path,
                scope.account(),
                Some(body),
            )
            .await?
            .ok_or(ApiError::Decode {
                endpoint: "generate_jitconfig",
                detail: "an empty answer".into(),
            })?;
        Ok(Jit {
            runner_id: a.runner.id,
            encoded: a.encoded_jit_config,
        })
    }

    pub async fn list_runners(&self, scope: &Scope) -> Result<Vec<Runner>, ApiError> {
        #[derive(Deserialize)]
        struct Page {
            #[serde(default)]
            runners: Vec<Runner>,
        }
        let mut all = Vec::new();
        for page in 1..=MAX_PAGES {
            let path = format!("{}/actions/runners?per_page=100&page={page}", scope.path());
            let p: Option<Page> = self
                .call("list_runners", Method::GET, &path, scope.account(), None)
                .await?;
            let runners = p.map(|p| p.runners).unwrap_or_default();
            let last = runners.len() < 100;
            all.extend(runners);
            if last {
                break;
            }
        }
        Ok(all)
    }

    pub async fn delete_runner(&self, scope: &Scope, id: u64) -> Result<(), ApiError> {
        let path = format!("{}/actions/runners/{id}", scope.path());
        match self
            .call::<Value>(
                "delete_runner",
                Method::DELETE,
                &path,
                scope.account(),
                None,
            )
            .await
        {
            // Already gone (an ephemeral runner removes itself).
            Err(ApiError::Status { status: 404, .. }) | Ok(_) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The queued jobs of `repo`'s queued workflow runs.
    pub async fn queued_jobs(&self, repo: &str) -> Result<Vec<Job>, ApiError> {
        #[derive(Deserialize)]
        struct Run {
            id: u64,
        }
        #[derive(Deserialize)]
        struct Runs {
            #[serde(default)]
            workflow_runs: Vec<Run>,
        }
        #[derive(Deserialize)]
        struct Jobs {
            #[serde(default)]
            jobs: Vec<Job>,
        }
        let account = repo.split_once('/').map_or(repo, |(o, _)| o);
        // A run stays queued until its first job starts; its other jobs
        // (a matrix waiting for runners) are queued in an in_progress run.
        let mut run_ids = std::collections::BTreeSet::new();
        for status in ["queued", "in_progress"] {
            let path = format!("repos/{repo}/actions/runs?status={status}&per_page=100");
            let runs: Option<Runs> = self
                .call("list_runs", Method::GET, &path, account, None)
                .await?;
            run_ids.extend(
                runs.map(|r| r.workflow_runs)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|r| r.id),
            );
        }
        let mut queued = Vec::new();
        for run in run_ids.into_iter().map(|id| Run { id }) {
            let path = format!("repos/{repo}/actions/runs/{}/jobs?per_page=100", run.id);
            let jobs: Option<Jobs> = self
                .call("list_jobs", Method::GET, &path, account, None)
                .await?;
            queued.extend(
                jobs.map(|j| j.jobs)
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|j| j.status == "queued"),
            );
        }
        Ok(queued)
    }

    /// The repositories of organization `org` (reconcile's job listing).
    pub async fn org_repos(&self, org: &str) -> Result<Vec<String>, ApiError> {
        #[derive(Deserialize)]
        struct Repo {
            full_name: String,
        }
        #[derive(Deserialize)]
        struct Installation {
            #[serde(default)]
            repositories: Vec<Repo>,
        }
        let mut all = Vec::new();
        for page in 1..=MAX_PAGES {
            let repos: Vec<Repo> = match self.credentials {
                // What the App was given access to.
                Credentials::App { .. } => {
                    let path = format!("installation/repositories?per_page=100&page={page}");
                    self.call::<Installation>("list_repos", Method::GET, &path, org, None)
                        .await?
                        .map(|i| i.repositories)
                        .unwrap_or_default()
                }
                Credentials::Token(_) => {
                    let path = format!("orgs/{org}/repos?per_page=100&page={page}");
                    self.call::<Vec<Repo>>("list_repos", Method::GET, &path, org, None)
                        .await?
                        .unwrap_or_default()
                }
            };
            let last = repos.len() < 100;
            all.extend(repos.into_iter().map(|r| r.full_name));
            if last {
                break;
            }
        }
        Ok(all)
    }

    /// One call: `None` for an empty answer (204).
    async fn call<T: DeserializeOwned>(
        &self,
        endpoint: &'static str,
        method: Method,
        path: &str,
        account: &str,
        body: Option<Value>,
    ) -> Result<Option<T>, ApiError> {
        let url = format!("{}/{path}", self.base);
        let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
        let (mut tries, mut rate_waits, mut reauth) = (0, 0, false);
        loop {
            self.wait_gate().await;
            let token = self.token(account, reauth).await?;
            let mut req = self
                .http
                .request(method.clone(), &url)
                .bearer_auth(token)
                .header("accept", "application/vnd.github+json")
                .header("x-github-api-version", "2022-11-28");
            if let Some(body) = &body {
                req = req.json(body);
            }
            tries += 1;
            let answer = match req.send().await {
                Ok(a) => a,
                Err(source) => {
                    self.metrics.github_call(endpoint, "error");
                    if tries >= MAX_TRIES {
                        return Err(ApiError::Http { endpoint, source });
                    }
                    let delay = backoff.next_delay();
                    tracing::warn!(endpoint, error = %Chain(&source), "GitHub call failed; trying again in {delay:?}");
                    tokio::time::sleep(delay).await;
                    continue;
                }
            };
            let status = answer.status();
            let quota = Quota::read(answer.headers());
            if let Some(remaining) = quota.remaining {
                self.metrics.github_remaining(remaining);
            }
            let text = answer.text().await.unwrap_or_default();
            let secondary = text.to_ascii_lowercase().contains("secondary rate limit");
            let verdict = self.gate.lock().unwrap_or_else(|p| p.into_inner()).record(
                status.as_u16(),
                quota,
                secondary,
                Instant::now(),
                unix_now(),
            );
            if verdict.limited {
                self.metrics.github_call(endpoint, "rate_limited");
                self.metrics.github_rate_limited();
                rate_waits += 1;
                tracing::warn!(endpoint, wait = ?verdict.wait, "GitHub rate-limited a call; waiting as it asks");
                if rate_waits >= MAX_RATE_WAITS {
                    return Err(ApiError::RateLimited { endpoint });
                }
                continue;
            }
            self.metrics.github_call(endpoint, class(status));
            if status == StatusCode::UNAUTHORIZED && !reauth {
                // A revoked or expired installation token: get a new one.
                reauth = true;
                continue;
            }
            if status.is_server_error() {
                if tries >= MAX_TRIES {
                    return Err(status_error(endpoint, status, &text));
                }
                let delay = backoff.next_delay();
                tracing::warn!(
                    endpoint,
                    status = status.as_u16(),
                    "GitHub failed a call; trying again in {delay:?}"
                );
                tokio::time::sleep(delay).await;
                continue;
            }
            if !status.is_success() {
                return Err(status_error(endpoint, status, &text));
            }
            if text.trim().is_empty() {
                return Ok(None);
            }
            return serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| ApiError::Decode {
                    endpoint,
                    detail: e.to_string(),
                });
        }
    }

    async fn wait_gate(&self) {
        loop {
            let open = self
                .gate
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .open_at(Instant::now());
            match open {
                Some(at) => tokio::time::sleep_until(at).await,
                None => return,
            }
        }
    }

    /// The bearer token for `account`'s calls.
    async fn token(&self, account: &str, renew: bool) -> Result<String, ApiError> {
        let (app_id, key, installations) = match &self.credentials {
            Credentials::Token(t) => return Ok(t.clone()),
            Credentials::App {
                app_id,
                key,
                installations,
            } => (*app_id, key, installations),
        };
        let id = *installations
            .get(&account.to_ascii_lowercase())
            .ok_or_else(|| ApiError::Auth(format!("no installation for account {account:?}")))?;
        let mut tokens = self.tokens.lock().await;
        if let Some((token, at)) = tokens.get(&id) {
            if !renew && at.elapsed() < TOKEN_REUSE {
                return Ok(token.clone());
            }
        }
        #[derive(Deserialize)]
        struct Answer {
            token: String,
        }
        let jwt = app_jwt(app_id, key, unix_now()).map_err(ApiError::Auth)?;
        let url = format!("{}/app/installations/{id}/access_tokens", self.base);
        let answer = self
            .http
            .post(&url)
            .bearer_auth(jwt)
            .header("accept", "application/vnd.github+json")
            .header("x-github-api-version", "2022-11-28")
            .send()
            .await
            .map_err(|source| ApiError::Http {
                endpoint: "installation_token",
                source,
            })?;
        let status = answer.status();
        self.metrics
            .github_call("installation_token", class(status));
        let text = answer.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(status_error("installation_token", status, &text));
        }
        let a: Answer = serde_json::from_str(&text).map_err(|e| ApiError::Decode {
            endpoint: "installation_token",
            detail: e.to_string(),
        })?;
        tokens.insert(id, (a.token.clone(), Instant::now()));
        Ok(a.token)
    }
}

fn class(status: StatusCode) -> &'static str {
    match status.as_u16() {
        200..=299 => "2xx",
        400..=499 => "4xx",
        500..=599 => "5xx",
        _ => "other",
    }
}

/// GitHub's `message`, or the start of the body; never a header.
fn status_error(endpoint: &'static str, status: StatusCode, text: &str) -> ApiError {
    let message = serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
        .unwrap_or_else(|| text.chars().take(200).collect());
    ApiError::Status {
        endpoint,
        status: status.as_u16(),
        message,
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
