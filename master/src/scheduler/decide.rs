//! The pure half of the scheduler: from its state and the time, what to do
//! and when to look again. Like a kube-rs reconcile, it compares desired
//! state (queued builds, `min_idle`, deadlines) with observed state (workers)
//! but only returns effects; `apply` performs them.
//!
//! A plan is computed against the state as its own earlier effects leave it
//! (a worker given a build is no longer idle, a timed-out pool backs off), so
//! effects in one plan never contradict each other. Every deadline that is
//! checked and not yet due is a candidate wake time, so the wake time and the
//! checks cannot drift apart.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use super::effect::{Effect, Plan};
use super::reason::StopReason;
use super::spend::{self, SpendView};
use super::state::State;
use super::warm;
use super::worker::{Worker, WorkerState};
use crate::config::{PoolConfig, Teardown};
use crate::cost::budget::Level;
use crate::model::{BuildId, Expiry, LostReason, QueuedStatus, Retrying, Unservable, WaitReason};

#[cfg(test)]
mod tests;

pub fn decide(state: &State, now: Instant) -> Plan {
    let mut pass = Pass::new(state, now);
    pass.deadlines();
    pass.fences();
    pass.health_checks();
    match &state.shutdown {
        Some(shutdown) => pass.drain(shutdown.deadline),
        None => {
            pass.retire();
            pass.assign();
            pass.fail_unservable();
            pass.scale_up();
            pass.scale_down();
            pass.explain();
            pass.budgets();
        }
    }
    Plan {
        effects: pass.effects,
        wake_at: pass.wake,
    }
}

/// The pool settings decisions depend on, read in one place.
struct Limits {
    max_workers: u32,
    min_idle: u32,
    max_starting: u32,
    idle_timeout: Duration,
    start_timeout: Duration,
}

impl Limits {
    /// At wall-clock `wall`, with `busy` workers busy: warm periods and
    /// idle scaling move `min_idle` and `max_workers` (see `warm.rs`).
    fn of(cfg: &PoolConfig, wall: DateTime<Utc>, busy: u32) -> Self {
        let target = warm::target(cfg, wall, busy);
        Self {
            max_workers: target.max_workers,
            min_idle: target.min_idle,
            max_starting: cfg.max_starting.get(),
            idle_timeout: cfg.idle_timeout.get(),
            start_timeout: cfg.start_timeout.get(),
        }
    }
}

struct Pass<'a> {
    state: &'a State,
    now: Instant,
    limits: Vec<Limits>,
    /// Workers whose state this plan changes, with their state afterwards.
    changed: HashMap<&'a str, WorkerState>,
    /// Queued builds this plan neither starts nor fails, oldest first.
    queue: Vec<BuildId>,
    /// Pools this plan puts into backoff (their retry time is not known yet).
    failing: Vec<bool>,
    launched: Vec<u32>,
    /// Budgets and spend-rate caps (None: none configured).
    spend: Option<SpendView>,
    effects: Vec<Effect>,
    wake: Option<Instant>,
}

impl<'a> Pass<'a> {
    fn new(state: &'a State, now: Instant) -> Self {
        let n = state.pools.len();
        let wall = state.settings.clock.at(now);
        let mut busy = vec![0u32; n];
        for w in state.workers.values() {
            if w.state == WorkerState::Busy {
                busy[w.pool] += 1;
            }
        }
        let mut wake = None;
        for p in state.pools.iter().filter(|p| !p.retired) {
            if let Some(at) = warm::next_change(&p.cfg, now, wall) {
                wake = Some(wake.map_or(at, |w: Instant| w.min(at)));
            }
        }
        let spend = spend::view(state, now);
        if let Some(ms) = spend.as_ref().and_then(|s| s.wake_in) {
            let at = now + Duration::from_millis(ms.max(0) as u64);
            wake = Some(wake.map_or(at, |w: Instant| w.min(at)));
        }
        Self {
            state,
            now,
            spend,
            limits: state
                .pools
                .iter()
                .zip(&busy)
                .map(|(p, &busy)| Limits::of(&p.cfg, wall, busy))
                .collect(),
            changed: HashMap::new(),
            queue: state
                .queue
                .iter()
                .copied()
                .filter(|id| state.builds.contains_key(id))
                .collect(),
            failing: vec![false; n],
            launched: vec![0; n],
            effects: Vec::new(),
            // A period can begin or end at the next minute.
            wake,
        }
    }

