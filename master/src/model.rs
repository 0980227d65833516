//! The records burst keeps: builds, their attempts and steps, and the
//! instance ledger. They are stored by `store` and served as JSON by `api`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

mod artifact;
mod build_query;
mod github_job;
mod grid;
mod idempotency;
mod pool_view;
mod queue_position;
mod reason;
mod retention;
mod token;
mod trigger;
pub use artifact::{ArtifactInfo, ArtifactSpec, ArtifactWhen};
pub use build_query::BuildQuery;
pub use github_job::GithubJob;
pub use grid::{
    BuildSummary, Grid, GridCell, GridRow, GridSubmit, GRID_DEFAULT_SUBMITS, GRID_MAX_SUBMITS,
};
pub use idempotency::{
    key_problem, IdempotencyKey, SubmitOnce, IDEMPOTENCY_HEADER, KEY_MAX_LEN, KEY_TTL_MILLIS,
};
pub use pool_view::{BudgetView, HostView, PoolView};
pub use queue_position::QueuePosition;
pub use reason::{
    Expiry, InterruptReason, LostReason, QueuedStatus, Retrying, Unservable, WaitReason,
};
pub use retention::{ExpiredBuild, RetentionRule};
pub use token::{CreateTokenRequest, CreateTokenResponse, Role, TokenRecord, TokenView};
pub use trigger::{Report, ScheduleRun, WatchedBuild};

pub type BuildId = i64;

/// Milliseconds since the Unix epoch (wall clock, for display and history).
pub type Millis = i64;

pub fn now_millis() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as Millis)
        .unwrap_or(0)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BuildState {
    Queued,
    Running,
    Succeeded,
    Failed,
    TimedOut,
    Cancelled,
    WorkerLost,
}

impl BuildState {
    pub fn is_finished(self) -> bool {
        !matches!(self, BuildState::Queued | BuildState::Running)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            BuildState::Queued => "queued",
            BuildState::Running => "running",
            BuildState::Succeeded => "succeeded",
            BuildState::Failed => "failed",
            BuildState::TimedOut => "timed_out",
            BuildState::Cancelled => "cancelled",
            BuildState::WorkerLost => "worker_lost",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => BuildState::Queued,
            "running" => BuildState::Running,
            "succeeded" => BuildState::Succeeded,
            "failed" => BuildState::Failed,
            "timed_out" => BuildState::TimedOut,
            "cancelled" => BuildState::Cancelled,
            "worker_lost" => BuildState::WorkerLost,
            _ => return None,
        })
    }
}

/// What a step runs: a script through a shell, or a program and its arguments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Command {
    Script(String),
    Argv(Vec<String>),
    /// The built-in checkout step: the worker fetches the build's revision
    /// into the workspace with git (`worker/src/checkout.rs`).
    Checkout(CheckoutSpec),
    /// A builder's cache, restored or saved by the worker
    /// (`worker/src/cache.rs`); added by the submit, never written as a step.
    Cache(CacheSpec),
}

/// One of a builder's `caches`, as its restore or save step carries it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheSpec {
    pub save: bool,
    pub key: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub restore_keys: Vec<String>,
    pub paths: Vec<String>,
    /// Keys are kept per builder, and per branch too when set.
    #[serde(default)]
    pub per_branch: bool,
}

/// What `checkout = true` (or `uses = "checkout"`) fetches, and how. The
/// repository and revision come from the build's source params
/// (`BURST_REPO_URL`, `BURST_REVISION`) unless `url` names the repository.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckoutSpec {
    /// The repository to fetch from instead of the build's `BURST_REPO_URL`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The whole history instead of the revision alone (`--depth 1`).
    #[serde(default)]
    pub full: bool,
    /// Also `git submodule update --init --recursive`.
    #[serde(default)]
    pub submodules: bool,
    /// A `[secrets]` name: the https token, sent by git as basic auth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// A step as the builder defines it, snapshotted into each build at submit
/// time so a config change does not alter queued builds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepSpec {
    pub name: String,
    pub command: Command,
    /// Used instead of `command` on Windows workers, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command_windows: Option<Command>,
    /// "sh", "bash", "cmd", "powershell", "pwsh"; `None` = the worker's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(
        default,
        with = "humantime_serde::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub timeout: Option<Duration>,
    /// A failure of this step does not fail the build.
    #[serde(default)]
    pub continue_on_failure: bool,
    /// Runs even after an earlier step failed or the build was cancelled.
    #[serde(default)]
    pub always_run: bool,
    /// Names of the master's secrets the step's environment gets. Only the
    /// names are kept; values are added when the step is sent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
    /// Files uploaded to the master after the step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifacts: Option<ArtifactSpec>,
    /// A GitHub Actions runner: the master asks GitHub for a just-in-time
    /// runner config when it sends the step, and the config goes to the
    /// step's stdin (never its environment, log or the API).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runner: Option<RunnerStep>,
}

