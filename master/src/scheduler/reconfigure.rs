//! A config reload's pools: the actor swaps its pool list in one event, so
//! no decision ever sees half of it. Pools are matched by name:
//! - a new name is a new pool;
//! - a kept name takes the new settings (caps, timeouts, labels apply to
//!   its workers from now on); a changed provider section launches the next
//!   workers, while each running worker is still stopped by the provider
//!   that launched it (`Worker::provider`);
//! - a name gone from the config is *retired*, like a removed pool at start
//!   (`retired.rs`), but keeps its real provider: it serves and launches
//!   nothing, its busy workers finish their builds, and idle or starting
//!   ones are terminated (`decide`'s `retire`). Once it has no worker left,
//!   the next reload drops it.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::actor::{PoolSpec, Scheduler};
use super::pool::Pool;

/// What a reload changed, by pool name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolChanges {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
}

impl Scheduler {
    pub(super) fn reconfigure(&mut self, mut specs: Vec<PoolSpec>) -> PoolChanges {
        specs.sort_by(|a, b| a.name.cmp(&b.name));
        let mut changes = PoolChanges::default();
        let mut old: Vec<Option<Pool>> = std::mem::take(&mut self.state.pools)
            .into_iter()
            .map(Some)
            .collect();
        let mut pools = Vec::with_capacity(specs.len());
        // Old index -> new index, for the workers.
        let mut moved: HashMap<usize, usize> = HashMap::new();
        for spec in specs {
            let found = old
                .iter()
                .position(|p| p.as_ref().is_some_and(|p| p.name == spec.name));
            let Some(i) = found else {
                tracing::info!(pool = %spec.name, "reload: pool added");
                changes.added.push(spec.name.clone());
                pools.push(Pool::new(spec.name, spec.config, spec.provider));
                continue;
            };
            let Some(mut pool) = old[i].take() else {
                continue;
            };
            if pool.cfg != spec.config || pool.retired {
                tracing::info!(pool = %spec.name, "reload: pool settings changed");
                changes.changed.push(spec.name.clone());
            }
            if pool.cfg.provider != spec.config.provider || pool.stand_in {
                pool.provider = spec.provider;
            }
            pool.reconfigure(spec.config);
            moved.insert(i, pools.len());
            pools.push(pool);
        }
        for (i, pool) in old.into_iter().enumerate() {
            let Some(mut pool) = pool else {
                continue;
            };
            let workers = self.state.workers.values().filter(|w| w.pool == i).count();
            if !pool.retired {
                tracing::info!(pool = %pool.name, workers, "reload: pool removed; its workers finish their builds and are stopped");
                changes.removed.push(pool.name.clone());
            }
            if workers > 0 {
                pool.retired = true;
                moved.insert(i, pools.len());
                pools.push(pool);
            }
        }
        for w in self.state.workers.values_mut() {
            // Every worker's pool was kept or retired above.
            if let Some(&to) = moved.get(&w.pool) {
                w.pool = to;
            }
        }
        self.state.pools = pools;
        changes
    }
}