    /// A deadline: true when it is due; otherwise it becomes a wake candidate.
    fn due(&mut self, at: Instant) -> bool {
        if at <= self.now {
            return true;
        }
        self.wake = Some(self.wake.map_or(at, |w| w.min(at)));
        false
    }

    fn state_of(&self, w: &Worker) -> WorkerState {
        self.changed.get(w.id.as_str()).copied().unwrap_or(w.state)
    }

    fn count(&self, p: usize, pred: impl Fn(WorkerState) -> bool) -> u32 {
        self.state
            .workers
            .values()
            .filter(|w| w.pool == p && pred(self.state_of(w)))
            .count() as u32
    }

    fn terminate(&mut self, w: &'a Worker, reason: StopReason) {
        self.changed.insert(&w.id, WorkerState::Terminating);
        self.effects.push(Effect::Terminate {
            worker: w.id.clone(),
            reason,
        });
    }

    /// Start timeouts, reconnect windows and missed heartbeats.
    fn deadlines(&mut self) {
        let state = self.state;
        let window = state.settings.heartbeat_window();
        for w in state.workers.values() {
            let worker = w.id.clone();
            let expiry = match w.state {
                WorkerState::Launching | WorkerState::Connecting => w
                    .deadline
                    .filter(|d| self.due(*d))
                    .map(|_| Expiry::StartTimeout {
                        worker,
                        timeout: self.limits[w.pool].start_timeout,
                    }),
                WorkerState::Reconnecting => w
                    .deadline
                    .filter(|d| self.due(*d))
                    .map(|_| Expiry::NoReconnect { worker }),
                WorkerState::Idle | WorkerState::Busy => self
                    .due(w.last_seen + window)
                    .then_some(Expiry::MissedHeartbeats { worker, window }),
                WorkerState::Terminating => None,
            };
            let Some(expiry) = expiry else {
                continue;
            };
            if matches!(expiry, Expiry::StartTimeout { .. }) {
                self.failing[w.pool] = true;
                self.effects.push(Effect::PoolFailed {
                    pool: w.pool,
                    cause: expiry.clone(),
                });
            }
            // Fencing: the worker may still run the step until its lease
            // runs out, so the retry waits for the provider or the lease.
            if let Some(build) = w.build {
                self.effects.push(Effect::Fence {
                    build,
                    reason: LostReason::Expired(expiry.clone()),
                    until: w.lease_until + state.settings.lease_grace(),
                });
            }
            self.terminate(w, StopReason::Expired(expiry));
        }
    }

    /// Builds of lost workers whose lease has surely run out are lost now,
    /// even when their provider never confirmed the worker gone.
    fn fences(&mut self) {
        let state = self.state;
        let mut fenced: Vec<_> = state
            .running
            .iter()
            .filter_map(|(id, run)| run.fence.as_ref().map(|f| (*id, f)))
            .collect();
        fenced.sort_by_key(|(id, _)| *id);
        for (build, fence) in fenced {
            if self.due(fence.until) {
                self.effects.push(Effect::LoseBuild {
                    build,
                    reason: fence.reason.clone(),
                });
            }
        }
    }

