//! Every provider call's latency and errors, measured in one place: a
//! decorator the daemon puts around each pool's provider.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use burst_providers::{
    Health, HostStatus, LaunchSpec, Launched, ListedInstance, Provider, ProviderError,
};

use super::labels::Operation;
use super::Metrics;

pub struct MeteredProvider {
    inner: Arc<dyn Provider>,
    pool: String,
    metrics: Arc<Metrics>,
}

impl MeteredProvider {
    pub fn wrap(inner: Arc<dyn Provider>, pool: &str, metrics: Arc<Metrics>) -> Arc<dyn Provider> {
        Arc::new(Self {
            inner,
            pool: pool.to_owned(),
            metrics,
        })
    }

    fn record<T>(&self, operation: Operation, start: Instant, result: &Result<T, ProviderError>) {
        self.metrics.provider_call(
            &self.pool,
            self.inner.kind(),
            operation,
            start.elapsed(),
            result.as_ref().err().map(|e| e.kind.into()),
        );
    }
}

#[async_trait]
impl Provider for MeteredProvider {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }

    async fn launch(&self, spec: &LaunchSpec) -> Result<Launched, ProviderError> {
        let start = Instant::now();
        let result = self.inner.launch(spec).await;
        self.record(Operation::launch, start, &result);
        result
    }

    async fn terminate(&self, worker_id: &str, provider_id: &str) -> Result<(), ProviderError> {
        let start = Instant::now();
        let result = self.inner.terminate(worker_id, provider_id).await;
        self.record(Operation::terminate, start, &result);
        result
    }

    async fn list(&self) -> Result<Vec<ListedInstance>, ProviderError> {
        let start = Instant::now();
        let result = self.inner.list().await;
        self.record(Operation::list, start, &result);
        result
    }

    async fn health(&self, worker_id: &str, provider_id: &str) -> Result<Health, ProviderError> {
        let start = Instant::now();
        let result = self.inner.health(worker_id, provider_id).await;
        self.record(Operation::health, start, &result);
        result
    }

    fn hosts(&self) -> Vec<HostStatus> {
        self.inner.hosts()
    }

    async fn remove_cache_volumes(&self, keep: &[String]) -> Result<Vec<String>, ProviderError> {
        self.inner.remove_cache_volumes(keep).await
    }
}
