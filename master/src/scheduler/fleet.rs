//! What the scheduler tells `/metrics`: its state as gauges at one instant,
//! and the few counts that only it can make (a worker's start failure, its
//! cost once it is gone).

use std::sync::Arc;

use tokio::time::Instant;

use super::actor::Scheduler;
use super::worker::WorkerState;
use crate::cost::budget::{Level, Scope};
use crate::metrics::{
    accrued_cost, BudgetFleet, Fleet, HostFleet, LaunchFailure, Metrics, PoolFleet,
};
use crate::model::{now_millis, BuildState};

impl Scheduler {
    /// Records into `metrics` (the daemon's, which `/metrics` serves)
    /// instead of a private set.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    pub(super) fn fleet(&self, now: Instant) -> Fleet {
        let millis = now_millis();
        let mut pools: Vec<PoolFleet> = self
            .state
            .pools
            .iter()
            .map(|p| PoolFleet {
                pool: p.name.clone(),
                workers: WorkerState::ALL.iter().map(|s| (s.as_str(), 0)).collect(),
                queued: 0,
                sessions: 0,
                backoff_seconds: p
                    .retry_at
                    .map_or(0.0, |t| t.saturating_duration_since(now).as_secs_f64()),
                cost_dollars: self.metrics.retired_cost(&p.name),
                spend_rate: 0.0,
                hosts: p
                    .provider
                    .hosts()
                    .into_iter()
                    .map(|h| HostFleet {
                        host: h.name,
                        backoff_seconds: h.quarantined_for.as_secs_f64(),
                    })
                    .collect(),
            })
            .collect();
        for w in self.state.workers.values() {
            let Some(p) = pools.get_mut(w.pool) else {
                continue;
            };
            if let Some((_, n)) = p.workers.iter_mut().find(|(s, _)| *s == w.state.as_str()) {
                *n += 1;
            }
            if w.session.is_some() {
                p.sessions += 1;
            }
            p.cost_dollars += accrued_cost(&w.ledger, millis);
            if let Some(priced) = self
                .state
                .pools
                .get(w.pool)
                .and_then(|pool| super::spend::priced(w, &pool.cfg))
            {
                p.spend_rate += priced.price_per_hour;
            }
        }
        for id in &self.state.queue {
            let Some(build) = self.state.builds.get(id) else {
                continue;
            };
            if build.state != BuildState::Queued {
                continue;
            }
            // Pools are in name order: the first that serves it gets it. A
            // build no pool serves fails at once, so it is not counted.
            if let Some(i) = self
                .state
                .pools
                .iter()
                .position(|p| p.serves(&build.labels))
            {
                pools[i].queued += 1;
            }
        }
        let budgets = super::spend::view(&self.state, now)
            .map(|v| v.statuses)
            .unwrap_or_default()
            .into_iter()
            .map(|s| BudgetFleet {
                budget: match s.scope {
                    Scope::Global => "global".to_owned(),
                    Scope::Pool(p) => p,
                },
                period: s.period.as_str(),
                spent: s.spent,
                limit: s.limit,
                level: match s.level {
                    Level::Ok => 0,
                    Level::Warning => 1,
                    Level::Reached => 2,
                },
            })
            .collect();
        Fleet { pools, budgets }
    }

    /// A worker of pool `pool` failed to start: the launch call failed, or
    /// it died or timed out before connecting.
    pub(super) fn count_start_failure(&self, pool: usize, reason: LaunchFailure) {
        if let Some(p) = self.state.pools.get(pool) {
            self.metrics
                .launch_failed(&p.name, p.provider.kind(), reason);
        }
    }

    /// Drops a worker from the scheduler; its estimated cost is final.
    pub(super) fn remove_worker(&mut self, worker_id: &str) {
        let Some(w) = self.state.workers.get(worker_id) else {
            return;
        };
        let priced = (self.state.pools.get(w.pool)).and_then(|p| super::spend::priced(w, &p.cfg));
        let row = w.ledger.clone();
        self.record_spend(&row, priced);
        if let Some(w) = self.state.workers.remove(worker_id) {
            self.metrics.worker_retired(&w.ledger, now_millis());
        }
    }
}