    /// Polls the provider about workers that should connect, so one that
    /// died while starting fails fast instead of at its deadline.
    fn health_checks(&mut self) {
        let state = self.state;
        for w in state.workers.values() {
            let waiting = matches!(
                self.state_of(w),
                WorkerState::Connecting | WorkerState::Reconnecting
            );
            // A stand-in pool has no provider left to ask.
            let retired = state.pools[w.pool].stand_in;
            if !waiting || retired || w.health_in_flight || w.ledger.provider_id.is_none() {
                continue;
            }
            if self.due(w.next_health) {
                self.effects.push(Effect::CheckHealth {
                    worker: w.id.clone(),
                });
            }
        }
    }

    /// Shutting down: running builds get the grace period, everything else
    /// is terminated now.
    fn drain(&mut self, deadline: Instant) {
        let grace_over = deadline <= self.now;
        let state = self.state;
        for w in state.workers.values() {
            match self.state_of(w) {
                WorkerState::Terminating => {}
                WorkerState::Busy if !grace_over => {
                    self.due(deadline);
                }
                _ => {
                    if let Some(build) = w.build {
                        self.effects.push(Effect::CancelForShutdown { build });
                    }
                    self.terminate(w, StopReason::ShuttingDown);
                }
            }
        }
    }

    /// Workers of retired pools (gone from the config) that have no build
    /// left are stopped; the one they came back with, or were running when
    /// a reload removed their pool, ran to its end. Workers a removed pool
    /// was still starting are stopped at once.
    fn retire(&mut self) {
        let state = self.state;
        for w in state.workers.values() {
            let pool = &state.pools[w.pool];
            let starting = !pool.stand_in && self.state_of(w).is_starting();
            if pool.retired && (self.state_of(w) == WorkerState::Idle || starting) {
                let pool = state.pools[w.pool].name.clone();
                self.terminate(w, StopReason::PoolRemoved { pool });
            }
        }
    }

    /// Hands queued builds to idle workers, oldest build first, each to the
    /// first idle worker (in id order) whose pool serves it. The idle
    /// workers are gathered once, so a long queue with none left costs one
    /// look per build, not a scan of the fleet each.
    fn assign(&mut self) {
        let state = self.state;
        let mut idle: Vec<&'a Worker> = state
            .workers
            .values()
            .filter(|w| self.state_of(w) == WorkerState::Idle && w.session.is_some())
            .collect();
        let mut waiting = Vec::new();
        for id in std::mem::take(&mut self.queue) {
            if idle.is_empty() {
                waiting.push(id);
                continue;
            }
            let labels = &state.builds[&id].labels;
            match idle.iter().position(|w| state.pools[w.pool].serves(labels)) {
                Some(i) => {
                    let w = idle.remove(i);
                    self.changed.insert(&w.id, WorkerState::Busy);
                    self.effects.push(Effect::Start {
                        build: id,
                        worker: w.id.clone(),
                    });
                }
                None => waiting.push(id),
            }
        }
        self.queue = waiting;
    }

    /// Fails queued builds no pool can serve: their labels match no pool
    /// (the config changed since they were queued), or every pool that
    /// matches failed with a permanent error.
    fn fail_unservable(&mut self) {
        let pools = &self.state.pools;
        let mut waiting = Vec::new();
        for id in std::mem::take(&mut self.queue) {
            let build = &self.state.builds[&id];
            let serving: Vec<_> = pools.iter().filter(|p| p.serves(&build.labels)).collect();
            let reason = if serving.is_empty() {
                Unservable::NoPool {
                    labels: build.labels.clone(),
                }
            } else if let Some(errors) = serving
                .iter()
                .map(|p| Some((p.name.clone(), p.permanent_error.clone()?)))
                .collect::<Option<Vec<_>>>()
            {
                Unservable::LaunchFailed { errors }
            } else {
                waiting.push(id);
                continue;
            };
            self.effects.push(Effect::Fail { build: id, reason });
        }
        self.queue = waiting;
    }

    fn backing_off(&self, p: usize) -> bool {
        self.failing[p] || self.state.pools[p].backing_off(self.now)
    }

