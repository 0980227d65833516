//! The configuration file's shape. Every struct denies unknown keys so a typo
//! is an error, not a silently ignored setting. Pools are in `pool.rs`; each
//! provider's section is its own module's (burst_providers).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use burst_providers::config::{AtLeastOne, HttpUrl, Positive};
use serde::Deserialize;

use super::pool::PoolConfig;
use super::secrets::{SecretConfig, Secrets};
use crate::model::StepSpec;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub master: MasterConfig,
    /// Pool name -> pool. Builds go to the first pool (in name order) whose
    /// labels cover theirs.
    #[serde(default)]
    pub pools: BTreeMap<String, PoolConfig>,
    #[serde(default)]
    pub builders: Vec<BuilderConfig>,
    /// Secret name -> where its value is read at start. Steps ask for
    /// secrets by name; see `secrets.rs`.
    #[serde(default)]
    pub secrets: BTreeMap<String, SecretConfig>,
    /// Where changes come from (webhooks, git pollers); see `sources.rs`.
    #[serde(default)]
    pub sources: Vec<super::sources::SourceConfig>,
    /// Which builders a change starts.
    #[serde(default)]
    pub rules: Vec<super::sources::RuleConfig>,
    /// Where the states of triggered builds are sent; see `reporters.rs`.
    #[serde(default)]
    pub reporters: Vec<super::reporters::ReporterConfig>,
    /// Builds started by the clock; see `schedules.rs`.
    #[serde(default)]
    pub schedules: Vec<super::schedules::ScheduleConfig>,
    /// How long finished builds and their logs are kept; see `retention.rs`.
    #[serde(default)]
    pub retention: super::retention::RetentionConfig,
    /// Where builds' files are kept; see `artifacts.rs`.
    #[serde(default)]
    pub artifacts: super::artifacts::ArtifactsConfig,
    /// Ephemeral GitHub Actions runners; see `github.rs`.
    #[serde(default)]
    pub github: Option<super::github::GithubConfig>,
    /// The master's spend limits and how budgets are counted; see `cost.rs`.
    #[serde(default)]
    pub budget: super::cost::BudgetConfig,
    /// `burst simulate`'s simulated providers; see `simulate.rs`.
    #[serde(default)]
    pub simulate: super::simulate::SimulateConfig,
    /// The values, read while loading (never deserialized or serialized).
    #[serde(skip)]
    pub secret_values: Secrets,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MasterConfig {
    /// This master's id, which tags every worker it launches. Unset: the
    /// id in `<state_dir>/master.id`, created at the first start.
    pub id: Option<String>,
    /// Database, logs and worker directories live here.
    pub state_dir: PathBuf,
    /// The HTTP JSON API and `/healthz`.
    pub http_listen: SocketAddr,
    /// The gRPC endpoint workers dial.
    pub grpc_listen: SocketAddr,
    /// The URL handed to workers; defaults to `http://<grpc_listen>`
    /// (`https://` with `tls`).
    pub advertise_url: Option<HttpUrl>,
    /// TLS for the API and the worker endpoint: `"self-signed"` (a CA and
    /// certificate made in `<state_dir>/tls`) or `{ cert = "FILE", key =
    /// "FILE" }`. Required to listen off loopback.
    pub tls: Option<super::tls::TlsConfig>,
    pub heartbeat_interval: Positive,
    /// Missed heartbeats before a worker is declared lost.
    pub heartbeat_misses: AtLeastOne,
    /// How long a busy worker keeps running its step without hearing from
    /// the master (renewed with every heartbeat). Longer survives longer
    /// master outages; it also delays the retry of a lost worker that its
    /// provider cannot terminate.
    pub step_lease: Positive,
    /// On SIGTERM, how long running builds may finish before they are cancelled.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// How many times a build whose worker was lost is retried.
    pub build_retries: u32,
    /// Requests without a token may read (GET) the API. Off by default.
    pub anonymous_read: bool,
    /// Serve the API over plain HTTP on a non-loopback `http_listen`, where
    /// tokens cross the network in clear text. Off by default.
    pub allow_insecure_http: bool,
    /// Host names the API answers to besides the `http_listen` address,
    /// `localhost`, `127.0.0.1` and `[::1]` (others are refused: DNS rebinding).
    pub allowed_hosts: Vec<String>,
    /// Read the admin token from this file instead of generating
    /// `<state_dir>/admin.token`.
    pub admin_token_file: Option<PathBuf>,
    /// Read the admin token from this environment variable.
    pub admin_token_env: Option<String>,
    /// Most output one step run may write (e.g. "100MB"); past it the step
    /// is cancelled and fails. Enforced by the master, whatever the worker does.
    pub step_log_limit: bytesize::ByteSize,
    /// Open connections each endpoint (HTTP, gRPC) holds at most; lowered at
    /// start to fit the open-file limit. Connections past it are closed.
    pub max_connections: usize,
    /// `GET /metrics` without a token, for a scraper on this host: only
    /// loopback peers are let in. Off by default.
    pub metrics_open: bool,
    /// "text" (the default) or "json" (one object per line); `burst master
    /// --log-format` overrides it.
    pub log_format: crate::logging::LogFormat,
}

impl Default for MasterConfig {
    fn default() -> Self {
        Self {
            id: None,
            state_dir: PathBuf::from(".burst"),
            http_listen: SocketAddr::from(([127, 0, 0, 1], 8480)),
            grpc_listen: SocketAddr::from(([127, 0, 0, 1], 8481)),
            advertise_url: None,
            tls: None,
            heartbeat_interval: Positive::secs(10),
            heartbeat_misses: AtLeastOne::new(3),
            step_lease: Positive::secs(120),
            shutdown_grace: Duration::from_secs(30),
            build_retries: 1,
            anonymous_read: false,
            allow_insecure_http: false,
            allowed_hosts: Vec::new(),
            admin_token_file: None,
            admin_token_env: None,
            step_log_limit: bytesize::ByteSize::b(crate::logs::DEFAULT_STEP_LOG_LIMIT),
            max_connections: 1024,
            metrics_open: false,
            log_format: crate::logging::LogFormat::Text,
        }
    }
}

