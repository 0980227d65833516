//! `TriggerStore` in memory, mirroring the SQLite tables of migration 0006.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;

use super::super::{StoreResult, TriggerStore, DELIVERY_TTL_MILLIS};
use super::{take_limit, MemoryStore};
use crate::model::{
    Build, BuildId, BuildState, GithubJob, Millis, Report, ScheduleRun, WatchedBuild,
};

#[derive(Debug, Default)]
pub(super) struct Tables {
    /// (source, delivery) -> received at.
    deliveries: HashMap<(String, String), Millis>,
    /// source -> branch -> revision.
    heads: HashMap<String, BTreeMap<String, String>>,
    /// build -> (source, last state).
    watched: BTreeMap<BuildId, (String, Option<BuildState>)>,
    /// submit id -> (source, reporters): its builds are watched from
    /// their insert on.
    submits: HashMap<String, (String, Vec<String>)>,
    /// The reporters of each watched build of a watched submit.
    reporters_of: HashMap<BuildId, Vec<String>>,
    /// By id, which grows like SQLite's AUTOINCREMENT.
    outbox: BTreeMap<i64, Report>,
    last_report_id: i64,
    schedules: HashMap<String, ScheduleRun>,
    github_jobs: BTreeMap<i64, GithubJob>,
}

impl Tables {
    /// A build was inserted: if its submit is watched, watch it and queue
    /// its first state (the SQLite store does this in the insert's
    /// transaction).
    pub(super) fn inserted(&mut self, build: &Build, now: Millis) {
        if let Some((source, reporters)) = self.submits.get(&build.submit_id).cloned() {
            self.watched.insert(build.id, (source, None));
            self.reporters_of.insert(build.id, reporters);
            self.saved(build, now);
        }
    }

    /// A build was saved: a state other than the last one queued is queued
    /// for its reporters, so every transition is in the outbox once.
    pub(super) fn saved(&mut self, build: &Build, now: Millis) {
        let Some((_, last)) = self.watched.get_mut(&build.id) else {
            return;
        };
        if *last == Some(build.state) {
            return;
        }
        *last = Some(build.state);
        for reporter in self
            .reporters_of
            .get(&build.id)
            .cloned()
            .unwrap_or_default()
        {
            self.queue(build.id, build.state, &reporter, now);
        }
    }

    /// One outbox row, unless this state is queued for `reporter` already.
    fn queue(&mut self, build: BuildId, state: BuildState, reporter: &str, now: Millis) {
        let queued = self
            .outbox
            .values()
            .any(|r| r.reporter == reporter && r.build_id == build && r.state == state);
        if queued {
            return;
        }
        self.last_report_id += 1;
        let id = self.last_report_id;
        self.outbox.insert(
            id,
            Report {
                id,
                reporter: reporter.to_owned(),
                build_id: build,
                state,
                created_at: now,
                attempts: 0,
                next_at: now,
                delivered_at: None,
                last_error: None,
                gave_up: false,
            },
        );
    }

    /// A deleted build's watch and reports go with it (SQLite's cascade).
    pub(super) fn forget_build(&mut self, build: BuildId) {
        self.watched.remove(&build);
        self.reporters_of.remove(&build);
        self.outbox.retain(|_, r| r.build_id != build);
    }
}

#[async_trait]
impl TriggerStore for MemoryStore {
    async fn record_delivery(
        &self,
        source: &str,
        delivery: &str,
        now: Millis,
    ) -> StoreResult<bool> {
        self.check_write("record a webhook delivery")?;
        let mut inner = self.lock();
        let t = &mut inner.triggers;
        let cutoff = now.saturating_sub(DELIVERY_TTL_MILLIS);
        t.deliveries.retain(|_, at| *at >= cutoff);
        let key = (source.to_owned(), delivery.to_owned());
        if t.deliveries.contains_key(&key) {
            return Ok(false);
        }
        t.deliveries.insert(key, now);
        Ok(true)
    }

    async fn source_heads(&self, source: &str) -> StoreResult<BTreeMap<String, String>> {
        Ok(self
            .lock()
            .triggers
            .heads
            .get(source)
            .cloned()
            .unwrap_or_default())
    }

