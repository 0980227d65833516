//! Store write latency and errors, measured in one place: a decorator
//! around the daemon's store. Reads pass straight through.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;

use super::Metrics;
use crate::model::{
    Build, BuildId, BuildSummary, IdempotencyKey, Instance, NewBuild, SubmitOnce, TokenRecord,
};
use crate::store::{Store, StoreResult};

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

    async fn get_build(&self, id: BuildId) -> StoreResult<Option<Build>> {
        self.inner.get_build(id).await
    }

    async fn list_builds(&self, limit: u32) -> StoreResult<Vec<Build>> {
        self.inner.list_builds(limit).await
    }

    async fn recent_submits(&self, per_builder: u32) -> StoreResult<Vec<BuildSummary>> {
        self.inner.recent_submits(per_builder).await
    }

    async fn unfinished_builds(&self) -> StoreResult<Vec<Build>> {
        self.inner.unfinished_builds().await
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