/// Where a runner registers and what it offers (`StepSpec::runner`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunnerStep {
    /// `owner/name`, or the organization when `org` is set.
    pub target: String,
    #[serde(default)]
    pub org: bool,
    pub labels: Vec<String>,
    pub runner_group_id: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    Pending,
    Running,
    Succeeded,
    Failed,
    TimedOut,
    Cancelled,
    Skipped,
    /// The worker went away while the step ran.
    Lost,
}

impl StepState {
    pub fn as_str(self) -> &'static str {
        match self {
            StepState::Pending => "pending",
            StepState::Running => "running",
            StepState::Succeeded => "succeeded",
            StepState::Failed => "failed",
            StepState::TimedOut => "timed_out",
            StepState::Cancelled => "cancelled",
            StepState::Skipped => "skipped",
            StepState::Lost => "lost",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => StepState::Pending,
            "running" => StepState::Running,
            "succeeded" => StepState::Succeeded,
            "failed" => StepState::Failed,
            "timed_out" => StepState::TimedOut,
            "cancelled" => StepState::Cancelled,
            "skipped" => StepState::Skipped,
            "lost" => StepState::Lost,
            _ => return None,
        })
    }
}

/// One run of one step within an attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRun {
    pub index: u32,
    pub name: String,
    pub state: StepState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Millis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// Bytes of output persisted in the step's log file (the log index).
    pub log_bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptState {
    Running,
    Succeeded,
    Failed,
    TimedOut,
    Cancelled,
    WorkerLost,
    /// The master restarted while the attempt ran: not the worker's fault,
    /// and it never uses up a retry.
    Interrupted,
}

impl AttemptState {
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptState::Running => "running",
            AttemptState::Succeeded => "succeeded",
            AttemptState::Failed => "failed",
            AttemptState::TimedOut => "timed_out",
            AttemptState::Cancelled => "cancelled",
            AttemptState::WorkerLost => "worker_lost",
            AttemptState::Interrupted => "interrupted",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "running" => AttemptState::Running,
            "succeeded" => AttemptState::Succeeded,
            "failed" => AttemptState::Failed,
            "timed_out" => AttemptState::TimedOut,
            "cancelled" => AttemptState::Cancelled,
            "worker_lost" => AttemptState::WorkerLost,
            "interrupted" => AttemptState::Interrupted,
            _ => return None,
        })
    }
}

/// One try of a build on one worker. A build retried after a lost worker has
/// several.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    /// 1-based.
    pub number: u32,
    pub worker_id: String,
    pub pool: String,
    pub state: AttemptState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub started_at: Millis,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Millis>,
    pub steps: Vec<StepRun>,
}

/// A build: one matrix cell of one submit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Build {
    pub id: BuildId,
    /// Shared by the builds one submit created (one per matrix cell).
    pub submit_id: String,
    pub builder: String,
    /// This build's matrix cell: axis name -> value.
    pub cell: BTreeMap<String, String>,
    pub params: BTreeMap<String, String>,
    /// A worker must carry all of these.
    pub labels: Vec<String>,
    pub steps: Vec<StepSpec>,
    pub state: BuildState,
    /// Why the build is where it is: what it waits for, why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// How many times a lost worker may be replaced.
    pub retries: u32,
    pub created_at: Millis,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Millis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Millis>,
    pub attempts: Vec<Attempt>,
    /// The name of the API token that submitted it (None before auth existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submitted_by: Option<String>,
}

/// `GET /api/v1/builds/{id}`: a build and an estimate of what it cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuildDetail {
    #[serde(flatten)]
    pub build: Build,
    /// In the price's currency: `cost`'s total; absent when no attempt ran
    /// on a priced worker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_cost: Option<f64>,
    /// The build's share of its workers' bill: its run time, the boot of a
    /// worker launched for it, its part of their idle time
    /// (`crate::cost::attribution`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<crate::cost::BuildCost>,
    /// A queued build's place in its pool's queue; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<QueuePosition>,
    /// A runner build's GitHub jobs: the one it was launched for and the
    /// one its runner ran (often the same), with their conclusions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub github_jobs: Vec<GithubJob>,
}

