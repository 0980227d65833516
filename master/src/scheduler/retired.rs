//! Pools that are gone from the config but still have workers of a previous
//! run in the ledger. Such a worker is drained: taken back like any other,
//! it finishes the build it was running, gets no other, and is then told to
//! shut down. Its provider went with the pool, so nothing but the worker
//! itself can stop it: the stand-in provider here launches nothing, lists
//! nothing and terminates nothing.

use std::sync::Arc;

use async_trait::async_trait;
use burst_providers::{
    Health, LaunchSpec, Launched, ListedInstance, Provider, ProviderError, ProviderKind,
    ProviderSection,
};

use super::pool::Pool;
use crate::config::PoolConfig;

impl Pool {
    /// The stand-in for pool `name`, whose workers the ledger says ran on a
    /// `kind` provider.
    pub fn retired(name: String, kind: &str) -> Self {
        let kind = ProviderKind::from_name(kind).unwrap_or(ProviderKind::Local);
        let mut cfg = PoolConfig::new(ProviderSection::from_sections(kind, Vec::new()));
        cfg.min_idle = 0;
        let provider = Arc::new(RetiredProvider { kind: kind.name() });
        let mut pool = Pool::new(name, cfg, provider);
        pool.retired = true;
        pool.stand_in = true;
        pool
    }
}

/// What is left of a removed pool's provider: its kind, for logs and the
/// ledger.
struct RetiredProvider {
    kind: &'static str,
}

impl RetiredProvider {
    fn gone(&self) -> ProviderError {
        ProviderError::permanent(format!(
            "the pool's {} provider is no longer in the config",
            self.kind
        ))
    }
}

#[async_trait]
impl Provider for RetiredProvider {
    fn kind(&self) -> &'static str {
        self.kind
    }

    async fn launch(&self, _spec: &LaunchSpec) -> Result<Launched, ProviderError> {
        Err(self.gone())
    }

    async fn terminate(&self, _worker_id: &str, _provider_id: &str) -> Result<(), ProviderError> {
        Err(self.gone())
    }

    async fn list(&self) -> Result<Vec<ListedInstance>, ProviderError> {
        Ok(Vec::new())
    }

    async fn health(&self, _worker_id: &str, _provider_id: &str) -> Result<Health, ProviderError> {
        Err(self.gone())
    }
}
