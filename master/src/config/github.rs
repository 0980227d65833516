//! `[github]`: ephemeral GitHub Actions runners on burst's pools. A queued
//! `workflow_job` whose `runs-on` labels one `[[github.runners]]` entry
//! covers becomes a one-step runner build on that entry's pool; see
//! `crate::github` and docs/github-actions.md.

use std::collections::BTreeMap;
use std::path::PathBuf;

use burst_providers::config::{AtLeastOne, Check, HttpUrl, Positive};
use serde::Deserialize;

use super::locate::KeyPath;
use super::schema::Config;
use super::validate::Issue;

/// GitHub.com's REST API.
pub const GITHUB_API_URL: &str = "https://api.github.com";
/// The builder name runner builds carry; no `[[builders]]` may use it.
pub const RUNNER_BUILDER: &str = "github-runner";
/// What a Unix worker runs from `runner_dir`: the JIT config is the step's
/// stdin, so it is never in the environment or the log.
pub const DEFAULT_RUNNER_COMMAND: &str = "exec ./run.sh --jitconfig \"$(cat)\"";
/// The same for a Windows worker (PowerShell).
pub const DEFAULT_RUNNER_COMMAND_WINDOWS: &str =
    "& .\\run.cmd --jitconfig ([Console]::In.ReadToEnd()); exit $LASTEXITCODE";

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GithubConfig {
    /// The REST API root; GHES: `https://HOST/api/v3`.
    #[serde(default = "default_api_url")]
    pub api_url: HttpUrl,
    /// A GitHub App: its id, its private key (PEM) and, per account
    /// (user or organization login), its installation id.
    #[serde(default)]
    pub app_id: Option<u64>,
    #[serde(default)]
    pub private_key_file: Option<PathBuf>,
    #[serde(default)]
    pub installations: BTreeMap<String, u64>,
    /// Or a fine-grained token: a `[secrets]` name.
    #[serde(default)]
    pub token_secret: Option<String>,
    /// A `[secrets]` name: the webhook's HMAC key.
    pub webhook_secret: String,
    /// Runners register on these repositories (`owner/name`) ...
    #[serde(default)]
    pub repos: Vec<String>,
    /// ... or on this organization.
    #[serde(default)]
    pub org: Option<String>,
    /// Where the runner is installed on the workers.
    #[serde(default = "default_runner_dir")]
    pub runner_dir: String,
    #[serde(default = "default_runner_dir_windows")]
    pub runner_dir_windows: String,
    /// Run by `sh` in `runner_dir`, with the JIT config on stdin.
    #[serde(default = "default_runner_command")]
    pub runner_command: String,
    /// Run by PowerShell in `runner_dir_windows` on Windows workers.
    #[serde(default = "default_runner_command_windows")]
    pub runner_command_windows: String,
    /// How often queued jobs and registered runners are listed (webhooks
    /// get lost).
    #[serde(default = "default_reconcile")]
    pub reconcile_interval: Positive,
    /// An offline runner named by this master is removed after this long.
    #[serde(default = "default_offline")]
    pub offline_runner_timeout: Positive,
    /// Never more JIT configs than this per minute.
    #[serde(default = "default_jit_rate")]
    pub max_jit_configs_per_minute: AtLeastOne,
    /// The runner build's step timeout.
    #[serde(default = "default_job_timeout")]
    pub job_timeout: Positive,
    /// Which pool serves which labels, first match wins.
    #[serde(default)]
    pub runners: Vec<RunnerEntry>,
}

/// One `[[github.runners]]`: a pool and the runner labels it offers.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunnerEntry {
    pub pool: String,
    /// Registered with each runner; a job's `runs-on` must all be among
    /// them (compared case-insensitively, as GitHub does).
    pub labels: Vec<String>,
    /// GitHub's runner group; 1 is "Default".
    #[serde(default = "default_group")]
    pub runner_group_id: u64,
}

impl RunnerEntry {
    /// Every label of `runs_on` is offered here.
    pub fn covers(&self, runs_on: &[String]) -> bool {
        runs_on
            .iter()
            .all(|l| self.labels.iter().any(|o| o.eq_ignore_ascii_case(l)))
    }
}

impl GithubConfig {
    /// The first entry whose labels cover `runs_on`.
    pub fn entry_for(&self, runs_on: &[String]) -> Option<&RunnerEntry> {
        if runs_on.is_empty() {
            return None;
        }
        self.runners.iter().find(|e| e.covers(runs_on))
    }

    /// The API root without a trailing `/`.
    pub fn api(&self) -> &str {
        self.api_url.trim_end_matches('/')
    }
}

fn default_api_url() -> HttpUrl {
    HttpUrl::new(GITHUB_API_URL)
}
fn default_runner_dir() -> String {
    "/opt/actions-runner".into()
}
fn default_runner_dir_windows() -> String {
    "C:\\actions-runner".into()
}
fn default_runner_command() -> String {
    DEFAULT_RUNNER_COMMAND.into()
}
fn default_runner_command_windows() -> String {
    DEFAULT_RUNNER_COMMAND_WINDOWS.into()
}
fn default_reconcile() -> Positive {
    Positive::secs(180)
}
fn default_offline() -> Positive {
    Positive::secs(600)
}
fn default_jit_rate() -> AtLeastOne {
    AtLeastOne::new(30)
}
fn default_job_timeout() -> Positive {
    Positive::secs(6 * 3600)
}
fn default_group() -> u64 {
    1
}

/// `owner/name` with GitHub's allowed characters.
pub fn is_repo_name(s: &str) -> bool {
    let ok = |p: &str| {
        !p.is_empty()
            && p.len() <= 100
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    };
    matches!(s.split_once('/'), Some((o, n)) if ok(o) && ok(n))
}

