//! The runner manager: turns `workflow_job` events (webhooks, and what
//! reconcile finds) into runner builds, ties runner builds to the jobs
//! they ran, and cancels the launch of a job cancelled before its runner
//! started. One job event is handled at a time, so a webhook and a
//! reconcile pass that see the same job never both launch for it (and
//! the submit's idempotency key, `job-<id>`, holds across restarts).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use burst_common::error_chain::Chain;
use tokio::time::Instant;

use super::api::GithubApi;
use super::job::{Job, JobEvent};
use super::rate::JitWindow;
use crate::config::{GithubConfig, LiveConfig, RunnerEntry, RUNNER_BUILDER};
use crate::metrics::Metrics;
use crate::model::{
    now_millis, BuildId, BuildState, Command, GithubJob, IdempotencyKey, NewBuild, RunnerStep,
    StepSpec,
};
use crate::scheduler::{SchedulerHandle, Submitted, POOL_LABEL};
use crate::store::Store;

/// The idempotency scope of runner builds (no API token can be named so).
const KEY_SCOPE: &str = ":github";
/// The step's name in the build.
pub const RUNNER_STEP: &str = "runner";
/// A runner build's parameter: which launch for its job it is (absent: the first).
const LAUNCH_PARAM: &str = "GITHUB_RUNNER_LAUNCH";
/// Runner builds launched for one job, at most: a job still queued after
/// this many ended without running it waits for someone to look.
pub const MAX_LAUNCHES: u32 = 3;

/// Which launch for its job runner build `b` was.
fn launch_number(b: &crate::model::Build) -> u32 {
    b.params
        .get(LAUNCH_PARAM)
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
}

/// What one job event did, for the webhook's answer and the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    Launched(BuildId),
    Duplicate(BuildId),
    Unmatched(String),
    /// A runner of ours took the job.
    Started(Option<BuildId>),
    Completed(Option<BuildId>),
    /// The job ended before its runner build started; the build was cancelled.
    CancelledLaunch(BuildId),
    Ignored(String),
}

impl JobOutcome {
    pub fn word(&self) -> &'static str {
        match self {
            Self::Launched(_) => "launched",
            Self::Duplicate(_) => "duplicate",
            Self::Unmatched(_) => "unmatched",
            Self::Started(_) => "started",
            Self::Completed(_) => "completed",
            Self::CancelledLaunch(_) => "cancelled_launch",
            Self::Ignored(_) => "ignored",
        }
    }
}

pub struct RunnerManager {
    pub(super) config: LiveConfig,
    pub(super) api: Arc<GithubApi>,
    pub(super) scheduler: SchedulerHandle,
    pub(super) store: Arc<dyn Store>,
    pub(super) metrics: Arc<Metrics>,
    /// One job event at a time.
    pub(super) serial: tokio::sync::Mutex<()>,
    pub(super) jit_window: Mutex<JitWindow>,
    /// Runner id -> when reconcile first saw it offline.
    pub(super) offline_since: Mutex<BTreeMap<u64, Instant>>,
    /// Runner id -> when reconcile first saw it idle with no job left.
    pub(super) idle_since: Mutex<BTreeMap<u64, Instant>>,
}

/// `burst-<worker id>-b<build id>`: unique (worker ids are), and tells
/// reconcile which worker and build a registration belongs to.
pub fn runner_name(build: BuildId, worker_id: &str) -> String {
    format!("burst-{worker_id}-b{build}")
}

/// The worker and build a runner name of ours names.
pub fn parse_runner_name(name: &str) -> Option<(&str, BuildId)> {
    let rest = name.strip_prefix("burst-")?;
    let (worker, build) = rest.rsplit_once("-b")?;
    let build = build.parse().ok()?;
    (!worker.is_empty()).then_some((worker, build))
}

impl RunnerManager {
    pub fn new(
        config: LiveConfig,
        api: Arc<GithubApi>,
        scheduler: SchedulerHandle,
        store: Arc<dyn Store>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let per_minute = config
            .get()
            .github
            .as_ref()
            .map_or(1, |g| g.max_jit_configs_per_minute.get());
        Self {
            config,
            api,
            scheduler,
            store,
            metrics,
            serial: tokio::sync::Mutex::new(()),
            jit_window: Mutex::new(JitWindow::new(per_minute)),
            offline_since: Mutex::new(BTreeMap::new()),
            idle_since: Mutex::new(BTreeMap::new()),
        }
    }

    /// A `workflow_job` delivery.
    pub async fn on_event(&self, event: &JobEvent) -> Result<JobOutcome, String> {
        let repo = event.repository.full_name.as_str();
        let outcome = match event.action.as_str() {
            "queued" => self.cover(repo, &event.workflow_job).await,
            "in_progress" => self.started(repo, &event.workflow_job).await,
            "completed" => self.completed(repo, &event.workflow_job).await,
            other => Ok(JobOutcome::Ignored(format!(
                "action {other:?} needs nothing"
            ))),
        }?;
        self.metrics.github_job(outcome.word());
        tracing::info!(job = event.workflow_job.id, repo, action = %event.action, outcome = ?outcome, "GitHub job event");
        Ok(outcome)
    }

