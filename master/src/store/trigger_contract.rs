//! What triggers and reporters persist, beside the `Store` proper: every
//! store implements both (`Store: TriggerStore`).

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::StoreResult;
use crate::model::{BuildId, BuildState, GithubJob, Millis, Report, ScheduleRun, WatchedBuild};

/// How long a webhook delivery id is remembered: GitHub and GitLab
/// redeliver for days, not weeks.
pub const DELIVERY_TTL_MILLIS: Millis = 14 * 24 * 3600 * 1000;

#[async_trait]
pub trait TriggerStore: Send + Sync {
    /// Remembers that `source` received delivery `delivery`; false (and
    /// nothing new stored) when it had already. Forgets deliveries older
    /// than `DELIVERY_TTL_MILLIS`.
    async fn record_delivery(&self, source: &str, delivery: &str, now: Millis)
        -> StoreResult<bool>;

    /// Branch -> revision, as a poller of `source` last saw them.
    async fn source_heads(&self, source: &str) -> StoreResult<BTreeMap<String, String>>;

    /// Sets the head of one branch of `source`.
    async fn save_source_head(
        &self,
        source: &str,
        branch: &str,
        revision: &str,
        now: Millis,
    ) -> StoreResult<()>;

    /// Starts reporting the states of `builds`, which `source` started.
    async fn watch_builds(&self, source: &str, builds: &[BuildId]) -> StoreResult<()>;

    /// Watched builds whose last reported state is not a finished one,
    /// oldest first.
    async fn watched_builds(&self) -> StoreResult<Vec<WatchedBuild>>;

    /// In one write: sets the build's last reported state and queues one
    /// delivery per reporter, due at `now`. A state already queued for a
    /// reporter is not queued twice.
    async fn enqueue_reports(
        &self,
        build: BuildId,
        state: BuildState,
        reporters: &[String],
        now: Millis,
    ) -> StoreResult<()>;

    /// Watches the builds of submit `submit_id` (not inserted yet) for
    /// `reporters`: from their insert on, every state a build is saved
    /// with is queued for each reporter once, in the same write as the
    /// build (so no transition is missed, however fast the build).
    async fn watch_submit(
        &self,
        submit_id: &str,
        source: &str,
        reporters: &[String],
        now: Millis,
    ) -> StoreResult<()>;

    /// Undelivered reports due at `now` (not given up), oldest first.
    async fn due_reports(&self, now: Millis, limit: u32) -> StoreResult<Vec<Report>>;

    /// Writes a report's delivery fields (attempts, next_at, delivered_at,
    /// last_error, gave_up).
    async fn save_report(&self, report: &Report) -> StoreResult<()>;

    /// Every report of one build, oldest first.
    async fn build_reports(&self, build: BuildId) -> StoreResult<Vec<Report>>;

    /// A schedule's last run.
    async fn schedule_run(&self, name: &str) -> StoreResult<Option<ScheduleRun>>;

    async fn save_schedule_run(&self, name: &str, run: &ScheduleRun) -> StoreResult<()>;

    /// Saves (inserts or replaces) what the runner manager knows of a
    /// GitHub job.
    async fn save_github_job(&self, job: &GithubJob) -> StoreResult<()>;

    async fn github_job(&self, job_id: i64) -> StoreResult<Option<GithubJob>>;

    /// The jobs launched for or run on `build`, by job id.
    async fn github_jobs_of_build(&self, build: BuildId) -> StoreResult<Vec<GithubJob>>;
}