    /// How many workers pool `p` may launch now.
    fn room(&self, p: usize) -> u32 {
        if self.backing_off(p) || self.state.pools[p].retired {
            return 0;
        }
        let limits = &self.limits[p];
        let alive = self.count(p, |_| true);
        let starting = self.count(p, WorkerState::is_starting);
        let room = limits
            .max_workers
            .saturating_sub(alive)
            .min(limits.max_starting.saturating_sub(starting));
        match &self.spend {
            Some(s) if s.blocked[p].is_some() => 0,
            Some(s) => room.min(s.rate_room[p].unwrap_or(u32::MAX)),
            None => room,
        }
    }

    /// Holds launches to what `[budget] max_spend_rate` has room for,
    /// pools in name order.
    fn global_rate(&mut self, wanted: &mut [u32]) {
        let Some(s) = &mut self.spend else { return };
        let Some(mut headroom) = s.global_headroom else {
            return;
        };
        for (p, want) in wanted.iter_mut().enumerate() {
            let price = s.launch_price[p];
            if *want == 0 || price <= 0.0 {
                continue;
            }
            let fits = ((headroom / price) + 1e-9).floor().max(0.0) as u32;
            if fits < *want {
                *want = fits;
                if fits == 0 && s.blocked[p].is_none() {
                    s.blocked[p] = Some(spend::global_rate_reason(self.state, headroom));
                }
            }
            headroom -= f64::from(*want) * price;
        }
    }

    /// Launches workers for queued builds no starting worker covers, and
    /// for `min_idle`, within `max_workers` and `max_starting`.
    fn scale_up(&mut self) {
        let n = self.state.pools.len();
        // Starting workers not yet spoken for by a queued build.
        let mut spare: Vec<u32> = (0..n)
            .map(|p| self.count(p, WorkerState::is_starting))
            .collect();
        let room: Vec<u32> = (0..n).map(|p| self.room(p)).collect();
        let mut wanted = vec![0u32; n];
        let mut demand = vec![false; n];
        for id in &self.queue {
            let labels = &self.state.builds[id].labels;
            let serving: Vec<usize> = (0..n)
                .filter(|&p| self.state.pools[p].serves(labels))
                .collect();
            for &p in &serving {
                demand[p] = true;
            }
            if let Some(&p) = serving.iter().find(|&&p| spare[p] > 0) {
                spare[p] -= 1;
            } else if let Some(&p) = serving.iter().find(|&&p| wanted[p] < room[p]) {
                wanted[p] += 1;
            }
        }
        for p in 0..n {
            let idle = self.count(p, |s| s == WorkerState::Idle);
            let min_idle = self.limits[p].min_idle;
            if idle + spare[p] < min_idle {
                demand[p] = true;
            }
            let warm = idle + spare[p] + wanted[p];
            if warm < min_idle {
                wanted[p] += min_idle - warm;
            }
            wanted[p] = wanted[p].min(room[p]);
        }
        self.global_rate(&mut wanted);
        for p in 0..n {
            let launches = wanted[p];
            self.launched[p] = launches;
            self.effects
                .extend((0..launches).map(|_| Effect::Launch { pool: p }));
            // A backoff that ends is a deadline only if a launch waits for it.
            let retry_at = self.state.pools[p].retry_at;
            if let (true, Some(at)) = (demand[p], retry_at) {
                self.due(at);
            }
        }
    }

    /// Terminates idle workers past `idle_timeout`, keeping `min_idle`.
    /// Busy workers are never candidates.
    fn scale_down(&mut self) {
        let state = self.state;
        for p in 0..state.pools.len() {
            let (min_idle, idle_timeout) = (self.limits[p].min_idle, self.limits[p].idle_timeout);
            let mut idle: Vec<&Worker> = state
                .workers
                .values()
                .filter(|w| w.pool == p && self.state_of(w) == WorkerState::Idle)
                .collect();
            idle.sort_by(|a, b| (a.since, &a.id).cmp(&(b.since, &b.id)));
            let mut keep = idle.len() as u32;
            let billing_aware = state.pools[p].cfg.teardown == Teardown::BillingAware;
            // Oldest idle first; a worker kept for what it already paid
            // for does not hold back the next one.
            for w in idle {
                // Spares under min_idle have no deadline at all.
                if keep <= min_idle || !self.due(w.since + idle_timeout) {
                    break;
                }
                if billing_aware {
                    if let Some(until) = self.paid_until(w) {
                        if !self.due(until) {
                            continue;
                        }
                    }
                }
                self.terminate(w, StopReason::IdleTimeout);
                keep -= 1;
            }
        }
    }