    fn github(&self) -> Option<GithubConfig> {
        self.config.get().github.clone()
    }

    /// A queued job: a runner build on the first pool whose labels cover
    /// its `runs-on`, unless it has one.
    pub(super) async fn cover(&self, repo: &str, job: &Job) -> Result<JobOutcome, String> {
        let Some(g) = self.github() else {
            return Ok(JobOutcome::Ignored("no [github] section".into()));
        };
        if let Some(why) = foreign(&g, repo) {
            return Ok(JobOutcome::Ignored(why));
        }
        let Some(entry) = g.entry_for(&job.labels) else {
            return Ok(JobOutcome::Unmatched(format!(
                "no [[github.runners]] entry offers all of {:?}",
                job.labels
            )));
        };
        let _serial = self.serial.lock().await;
        let known = self.job_record(job.id).await?;
        let mut launch = 1;
        if let Some(build) = known.as_ref().and_then(|k| k.launched_build) {
            // Still queued on GitHub: a runner build that ended without
            // running it (its runner failed, or was removed) is followed by
            // another, up to MAX_LAUNCHES.
            let ended = match self.store.get_build(build).await {
                Ok(Some(b)) if b.state.is_finished() => Some(launch_number(&b)),
                Ok(_) => None,
                Err(e) => return Err(format!("failed to read build {build}: {}", Chain(&e))),
            };
            let ran = known.as_ref().is_some_and(|k| k.ran_build.is_some());
            match ended {
                Some(n) if !ran && n < MAX_LAUNCHES => launch = n + 1,
                Some(n) if !ran => {
                    tracing::warn!(job = job.id, repo, build, "GitHub job still queued after {n} runner builds ended without running it; launching no more");
                    return Ok(JobOutcome::Duplicate(build));
                }
                _ => return Ok(JobOutcome::Duplicate(build)),
            }
        }
        let mut build = runner_build(&g, entry, repo, job, self.config.get().master.build_retries);
        let name = if launch == 1 {
            format!("job-{}", job.id)
        } else {
            build
                .params
                .insert(LAUNCH_PARAM.to_owned(), launch.to_string());
            format!("job-{}-launch-{launch}", job.id)
        };
        let key = IdempotencyKey::new(KEY_SCOPE, &name, &job.id);
        let id = match self.scheduler.submit_once(vec![build], Some(key)).await {
            Ok(Submitted::New(ids)) => ids.first().copied(),
            Ok(Submitted::Replayed { builds, .. }) => {
                if let Some(b) = builds.first() {
                    self.record(repo, job, known, |r| r.launched_build = Some(*b))
                        .await?;
                    return Ok(JobOutcome::Duplicate(*b));
                }
                None
            }
            Err(e) => return Err(format!("failed to queue a runner build: {}", Chain(&e))),
        };
        let Some(id) = id else {
            return Err("the scheduler queued no runner build".into());
        };
        self.record(repo, job, known, |r| r.launched_build = Some(id))
            .await?;
        tracing::info!(job = job.id, repo, build = id, pool = %entry.pool, "runner build queued for a GitHub job");
        Ok(JobOutcome::Launched(id))
    }

    /// A runner took the job: if it is one of ours, the job is tied to
    /// its build.
    async fn started(&self, repo: &str, job: &Job) -> Result<JobOutcome, String> {
        let _serial = self.serial.lock().await;
        let ran = ours(job);
        let known = self.job_record(job.id).await?;
        self.record(repo, job, known, |r| {
            if ran.is_some() {
                r.ran_build = ran;
            }
        })
        .await?;
        Ok(JobOutcome::Started(ran))
    }

    /// The job ended. If no runner of ours ran it and the build launched
    /// for it has not started, that build is cancelled: a job cancelled
    /// before its runner started cancels the launch.
    async fn completed(&self, repo: &str, job: &Job) -> Result<JobOutcome, String> {
        let _serial = self.serial.lock().await;
        let ran = ours(job);
        let known = self.job_record(job.id).await?;
        let launched = known.as_ref().and_then(|k| k.launched_build);
        let record = self
            .record(repo, job, known, |r| {
                if ran.is_some() {
                    r.ran_build = ran;
                }
            })
            .await?;
        if ran.is_some() || record.ran_build.is_some() {
            return Ok(JobOutcome::Completed(record.ran_build));
        }
        let Some(build) = launched else {
            return Ok(JobOutcome::Completed(None));
        };
        let queued = match self.store.get_build(build).await {
            Ok(b) => b.is_some_and(|b| b.state == BuildState::Queued),
            Err(e) => return Err(format!("failed to read build {build}: {}", Chain(&e))),
        };
        if !queued {
            return Ok(JobOutcome::Completed(None));
        }
        match self.scheduler.cancel(build).await {
            Ok(_) => {
                tracing::info!(job = job.id, build, conclusion = ?job.conclusion, "job ended before its runner started; runner build cancelled");
                Ok(JobOutcome::CancelledLaunch(build))
            }
            Err(e) => Err(format!(
                "failed to cancel runner build {build}: {}",
                Chain(&e)
            )),
        }
    }