impl MasterConfig {
    pub fn advertise_url(&self) -> String {
        self.advertise_url.as_ref().map_or_else(
            || format!("{}://{}", self.scheme(), self.grpc_listen),
            HttpUrl::to_string,
        )
    }

    /// `https` when the master serves TLS.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuilderConfig {
    pub name: String,
    /// Labels a worker must carry. `{axis}` is replaced by the cell's value,
    /// so `labels = ["{os}"]` sends each cell of an `os` axis to its own pool.
    #[serde(default)]
    pub labels: Vec<String>,
    /// Axis name -> values; one build per combination. Each value reaches the
    /// steps as the environment variable named like the axis, upper-cased.
    #[serde(default)]
    pub matrix: BTreeMap<String, Vec<String>>,
    /// Overrides `master.build_retries`.
    #[serde(default)]
    pub retries: Option<u32>,
    /// Parameter name -> its rules. A submit may set only these (and the
    /// matrix axes); each reaches the steps as an environment variable.
    #[serde(default)]
    pub params: BTreeMap<String, ParamConfig>,
    pub steps: Vec<StepConfig>,
    /// What fresh workers restore before the steps and save after them; see
    /// `caches.rs`.
    #[serde(default)]
    pub caches: Vec<super::caches::CacheConfig>,
}

/// One declared parameter: `params = { REF = { default = "main" } }`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamConfig {
    /// Used when a submit does not set it; without one the variable is
    /// simply absent.
    #[serde(default)]
    pub default: Option<String>,
    /// The only values a submit may give.
    #[serde(default)]
    pub allowed: Option<Vec<String>>,
    /// A pattern the whole value must match (`^…$` is implied).
    #[serde(default)]
    pub regex: Option<String>,
    /// For people reading the config; burst does not use it.
    #[serde(default)]
    pub description: Option<String>,
}

/// A step as written in the config file: `run` (a script) or `argv`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepConfig {
    pub name: String,
    #[serde(default)]
    pub run: Option<String>,
    #[serde(default)]
    pub argv: Option<Vec<String>>,
    /// Script used on Windows workers instead of `run`.
    #[serde(default)]
    pub run_windows: Option<String>,
    #[serde(default)]
    pub shell: Option<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub working_dir: Option<String>,
    #[serde(default)]
    pub timeout: Option<Positive>,
    #[serde(default)]
    pub continue_on_failure: bool,
    #[serde(default)]
    pub always_run: bool,
    /// Names of `[secrets]` this step's environment gets.
    #[serde(default)]
    pub secrets: Vec<String>,
    /// The built-in checkout step: fetch the build's revision into the
    /// workspace (`working_dir`, default the build's directory).
    #[serde(default)]
    pub checkout: bool,
    /// `uses = "checkout"`: the same as `checkout = true`.
    #[serde(default)]
    pub uses: Option<String>,
    /// checkout: the repository URL instead of the build's `BURST_REPO_URL`.
    #[serde(default)]
    pub url: Option<String>,
    /// checkout: the whole history instead of the revision alone.
    #[serde(default)]
    pub full_history: bool,
    /// checkout: also check out the submodules (recursively).
    #[serde(default)]
    pub submodules: bool,
    /// checkout: a `[secrets]` name, the https token (basic auth, user
    /// `x-access-token`, which GitHub and GitLab accept).
    #[serde(default)]
    pub token: Option<String>,
    /// Files uploaded to the master after the step: globs relative to the
    /// build's directory, or `{ paths = [...], when = "always" }`.
    #[serde(default)]
    pub artifacts: Option<super::artifacts::StepArtifacts>,
}

/// The one value `uses` knows.
pub const USES_CHECKOUT: &str = "checkout";

impl StepConfig {
    /// `checkout = true` or `uses = "checkout"`.
    pub fn is_checkout(&self) -> bool {
        self.checkout || self.uses.as_deref() == Some(USES_CHECKOUT)
    }

    /// The step as builds carry it. Validation has already checked that
    /// exactly one of `run`, `argv` and a checkout is set.
    pub fn to_spec(&self) -> StepSpec {
        use crate::model::{CheckoutSpec, Command};
        let command = match (&self.run, &self.argv) {
            _ if self.is_checkout() => Command::Checkout(CheckoutSpec {
                url: self.url.clone(),
                full: self.full_history,
                submodules: self.submodules,
                secret: self.token.clone(),
            }),
            (_, Some(argv)) => Command::Argv(argv.clone()),
            (Some(run), None) => Command::Script(run.clone()),
            (None, None) => Command::Script(String::new()),
        };
        // The token reaches the master's `RunStep` like any step secret
        // (and so is checked before the build starts).
        let mut secrets = self.secrets.clone();
        if let Some(t) = self.token.as_ref().filter(|_| self.is_checkout()) {
            if !secrets.contains(t) {
                secrets.push(t.clone());
            }
        }
        StepSpec {
            name: self.name.clone(),
            command,
            command_windows: self.run_windows.clone().map(Command::Script),
            shell: self.shell.clone(),
            env: self.env.clone(),
            working_dir: self.working_dir.clone(),
            timeout: self.timeout.map(Positive::get),
            continue_on_failure: self.continue_on_failure,
            always_run: self.always_run,
            secrets,
            artifacts: self.artifacts.as_ref().map(|a| a.spec.clone()),
            runner: None,
        }
    }
}