    /// Under `teardown = "billing-aware"`: when what an idle worker has
    /// already paid for runs out (its billing minimum, or the increment
    /// under way), less a minute for an increment over a minute so the stop
    /// lands before the next one starts. None: no rule recorded.
    fn paid_until(&self, w: &Worker) -> Option<Instant> {
        let priced = spend::priced(w, &self.state.pools[w.pool].cfg)?;
        let clock = &self.state.settings.clock;
        let now_ms = clock.millis(self.now);
        let paid = priced.billing.paid_until(w.ledger.launched_at, now_ms);
        let margin = if priced.billing.increment > Duration::from_secs(60) {
            60_000
        } else {
            0
        };
        let ms = paid - margin - now_ms;
        Some(self.now + Duration::from_millis(ms.max(0) as u64))
    }

    /// Budget levels that changed since they were last reported.
    fn budgets(&mut self) {
        let Some(s) = &self.spend else { return };
        for status in &s.statuses {
            let key = (status.scope.clone(), status.period);
            let old = self
                .state
                .spend
                .levels
                .get(&key)
                .copied()
                .unwrap_or(Level::Ok);
            if old != status.level {
                self.effects.push(Effect::Budget {
                    scope: status.scope.clone(),
                    period: status.period,
                    level: status.level,
                    message: status.to_string(),
                });
            }
        }
    }

    /// Keeps each queued build's status saying what it waits for.
    fn explain(&mut self) {
        // Counted once per pool, not once per queued build.
        let pools = 0..self.state.pools.len();
        let starting: Vec<u32> = pools
            .clone()
            .map(|p| self.count(p, WorkerState::is_starting) + self.launched[p])
            .collect();
        let alive: Vec<u32> = pools
            .map(|p| self.count(p, |_| true) + self.launched[p])
            .collect();
        for &id in &self.queue {
            let build = &self.state.builds[&id];
            let Some(p) = self
                .state
                .pools
                .iter()
                .position(|p| p.serves(&build.labels))
            else {
                continue;
            };
            // Its backoff starts when this plan is applied; explained then.
            if self.failing[p] {
                continue;
            }
            let pool = &self.state.pools[p];
            let name = pool.name.clone();
            let (starting, alive) = (starting[p], alive[p]);
            let wait = match (&pool.last_error, pool.backing_off(self.now)) {
                (Some(error), true) => WaitReason::Backoff {
                    pool: name,
                    error: error.clone(),
                    retry_after: Duration::from_secs(pool.last_delay.as_secs().max(1)),
                },
                _ if starting > 0 => WaitReason::Starting { pool: name },
                _ if self.spend.as_ref().is_some_and(|s| s.blocked[p].is_some()) => {
                    WaitReason::Spend {
                        why: self
                            .spend
                            .as_ref()
                            .and_then(|s| s.blocked[p].clone())
                            .unwrap_or_default(),
                    }
                }
                _ if alive >= self.limits[p].max_workers => WaitReason::AtCap {
                    pool: name,
                    max_workers: self.limits[p].max_workers,
                },
                _ => WaitReason::Worker { pool: name },
            };
            let status = QueuedStatus {
                retry: Retrying::of(build),
                wait,
            };
            if build.reason.as_deref() != Some(status.to_string().as_str()) {
                self.effects.push(Effect::Explain { build: id, status });
            }
        }
    }
}
