//! Store write latency and errors, measured in one place: a decorator
//! around the daemon's store. Reads pass straight through.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;

use super::Metrics;
use std::collections::BTreeMap;

use crate::cost::WorkerAttempt;
use crate::model::{
    Build, BuildId, BuildQuery, BuildState, BuildSummary, ExpiredBuild, GithubJob, IdempotencyKey,
    Instance, Millis, NewBuild, Report, RetentionRule, ScheduleRun, SubmitOnce, TokenRecord,
    WatchedBuild,
};
use crate::store::{Store, StoreResult, TriggerStore};

pub struct MeteredStore {
    inner: Arc<dyn Store>,
    metrics: Arc<Metrics>,
}

impl MeteredStore {
    pub fn wrap(inner: Arc<dyn Store>, metrics: Arc<Metrics>) -> Arc<dyn Store> {
        Arc::new(Self { inner, metrics })
    }

    async fn write<T>(
        &self,
        operation: &'static str,
        call: impl Future<Output = StoreResult<T>>,
    ) -> StoreResult<T> {
        let start = Instant::now();
        let result = call.await;
        self.metrics
            .store_write(operation, start.elapsed(), result.is_err());
        result
    }
}

#[async_trait]
impl Store for MeteredStore {
    async fn master_id(&self) -> StoreResult<String> {
        self.inner.master_id().await
    }

    async fn probe(&self) -> StoreResult<()> {
        self.write("probe", self.inner.probe()).await
    }

    async fn insert_builds_once(
        &self,
        builds: Vec<NewBuild>,
        key: &IdempotencyKey,
    ) -> StoreResult<SubmitOnce> {
        self.write("insert_builds", self.inner.insert_builds_once(builds, key))
            .await
    }

    async fn insert_builds(&self, builds: Vec<NewBuild>) -> StoreResult<Vec<Build>> {
        self.write("insert_builds", self.inner.insert_builds(builds))
            .await
    }

    async fn save_build(&self, build: &Build) -> StoreResult<()> {
        self.write("save_build", self.inner.save_build(build)).await
    }

    async fn save_builds(&self, builds: &[&Build]) -> StoreResult<()> {
        self.write("save_builds", self.inner.save_builds(builds))
            .await
    }

    async fn get_build(&self, id: BuildId) -> StoreResult<Option<Build>> {
        self.inner.get_build(id).await
    }

    async fn list_builds(&self, limit: u32) -> StoreResult<Vec<Build>> {
        self.inner.list_builds(limit).await
    }

    async fn query_builds(&self, query: &BuildQuery) -> StoreResult<Vec<Build>> {
        self.inner.query_builds(query).await
    }

    async fn recent_submits(&self, per_builder: u32) -> StoreResult<Vec<BuildSummary>> {
        self.inner.recent_submits(per_builder).await
    }

    async fn unfinished_builds(&self) -> StoreResult<Vec<Build>> {
        self.inner.unfinished_builds().await
    }

    async fn expired_builds(
        &self,
        rule: &RetentionRule,
        limit: u32,
    ) -> StoreResult<Vec<ExpiredBuild>> {
        self.inner.expired_builds(rule, limit).await
    }

    async fn delete_builds(&self, ids: &[BuildId]) -> StoreResult<u64> {
        self.write("delete_builds", self.inner.delete_builds(ids))
            .await
    }

    async fn save_instance(&self, instance: &Instance) -> StoreResult<()> {
        self.write("save_instance", self.inner.save_instance(instance))
            .await
    }

    async fn get_instance(&self, worker_id: &str) -> StoreResult<Option<Instance>> {
        self.inner.get_instance(worker_id).await
    }

    async fn live_instances(&self) -> StoreResult<Vec<Instance>> {
        self.inner.live_instances().await
    }

    async fn list_instances(&self, limit: u32) -> StoreResult<Vec<Instance>> {
        self.inner.list_instances(limit).await
    }

