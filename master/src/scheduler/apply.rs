//! The acting half of the scheduler: performs a plan's effects. Provider
//! calls run as tasks that report back as events (see `terminate.rs`), so
//! applying a plan never waits on a provider.

use tokio::time::Instant;

use super::actor::Scheduler;
use super::decide::decide;
use super::effect::Effect;
use super::reason::StopReason;
use crate::metrics::LaunchFailure;
use crate::model::{now_millis, BuildState};

/// Decide-and-apply rounds per look, so effects that unlock others (a
/// requeued build, a pool that just started backing off) settle at once.
const MAX_ROUNDS: usize = 8;

impl Scheduler {
    /// Applies plans until the state needs nothing more now; returns when
    /// to look again.
    pub(super) async fn reconcile(&mut self, now: Instant) -> Option<Instant> {
        for _ in 0..MAX_ROUNDS {
            let plan = decide(&self.state, now);
            if plan.effects.is_empty() {
                return plan.wake_at;
            }
            if !self.apply(plan.effects, now).await {
                break;
            }
        }
        // Stalled or not settled: what is left waits for the next look.
        decide(&self.state, now).wake_at
    }

    /// Performs effects in order. False when a launch or an attempt could not
    /// be recorded in the store (deciding again at once would only fail again).
    async fn apply(&mut self, effects: Vec<Effect>, now: Instant) -> bool {
        let mut unlaunchable = vec![false; self.state.pools.len()];
        // A plan's starts are saved together, after its other effects.
        let mut starts = Vec::new();
        for effect in effects {
            match effect {
                Effect::PoolFailed { pool, cause } => {
                    let err = burst_providers::ProviderError::transient(cause.to_string());
                    self.state.pools[pool].record_failure(&err, now);
                    self.count_start_failure(pool, LaunchFailure::transient);
                }
                Effect::LoseBuild { build, reason } => self.lose_build(build, &reason).await,
                Effect::Fence {
                    build,
                    reason,
                    until,
                } => self.fence_build(build, reason, until),
                Effect::Terminate { worker, reason } => {
                    if let StopReason::Expired(_) = &reason {
                        tracing::warn!(worker = %worker, %reason, "worker deadline passed");
                    }
                    self.terminate(&worker, &reason).await;
                }
                Effect::CheckHealth { worker } => self.spawn_health_check(&worker, now),
                Effect::CancelForShutdown { build } => self.cancel_for_shutdown(build).await,
                Effect::Start { build, worker } => starts.push((build, worker)),
                Effect::Fail { build, reason } => {
                    if let Some(b) = self.state.builds.get_mut(&build) {
                        tracing::warn!(build, %reason, "build cannot be served");
                        b.state = BuildState::Failed;
                        b.reason = Some(reason.to_string());
                        b.finished_at = Some(now_millis());
                    }
                    self.persist_build(build);
                }
                Effect::Launch { pool } => {
                    if !unlaunchable[pool] && !self.launch(pool, now).await {
                        unlaunchable[pool] = true;
                    }
                }
                Effect::Explain { build, status } => {
                    if let Some(b) = self.state.builds.get_mut(&build) {
                        b.reason = Some(status.to_string());
                    }
                    self.persist_build(build);
                }
                Effect::Budget {
                    scope,
                    period,
                    level,
                    message,
                } => self.budget_level(scope, period, level, &message),
            }
        }
        let started = self.start_builds(starts, now).await;
        !unlaunchable.contains(&true) && started
    }
}
