//! What `GET /api/v1/pools` and the workers page show of each pool: its
//! caps from the config, and counts and backoff from the same `Fleet`
//! snapshot `/metrics` encodes, so the two cannot disagree.

use tokio::time::Instant;

use super::actor::Scheduler;
use super::warm;
use super::worker::WorkerState;
use crate::cost::budget::Scope;
use crate::model::{BudgetView, HostView, PoolView};

impl Scheduler {
    pub(super) fn pool_views(&self, now: Instant) -> Vec<PoolView> {
        let fleet = self.fleet(now);
        let wall = self.state.settings.clock.at(now);
        let statuses = super::spend::view(&self.state, now)
            .map(|v| v.statuses)
            .unwrap_or_default();
        self.state
            .pools
            .iter()
            .zip(fleet.pools)
            .map(|(p, f)| {
                let count = |states: &[WorkerState]| -> u32 {
                    let n: u64 = f
                        .workers
                        .iter()
                        .filter(|(s, _)| states.iter().any(|st| st.as_str() == *s))
                        .map(|(_, n)| n)
                        .sum();
                    u32::try_from(n).unwrap_or(u32::MAX)
                };
                let target = warm::target(&p.cfg, wall, count(&[WorkerState::Busy]));
                PoolView {
                    pool: p.name.clone(),
                    provider: p.provider.kind().to_owned(),
                    labels: p.cfg.labels.clone(),
                    max_workers: target.max_workers,
                    min_idle: target.min_idle,
                    warm_period: target.period,
                    max_starting: p.cfg.max_starting.get(),
                    workers: count(&WorkerState::ALL),
                    launching: count(&[WorkerState::Launching, WorkerState::Connecting]),
                    idle: count(&[WorkerState::Idle]),
                    busy: count(&[WorkerState::Busy]),
                    queued: u32::try_from(f.queued).unwrap_or(u32::MAX),
                    backoff_secs: p.backing_off(now).then_some(f.backoff_seconds),
                    last_error: p.last_error.clone(),
                    permanent_error: p.permanent_error.clone(),
                    hosts: f
                        .hosts
                        .into_iter()
                        .map(|h| HostView {
                            host: h.host,
                            backoff_secs: h.backoff_seconds,
                        })
                        .collect(),
                    spend_rate: f.spend_rate,
                    budgets: statuses
                        .iter()
                        .filter(|s| match &s.scope {
                            Scope::Global => true,
                            Scope::Pool(name) => *name == p.name,
                        })
                        .map(|s| BudgetView {
                            budget: s.scope.to_string(),
                            period: s.period.as_str().to_owned(),
                            spent: s.spent,
                            limit: s.limit,
                            level: s.level.as_str().to_owned(),
                            message: s.to_string(),
                        })
                        .collect(),
                }
            })
            .collect()
    }
}