pub(crate) fn check(config: &Config) -> Vec<Issue> {
    let Some(g) = &config.github else {
        return Vec::new();
    };
    let mut issues = Vec::new();
    let root = KeyPath::root().key("github");
    let mut push = |path: KeyPath, message: String| issues.push(Issue { path, message });
    if let Some(p) = g.api_url.problem() {
        push(root.key("api_url"), p);
    }
    for (key, d) in [
        ("reconcile_interval", g.reconcile_interval),
        ("offline_runner_timeout", g.offline_runner_timeout),
        ("job_timeout", g.job_timeout),
    ] {
        if let Some(p) = d.problem() {
            push(root.key(key), p);
        }
    }
    if let Some(p) = g.max_jit_configs_per_minute.problem() {
        push(root.key("max_jit_configs_per_minute"), p);
    }
    let app = g.app_id.is_some() || g.private_key_file.is_some() || !g.installations.is_empty();
    match (app, &g.token_secret) {
        (true, Some(_)) => push(
            root.key("token_secret"),
            "set either a GitHub App (app_id, private_key_file, installations) or token_secret, not both".into(),
        ),
        (false, None) => push(
            root.clone(),
            "set a GitHub App (app_id, private_key_file, installations) or token_secret".into(),
        ),
        (true, None) => {
            if g.app_id.is_none() {
                push(root.key("app_id"), "a GitHub App needs its app_id".into());
            }
            match &g.private_key_file {
                None => push(
                    root.key("private_key_file"),
                    "a GitHub App needs private_key_file (the PEM key GitHub generated)".into(),
                ),
                Some(path) => {
                    if let Err(why) = crate::github::read_app_key(path) {
                        push(root.key("private_key_file"), why);
                    }
                }
            }
            if g.installations.is_empty() {
                push(
                    root.key("installations"),
                    "a GitHub App needs installations = { ACCOUNT = ID }".into(),
                );
            }
        }
        (false, Some(name)) => {
            if !config.secrets.contains_key(name) {
                push(
                    root.key("token_secret"),
                    format!("unknown secret {name:?} (declare it under [secrets])"),
                );
            }
        }
    }
    if !config.secrets.contains_key(&g.webhook_secret) {
        push(
            root.key("webhook_secret"),
            format!(
                "unknown secret {:?} (declare it under [secrets])",
                g.webhook_secret
            ),
        );
    }
    match (&g.org, g.repos.is_empty()) {
        (Some(_), false) => push(
            root.key("org"),
            "set either repos or org, not both".into(),
        ),
        (None, true) => push(
            root.key("repos"),
            "name the repositories (repos = [\"owner/name\"]) or the organization (org = \"NAME\") runners register on".into(),
        ),
        _ => {}
    }
    for (i, r) in g.repos.iter().enumerate() {
        if !is_repo_name(r) {
            push(
                root.key("repos").index(i),
                format!("{r:?} is not a repository (owner/name)"),
            );
        } else if app {
            let owner = r.split_once('/').map_or("", |(o, _)| o);
            if !g
                .installations
                .keys()
                .any(|a| a.eq_ignore_ascii_case(owner))
            {
                push(
                    root.key("repos").index(i),
                    format!("no installation for account {owner:?}: add it to installations"),
                );
            }
        }
    }
    if let (Some(org), true) = (&g.org, app) {
        if !g.installations.keys().any(|a| a.eq_ignore_ascii_case(org)) {
            push(
                root.key("org"),
                format!("no installation for organization {org:?}: add it to installations"),
            );
        }
    }
    for (key, cmd) in [
        ("runner_command", &g.runner_command),
        ("runner_command_windows", &g.runner_command_windows),
        ("runner_dir", &g.runner_dir),
        ("runner_dir_windows", &g.runner_dir_windows),
    ] {
        if cmd.trim().is_empty() || cmd.contains('\0') {
            push(root.key(key), "must not be empty".into());
        }
    }
    if g.runner_dir.contains('\'') {
        push(root.key("runner_dir"), "must not contain '".into());
    }
    if g.runner_dir_windows.contains('\'') {
        push(root.key("runner_dir_windows"), "must not contain '".into());
    }
    if g.runners.is_empty() {
        push(
            root.key("runners"),
            "map at least one pool: [[github.runners]] pool = \"NAME\", labels = [\"self-hosted\", …]".into(),
        );
    }
    if config.builders.iter().any(|b| b.name == RUNNER_BUILDER) {
        push(
            root.clone(),
            format!(
                "builder name {RUNNER_BUILDER:?} is taken by runner builds; rename the builder"
            ),
        );
    }
    for (i, e) in g.runners.iter().enumerate() {
        let path = root.key("runners").index(i);
        match config.pools.get(&e.pool) {
            None => push(path.key("pool"), format!("unknown pool {:?}", e.pool)),
            Some(p) if p.max_builds != 1 => push(
                path.key("pool"),
                format!(
                    "pool {:?} must set max_builds = 1: a runner is never reused",
                    e.pool
                ),
            ),
            Some(_) => {}
        }
        if e.labels.is_empty() {
            push(
                path.key("labels"),
                "list the labels the runners offer".into(),
            );
        }
        for (j, l) in e.labels.iter().enumerate() {
            let ok = !l.is_empty()
                && l.len() <= 256
                && !l.contains(',')
                && l.chars().all(|c| !c.is_control());
            if !ok {
                push(
                    path.key("labels").index(j),
                    format!("{l:?} is not a runner label"),
                );
            }
        }
        if e.runner_group_id == 0 {
            push(path.key("runner_group_id"), "must be at least 1".into());
        }
    }
    issues
}
