//! One retention pass: list what `[retention]` lets go, delete each
//! build's data, then its rows. Queued and running builds are never listed,
//! and the store refuses to delete one even if asked.

use std::sync::Arc;

use burst_common::error_chain::Chain;
use serde::{Deserialize, Serialize};

use super::BuildData;
use crate::config::LiveConfig;
use crate::model::{now_millis, BuildId, ExpiredBuild};
use crate::store::{Store, StoreResult};

/// Builds deleted per store round trip.
const BATCH: u32 = 500;
/// Most builds a dry run lists (it cannot page by deleting).
const DRY_RUN_MAX: u32 = 10_000;

/// What a pass deleted, or (dry run) would delete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GcReport {
    pub dry_run: bool,
    /// False when `[retention]` sets no limit: nothing is ever deleted.
    pub enabled: bool,
    /// The builds, oldest first.
    pub builds: Vec<ExpiredBuild>,
    /// Bytes of per-build data freed (or that would be).
    pub bytes: u64,
    /// A dry run stopped at its listing limit: more would go.
    #[serde(default)]
    pub truncated: bool,
    /// Cache volumes removed: no builder of their pool declares them any
    /// more, and no container mounts them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<String>,
    /// Cache archives (`scope/key`) neither saved nor restored within
    /// `[artifacts] cache_max_age`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub caches: Vec<String>,
}

pub struct Janitor {
    store: Arc<dyn Store>,
    config: LiveConfig,
    data: Vec<Arc<dyn BuildData>>,
    /// Pools whose providers may hold cache volumes, by name.
    volume_pools: Vec<(String, Arc<dyn burst_providers::Provider>)>,
    caches: Option<Arc<crate::caches::CacheStore>>,
    /// One pass at a time (the background one and `burst gc`).
    pass: tokio::sync::Mutex<()>,
}

impl Janitor {
    pub fn new(store: Arc<dyn Store>, config: LiveConfig) -> Self {
        Self {
            store,
            config,
            data: Vec::new(),
            volume_pools: Vec::new(),
            caches: None,
            pass: tokio::sync::Mutex::new(()),
        }
    }

    /// Adds a kind of per-build data deleted with its build.
    pub fn with_data(mut self, data: Arc<dyn BuildData>) -> Self {
        self.data.push(data);
        self
    }

    /// Also removes the cache volumes of these pools that the config in
    /// force no longer declares.
    pub fn with_volume_pools(
        mut self,
        pools: Vec<(String, Arc<dyn burst_providers::Provider>)>,
    ) -> Self {
        self.volume_pools = pools;
        self
    }

    /// Also removes the cache archives unused for `[artifacts] cache_max_age`.
    pub fn with_caches(mut self, caches: Arc<crate::caches::CacheStore>) -> Self {
        self.caches = Some(caches);
        self
    }

    /// What goes whatever `[retention]` says: cache volumes no builder
    /// declares, and cache archives unused for too long.
    pub async fn sweep_caches(&self) -> (Vec<String>, Vec<String>) {
        let volumes = self.sweep_volumes().await;
        let mut archives = Vec::new();
        if let Some(store) = &self.caches {
            let age = self.config.get().artifacts.cache_max_age.get();
            let before =
                now_millis().saturating_sub(i64::try_from(age.as_millis()).unwrap_or(i64::MAX));
            match store.expire(before).await {
                Ok(gone) => archives = gone,
                Err(e) => {
                    tracing::warn!(error = %e, "failed to expire old caches; trying again at the next pass")
                }
            }
        }
        (volumes, archives)
    }

    /// Cache volumes no builder declares any more, pool by pool; a pool
    /// that cannot be asked keeps its volumes until the next pass.
    async fn sweep_volumes(&self) -> Vec<String> {
        let config = self.config.get();
        let mut removed = Vec::new();
        for (pool, provider) in &self.volume_pools {
            let keep: Vec<String> = crate::config::cache_volumes(&config, pool)
                .into_iter()
                .map(|v| v.name)
                .collect();
            match provider.remove_cache_volumes(&keep).await {
                Ok(gone) => removed.extend(gone),
                Err(e) => {
                    tracing::warn!(pool, error = %e, "failed to collect a pool's cache volumes")
                }
            }
        }
        removed
    }

    /// Runs one pass under the retention config in force now.
    pub async fn sweep(&self, dry_run: bool) -> StoreResult<GcReport> {
        let _pass = self.pass.lock().await;
        let retention = self.config.get().retention.clone();
        let rule = retention.rule(now_millis());
        let mut report = GcReport {
            dry_run,
            enabled: retention.enabled(),
            builds: Vec::new(),
            bytes: 0,
            truncated: false,
            volumes: Vec::new(),
            caches: Vec::new(),
        };
        if dry_run {
            let listed = self.store.expired_builds(&rule, DRY_RUN_MAX).await?;
            report.truncated = listed.len() == DRY_RUN_MAX as usize;
            for build in &listed {
                for data in &self.data {
                    report.bytes += data.usage(build.id).await;
                }
            }
            report.builds = listed;
            return Ok(report);
        }
        loop {
            let listed = self.store.expired_builds(&rule, BATCH).await?;
            let full = listed.len() == BATCH as usize;
            let mut cleared: Vec<BuildId> = Vec::with_capacity(listed.len());
            let mut gone = Vec::with_capacity(listed.len());
            for build in listed {
                match self.delete_data(build.id).await {
                    Some(bytes) => {
                        report.bytes += bytes;
                        cleared.push(build.id);
                        gone.push(build);
                    }
                    None => continue,
                }
            }
            let deleted = self.store.delete_builds(&cleared).await?;
            if deleted != cleared.len() as u64 {
                tracing::warn!(
                    asked = cleared.len(),
                    deleted,
                    "retention: some builds were not deleted (no longer finished?)"
                );
            }
            report.builds.extend(gone);
            // A batch whose data could not all be deleted is not retried in
            // this pass (it would be listed again at once).
            if !full || cleared.len() < BATCH as usize {
                break;
            }
        }
        (report.volumes, report.caches) = self.sweep_caches().await;
        Ok(report)
    }

    /// Every kind of data of one build; `None` when one failed (the
    /// build's rows stay, for the next pass).
    async fn delete_data(&self, build: BuildId) -> Option<u64> {
        let mut freed = 0;
        for data in &self.data {
            match data.delete(build).await {
                Ok(bytes) => freed += bytes,
                Err(e) => {
                    tracing::warn!(build, data = data.name(), error = %Chain(&e), "retention: failed to delete a build's data; its rows stay until the next pass");
                    return None;
                }
            }
        }
        Some(freed)
    }
}