    async fn save_source_head(
        &self,
        source: &str,
        branch: &str,
        revision: &str,
        _now: Millis,
    ) -> StoreResult<()> {
        self.check_write("save a source's head")?;
        self.lock()
            .triggers
            .heads
            .entry(source.to_owned())
            .or_default()
            .insert(branch.to_owned(), revision.to_owned());
        Ok(())
    }

    async fn watch_builds(&self, source: &str, builds: &[BuildId]) -> StoreResult<()> {
        self.check_write("watch builds")?;
        let mut inner = self.lock();
        for id in builds {
            inner
                .triggers
                .watched
                .entry(*id)
                .or_insert_with(|| (source.to_owned(), None));
        }
        Ok(())
    }

    async fn watched_builds(&self) -> StoreResult<Vec<WatchedBuild>> {
        Ok(self
            .lock()
            .triggers
            .watched
            .iter()
            .filter(|(_, (_, last))| last.is_none_or(|s| !s.is_finished()))
            .map(|(id, (source, last))| WatchedBuild {
                build_id: *id,
                source: source.clone(),
                last_state: *last,
            })
            .collect())
    }

    async fn enqueue_reports(
        &self,
        build: BuildId,
        state: BuildState,
        reporters: &[String],
        now: Millis,
    ) -> StoreResult<()> {
        self.check_write("queue build reports")?;
        let mut inner = self.lock();
        let t = &mut inner.triggers;
        if let Some((_, last)) = t.watched.get_mut(&build) {
            *last = Some(state);
        }
        for reporter in reporters {
            t.queue(build, state, reporter, now);
        }
        Ok(())
    }

    async fn watch_submit(
        &self,
        submit_id: &str,
        source: &str,
        reporters: &[String],
        _now: Millis,
    ) -> StoreResult<()> {
        self.check_write("watch a submit")?;
        self.lock().triggers.submits.insert(
            submit_id.to_owned(),
            (source.to_owned(), reporters.to_vec()),
        );
        Ok(())
    }

    async fn due_reports(&self, now: Millis, limit: u32) -> StoreResult<Vec<Report>> {
        Ok(self
            .lock()
            .triggers
            .outbox
            .values()
            .filter(|r| r.delivered_at.is_none() && !r.gave_up && r.next_at <= now)
            .take(take_limit(limit))
            .cloned()
            .collect())
    }

    async fn save_report(&self, report: &Report) -> StoreResult<()> {
        self.check_write("save a report")?;
        let mut inner = self.lock();
        if let Some(row) = inner.triggers.outbox.get_mut(&report.id) {
            row.attempts = report.attempts;
            row.next_at = report.next_at;
            row.delivered_at = report.delivered_at;
            row.last_error.clone_from(&report.last_error);
            row.gave_up = report.gave_up;
        }
        Ok(())
    }

    async fn build_reports(&self, build: BuildId) -> StoreResult<Vec<Report>> {
        Ok(self
            .lock()
            .triggers
            .outbox
            .values()
            .filter(|r| r.build_id == build)
            .cloned()
            .collect())
    }

    async fn schedule_run(&self, name: &str) -> StoreResult<Option<ScheduleRun>> {
        Ok(self.lock().triggers.schedules.get(name).cloned())
    }

    async fn save_schedule_run(&self, name: &str, run: &ScheduleRun) -> StoreResult<()> {
        self.check_write("save a schedule's last run")?;
        self.lock()
            .triggers
            .schedules
            .insert(name.to_owned(), run.clone());
        Ok(())
    }

    async fn save_github_job(&self, job: &GithubJob) -> StoreResult<()> {
        self.check_write("save a GitHub job")?;
        self.lock()
            .triggers
            .github_jobs
            .insert(job.job_id, job.clone());
        Ok(())
    }

    async fn github_job(&self, job_id: i64) -> StoreResult<Option<GithubJob>> {
        Ok(self.lock().triggers.github_jobs.get(&job_id).cloned())
    }

    async fn github_jobs_of_build(&self, build: BuildId) -> StoreResult<Vec<GithubJob>> {
        Ok(self
            .lock()
            .triggers
            .github_jobs
            .values()
            .filter(|j| j.launched_build == Some(build) || j.ran_build == Some(build))
            .cloned()
            .collect())
    }
}