    async fn job_record(&self, id: u64) -> Result<Option<GithubJob>, String> {
        self.store
            .github_job(id as i64)
            .await
            .map_err(|e| format!("failed to read GitHub job {id}: {}", Chain(&e)))
    }

    /// Saves what `job` says, over what was known, changed by `edit`.
    async fn record(
        &self,
        repo: &str,
        job: &Job,
        known: Option<GithubJob>,
        edit: impl FnOnce(&mut GithubJob),
    ) -> Result<GithubJob, String> {
        let mut r = known.unwrap_or_else(|| GithubJob {
            job_id: job.id as i64,
            repo: repo.to_owned(),
            run_id: job.run_id as i64,
            name: job.name.clone(),
            status: job.status.clone(),
            conclusion: None,
            launched_build: None,
            ran_build: None,
            runner_name: None,
            html_url: None,
            updated_at: 0,
        });
        // A late `queued` redelivery must not take a finished job back.
        if r.status != "completed" {
            r.status = job.status.clone();
        }
        if job.conclusion.is_some() {
            r.conclusion = job.conclusion.clone();
        }
        if job.runner_name.as_deref().is_some_and(|n| !n.is_empty()) {
            r.runner_name = job.runner_name.clone();
        }
        if job.html_url.is_some() {
            r.html_url = job.html_url.clone();
        }
        if !job.name.is_empty() {
            r.name = job.name.clone();
        }
        edit(&mut r);
        r.updated_at = now_millis();
        self.store
            .save_github_job(&r)
            .await
            .map_err(|e| format!("failed to save GitHub job {}: {}", job.id, Chain(&e)))?;
        Ok(r)
    }
}

/// The build a runner of ours named in `job` runs.
fn ours(job: &Job) -> Option<BuildId> {
    job.runner_name
        .as_deref()
        .and_then(parse_runner_name)
        .map(|(_, b)| b)
}

/// Why `repo` is none of this master's business, if it is not.
fn foreign(g: &GithubConfig, repo: &str) -> Option<String> {
    match &g.org {
        Some(org) => {
            let owner = repo.split_once('/').map_or("", |(o, _)| o);
            (!owner.eq_ignore_ascii_case(org))
                .then(|| format!("repository {repo:?} is not in organization {org:?}"))
        }
        None => (!g.repos.iter().any(|r| r.eq_ignore_ascii_case(repo)))
            .then(|| format!("repository {repo:?} is not in [github] repos")),
    }
}

/// The one-step build that runs a runner for `job` on `entry`'s pool.
pub(super) fn runner_build(
    g: &GithubConfig,
    entry: &RunnerEntry,
    repo: &str,
    job: &Job,
    retries: u32,
) -> NewBuild {
    let (target, org) = match &g.org {
        Some(org) => (org.clone(), true),
        None => (repo.to_owned(), false),
    };
    let step = StepSpec {
        name: RUNNER_STEP.into(),
        // Single quotes: validation refuses a runner_dir holding one.
        command: Command::Script(format!("cd '{}' && {}", g.runner_dir, g.runner_command)),
        command_windows: Some(Command::Argv(vec![
            "powershell.exe".into(),
            "-NoLogo".into(),
            "-NoProfile".into(),
            "-NonInteractive".into(),
            "-Command".into(),
            format!(
                "Set-Location -LiteralPath '{}'; {}",
                g.runner_dir_windows, g.runner_command_windows
            ),
        ])),
        shell: None,
        env: BTreeMap::new(),
        working_dir: None,
        timeout: Some(g.job_timeout.get()),
        continue_on_failure: false,
        always_run: false,
        secrets: Vec::new(),
        artifacts: None,
        runner: Some(RunnerStep {
            target,
            org,
            labels: entry.labels.clone(),
            runner_group_id: entry.runner_group_id,
        }),
    };
    let params = BTreeMap::from([
        ("GITHUB_REPOSITORY".to_owned(), repo.to_owned()),
        ("GITHUB_JOB_ID".to_owned(), job.id.to_string()),
        ("GITHUB_RUN_ID".to_owned(), job.run_id.to_string()),
    ]);
    NewBuild {
        submit_id: uuid::Uuid::new_v4().simple().to_string(),
        builder: RUNNER_BUILDER.into(),
        cell: BTreeMap::new(),
        params,
        labels: vec![format!("{POOL_LABEL}{}", entry.pool)],
        steps: vec![step],
        retries,
        submitted_by: Some("github".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runner_names_round_trip_and_others_are_not_ours() {
        let name = runner_name(42, "linux-spot-k3j9x");
        assert_eq!(name, "burst-linux-spot-k3j9x-b42");
        assert_eq!(parse_runner_name(&name), Some(("linux-spot-k3j9x", 42)));
        assert_eq!(parse_runner_name("my-runner"), None);
        assert_eq!(parse_runner_name("burst-x-bnope"), None);
        assert_eq!(parse_runner_name("burst--b3"), None);
    }
}