    async fn instances_since(&self, since: Millis) -> StoreResult<Vec<Instance>> {
        self.inner.instances_since(since).await
    }

    async fn attempts_on(&self, workers: &[String]) -> StoreResult<Vec<WorkerAttempt>> {
        self.inner.attempts_on(workers).await
    }

    async fn insert_token(&self, token: &TokenRecord) -> StoreResult<bool> {
        self.write("insert_token", self.inner.insert_token(token))
            .await
    }

    async fn token_by_hash(&self, hash: &str) -> StoreResult<Option<TokenRecord>> {
        self.inner.token_by_hash(hash).await
    }

    async fn list_tokens(&self) -> StoreResult<Vec<TokenRecord>> {
        self.inner.list_tokens().await
    }

    async fn revoke_token(&self, name: &str) -> StoreResult<bool> {
        self.write("revoke_token", self.inner.revoke_token(name))
            .await
    }
}

#[async_trait]
impl TriggerStore for MeteredStore {
    async fn record_delivery(
        &self,
        source: &str,
        delivery: &str,
        now: Millis,
    ) -> StoreResult<bool> {
        self.write(
            "record_delivery",
            self.inner.record_delivery(source, delivery, now),
        )
        .await
    }

    async fn source_heads(&self, source: &str) -> StoreResult<BTreeMap<String, String>> {
        self.inner.source_heads(source).await
    }

    async fn save_source_head(
        &self,
        source: &str,
        branch: &str,
        revision: &str,
        now: Millis,
    ) -> StoreResult<()> {
        self.write(
            "save_source_head",
            self.inner.save_source_head(source, branch, revision, now),
        )
        .await
    }

    async fn watch_builds(&self, source: &str, builds: &[BuildId]) -> StoreResult<()> {
        self.write("watch_builds", self.inner.watch_builds(source, builds))
            .await
    }

    async fn watched_builds(&self) -> StoreResult<Vec<WatchedBuild>> {
        self.inner.watched_builds().await
    }

    async fn enqueue_reports(
        &self,
        build: BuildId,
        state: BuildState,
        reporters: &[String],
        now: Millis,
    ) -> StoreResult<()> {
        self.write(
            "enqueue_reports",
            self.inner.enqueue_reports(build, state, reporters, now),
        )
        .await
    }

    async fn watch_submit(
        &self,
        submit_id: &str,
        source: &str,
        reporters: &[String],
        now: Millis,
    ) -> StoreResult<()> {
        self.write(
            "watch_submit",
            self.inner.watch_submit(submit_id, source, reporters, now),
        )
        .await
    }

    async fn due_reports(&self, now: Millis, limit: u32) -> StoreResult<Vec<Report>> {
        self.inner.due_reports(now, limit).await
    }

    async fn save_report(&self, report: &Report) -> StoreResult<()> {
        self.write("save_report", self.inner.save_report(report))
            .await
    }

    async fn build_reports(&self, build: BuildId) -> StoreResult<Vec<Report>> {
        self.inner.build_reports(build).await
    }

    async fn schedule_run(&self, name: &str) -> StoreResult<Option<ScheduleRun>> {
        self.inner.schedule_run(name).await
    }

    async fn save_schedule_run(&self, name: &str, run: &ScheduleRun) -> StoreResult<()> {
        self.write("save_schedule_run", self.inner.save_schedule_run(name, run))
            .await
    }

    async fn save_github_job(&self, job: &GithubJob) -> StoreResult<()> {
        self.write("save_github_job", self.inner.save_github_job(job))
            .await
    }

    async fn github_job(&self, job_id: i64) -> StoreResult<Option<GithubJob>> {
        self.inner.github_job(job_id).await
    }

    async fn github_jobs_of_build(&self, build: BuildId) -> StoreResult<Vec<GithubJob>> {
        self.inner.github_jobs_of_build(build).await
    }
}