/// A build before the store gives it an id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewBuild {
    pub submit_id: String,
    pub builder: String,
    pub cell: BTreeMap<String, String>,
    pub params: BTreeMap<String, String>,
    pub labels: Vec<String>,
    pub steps: Vec<StepSpec>,
    pub retries: u32,
    /// The submitting token's name, recorded for audit and cancel rights.
    pub submitted_by: Option<String>,
}

impl NewBuild {
    pub fn into_build(self, id: BuildId, created_at: Millis) -> Build {
        Build {
            id,
            submit_id: self.submit_id,
            builder: self.builder,
            cell: self.cell,
            params: self.params,
            labels: self.labels,
            steps: self.steps,
            state: BuildState::Queued,
            reason: None,
            retries: self.retries,
            created_at,
            started_at: None,
            finished_at: None,
            attempts: Vec::new(),
            submitted_by: self.submitted_by,
        }
    }
}

/// Where a launched worker stands in the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstanceState {
    /// Written before the provider is called.
    Launching,
    /// The provider returned; the worker has not connected yet.
    Launched,
    Connected,
    Terminating,
    /// Terminated and confirmed gone.
    Gone,
    /// The launch failed and nothing is left of it.
    Failed,
}

impl InstanceState {
    /// Something may still exist at the provider.
    pub fn is_live(self) -> bool {
        !matches!(self, InstanceState::Gone | InstanceState::Failed)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            InstanceState::Launching => "launching",
            InstanceState::Launched => "launched",
            InstanceState::Connected => "connected",
            InstanceState::Terminating => "terminating",
            InstanceState::Gone => "gone",
            InstanceState::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "launching" => InstanceState::Launching,
            "launched" => InstanceState::Launched,
            "connected" => InstanceState::Connected,
            "terminating" => InstanceState::Terminating,
            "gone" => InstanceState::Gone,
            "failed" => InstanceState::Failed,
            _ => return None,
        })
    }
}

/// How `ended_by` starts for a row the master found at startup, left by a
/// previous run, and terminated: an orphan.
pub const REAPED_AT_START: &str = "reaped at start by master";

/// One row of the instance ledger: everything burst ever launched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Instance {
    pub worker_id: String,
    pub pool: String,
    /// Provider kind: "local", "docker"...
    pub provider: String,
    /// The backend's handle, known once the launch returned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_id: Option<String>,
    pub state: InstanceState,
    /// Backend facts: instance type, market, host...
    #[serde(default)]
    pub details: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub launched_at: Millis,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connected_at: Option<Millis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminated_at: Option<Millis>,
    /// Who settled the row and how, e.g. "reaped at start by master m-…".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_by: Option<String>,
    /// SHA-256 (hex) of the resume token the worker was last given, and of
    /// the one it presented to get it. Kept so that a restarted master can
    /// re-admit the worker; never shown (the API skips them).
    #[serde(skip)]
    pub resume_hash: Option<String>,
    #[serde(skip)]
    pub resume_prev_hash: Option<String>,
}

impl Instance {
    /// An orphan of a previous run that this or an earlier start reaped.
    pub fn reaped_orphan(&self) -> bool {
        self.ended_by
            .as_deref()
            .is_some_and(|e| e.starts_with(REAPED_AT_START))
    }
}

/// A worker as `GET /api/v1/workers` shows it (live view from the scheduler).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkerView {
    pub worker_id: String,
    pub pool: String,
    /// "launching", "connecting", "idle", "busy", "draining", "terminating".
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<BuildId>,
    pub builds_done: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
    pub labels: Vec<String>,
    /// Seconds since the worker entered its current state.
    pub state_age_secs: u64,
    /// Provider kind, from the worker's ledger row.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub provider: String,
    /// The backend's handle (container, instance id, `host:pid`) once the
    /// launch returned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_id: Option<String>,
    /// The host it runs on, for multi-host providers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default)]
    pub launched_at: Millis,
    /// USD so far: the ledger's hourly price times the time since launch;
    /// absent when the provider records no price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_dollars: Option<f64>,
}

/// `POST /api/v1/builds` body.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SubmitRequest {
    pub builder: String,
    #[serde(default)]
    pub params: BTreeMap<String, String>,
}

/// `POST /api/v1/builds` answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SubmitResponse {
    pub submit_id: String,
    pub builds: Vec<BuildId>,
}

/// Body of every API error answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiError {
    pub error: String,
}
