//! The reconcile pass: desired state (queued builds, warm spares, deadlines)
//! against observed state (workers), run after every event and timer.

use std::time::Duration;

use tokio::time::Instant;

use super::actor::Scheduler;
use super::worker::WorkerState;
use crate::model::{now_millis, BuildId, BuildState, WorkerView};

/// The longest the actor sleeps without looking again.
const MAX_SLEEP: Duration = Duration::from_secs(60);

impl Scheduler {
    pub(super) async fn reconcile(&mut self, now: Instant) {
        self.check_deadlines(now).await;
        self.spawn_health_checks(now);
        if self.shutdown.is_some() {
            self.reconcile_shutdown(now).await;
            return;
        }
        self.assign(now).await;
        self.fail_unservable().await;
        self.scale_up(now).await;
        self.scale_down(now).await;
        self.explain_waiting(now).await;
    }

    /// Start timeouts, reconnect windows and missed heartbeats.
    async fn check_deadlines(&mut self, now: Instant) {
        let window = self.settings.heartbeat_window();
        let mut expired = Vec::new();
        for w in self.workers.values() {
            match w.state {
                WorkerState::Launching | WorkerState::Connecting | WorkerState::Reconnecting => {
                    if w.deadline.is_some_and(|d| d <= now) {
                        expired.push((w.id.clone(), w.state, w.build));
                    }
                }
                WorkerState::Idle | WorkerState::Busy => {
                    if w.last_seen + window <= now {
                        expired.push((w.id.clone(), w.state, w.build));
                    }
                }
                WorkerState::Terminating => {}
            }
        }
        for (id, state, build) in expired {
            let reason = match state {
                WorkerState::Launching | WorkerState::Connecting => {
                    let pool = self.workers.get(&id).map(|w| w.pool).unwrap_or_default();
                    let timeout = self.pools[pool].cfg.start_timeout.get();
                    let reason = format!(
                        "worker {id} did not connect within start_timeout ({})",
                        humantime::format_duration(timeout)
                    );
                    let err = burst_providers::ProviderError::transient(reason.clone());
                    self.pools[pool].record_failure(&err, now);
                    reason
                }
                WorkerState::Reconnecting => format!("worker {id} did not reconnect"),
                _ => format!(
                    "worker {id} missed its heartbeats for {}",
                    humantime::format_duration(window)
                ),
            };
            tracing::warn!(worker = %id, %reason, "worker deadline passed");
            if let Some(build) = build {
                self.lose_build(build, &reason).await;
            }
            self.terminate(&id, &reason).await;
        }
    }

    /// Hands queued builds to idle workers, oldest build first.
    async fn assign(&mut self, now: Instant) {
        let queued: Vec<BuildId> = self.queue.iter().copied().collect();
        for id in queued {
            let Some(labels) = self.builds.get(&id).map(|b| b.labels.clone()) else {
                continue;
            };
            let worker = self.workers.values().find(|w| {
                w.state == WorkerState::Idle
                    && w.session.is_some()
                    && self.pools[w.pool].serves(&labels)
            });
            if let Some(worker_id) = worker.map(|w| w.id.clone()) {
                self.start_build(id, &worker_id, now).await;
            }
        }
    }

    /// Fails queued builds that no pool can serve: their labels match no
    /// pool (the config changed since they were queued), or every pool that
    /// matches failed with a permanent error.
    async fn fail_unservable(&mut self) {
        let mut doomed = Vec::new();
        for id in &self.queue {
            let Some(build) = self.builds.get(id) else {
                continue;
            };
            let pools: Vec<_> = self
                .pools
                .iter()
                .filter(|p| p.serves(&build.labels))
                .collect();
            let reason = if pools.is_empty() {
                format!("no pool serves labels [{}]", build.labels.join(", "))
            } else if pools.iter().all(|p| p.permanent_error.is_some()) {
                let errors: Vec<_> = pools
                    .iter()
                    .map(|p| {
                        format!(
                            "pool {}: {}",
                            p.name,
                            p.permanent_error.as_deref().unwrap_or_default()
                        )
                    })
                    .collect();
                format!("failed to launch a worker: {}", errors.join("; "))
            } else {
                continue;
            };
            doomed.push((*id, reason));
        }
        for (id, reason) in doomed {
            if let Some(build) = self.builds.get_mut(&id) {
                tracing::warn!(build = id, %reason, "build cannot be served");
                build.state = BuildState::Failed;
                build.reason = Some(reason);
                build.finished_at = Some(now_millis());
            }
            self.persist_build(id).await;
        }
    }

    /// Launches workers for queued builds not covered by starting workers,
    /// and for `min_idle`, within `max_workers` and `max_starting`.
    async fn scale_up(&mut self, now: Instant) {
        let n = self.pools.len();
        // Starting workers not yet spoken for by a queued build.
        let mut spare_starting: Vec<u32> = (0..n)
            .map(|p| self.count(p, WorkerState::is_starting))
            .collect();
        let mut wanted = vec![0u32; n];
        for id in &self.queue {
            let Some(build) = self.builds.get(id) else {
                continue;
            };
            let candidates: Vec<usize> = (0..n)
                .filter(|&p| self.pools[p].serves(&build.labels))
                .collect();
            if let Some(&p) = candidates.iter().find(|&&p| spare_starting[p] > 0) {
                spare_starting[p] -= 1;
                continue;
            }
            if let Some(&p) = candidates.iter().find(|&&p| wanted[p] < self.room(p, now)) {
                wanted[p] += 1;
            }
        }
        for p in 0..n {
            let idle = self.count(p, |s| s == WorkerState::Idle);
            let warm = idle + spare_starting[p] + wanted[p];
            let min_idle = self.pools[p].cfg.min_idle;
            if warm < min_idle {
                wanted[p] += min_idle - warm;
            }
            let launches = wanted[p].min(self.room(p, now));
            for _ in 0..launches {
                if !self.launch(p, now).await {
                    break;
                }
            }
        }
    }

    /// How many workers pool `p` may launch right now.
    fn room(&self, p: usize, now: Instant) -> u32 {
        let pool = &self.pools[p];
        if pool.backing_off(now) {
            return 0;
        }
        let alive = self.count(p, |_| true);
        let starting = self.count(p, WorkerState::is_starting);
        pool.cfg
            .max_workers
            .get()
            .saturating_sub(alive)
            .min(pool.cfg.max_starting.get().saturating_sub(starting))
    }

    fn count(&self, p: usize, pred: impl Fn(WorkerState) -> bool) -> u32 {
        self.workers
            .values()
            .filter(|w| w.pool == p && pred(w.state))
            .count() as u32
    }

    /// Terminates idle workers past `idle_timeout`, keeping `min_idle`.
    /// Busy workers are never touched here.
    async fn scale_down(&mut self, now: Instant) {
        for p in 0..self.pools.len() {
            let cfg = &self.pools[p].cfg;
            let (min_idle, idle_timeout) = (cfg.min_idle, cfg.idle_timeout.get());
            let mut idle: Vec<(Instant, String)> = self
                .workers
                .values()
                .filter(|w| w.pool == p && w.state == WorkerState::Idle)
                .map(|w| (w.since, w.id.clone()))
                .collect();
            idle.sort();
            let mut keep = idle.len() as u32;
            for (since, id) in idle {
                if keep <= min_idle {
                    break;
                }
                if since + idle_timeout <= now {
                    self.terminate(&id, "idle timeout").await;
                    keep -= 1;
                }
            }
        }
    }

    /// Keeps each queued build's status saying what it waits for.
    async fn explain_waiting(&mut self, now: Instant) {
        let mut changed = Vec::new();
        for id in &self.queue {
            let Some(build) = self.builds.get(id) else {
                continue;
            };
            let Some(p) = self.pools.iter().position(|p| p.serves(&build.labels)) else {
                continue;
            };
            let pool = &self.pools[p];
            let starting = self.count(p, WorkerState::is_starting);
            let why = if let (true, Some(err)) = (pool.backing_off(now), &pool.last_error) {
                let delay = Duration::from_secs(pool.last_delay.as_secs().max(1));
                format!(
                    "waiting for pool {}: backing off after a failed launch ({err}); retrying after {}",
                    pool.name,
                    humantime::format_duration(delay)
                )
            } else if starting > 0 {
                format!("waiting for a worker of pool {} to start", pool.name)
            } else if self.count(p, |_| true) >= pool.cfg.max_workers.get() {
                format!(
                    "waiting for a free worker: pool {} is at max_workers ({})",
                    pool.name, pool.cfg.max_workers
                )
            } else {
                format!("waiting for a worker of pool {}", pool.name)
            };
            // A retried build keeps saying why it was retried until it runs.
            let keep_retry_note = build
                .reason
                .as_deref()
                .is_some_and(|r| r.starts_with("retrying:"));
            let reason = if keep_retry_note {
                let note = build.reason.as_deref().unwrap_or_default();
                let note = note.split(" — ").next().unwrap_or(note);
                format!("{note} — {why}")
            } else {
                why
            };
            if build.reason.as_deref() != Some(reason.as_str()) {
                changed.push((*id, reason));
            }
        }
        for (id, reason) in changed {
            if let Some(build) = self.builds.get_mut(&id) {
                build.reason = Some(reason);
            }
            self.persist_build(id).await;
        }
    }

    /// When the next deadline falls: the actor sleeps until then unless an
    /// event comes first.
    pub(super) fn next_wake(&self, now: Instant) -> Instant {
        let window = self.settings.heartbeat_window();
        let mut next = now + MAX_SLEEP;
        // Deadlines at or before `now` were acted on by this pass (or are
        // deliberately kept, like idle spares under `min_idle`): waking for
        // them again would spin.
        let mut consider = |t: Instant| {
            if t > now && t < next {
                next = t;
            }
        };
        for w in self.workers.values() {
            if let Some(d) = w.deadline {
                consider(d);
            }
            match w.state {
                WorkerState::Idle => {
                    consider(w.last_seen + window);
                    consider(w.since + self.pools[w.pool].cfg.idle_timeout.get());
                }
                WorkerState::Busy => consider(w.last_seen + window),
                WorkerState::Connecting | WorkerState::Reconnecting if !w.health_in_flight => {
                    consider(w.next_health)
                }
                _ => {}
            }
        }
        for pool in &self.pools {
            if let Some(t) = pool.retry_at.filter(|t| *t > now) {
                consider(t);
            }
        }
        if let Some(s) = &self.shutdown {
            consider(s.deadline);
        }
        next
    }

    pub(super) fn worker_views(&self, now: Instant) -> Vec<WorkerView> {
        self.workers
            .values()
            .map(|w| WorkerView {
                worker_id: w.id.clone(),
                pool: self.pools[w.pool].name.clone(),
                state: w.state.as_str().to_owned(),
                build: w.build,
                builds_done: w.builds_done,
                os: w.os.clone(),
                labels: w.labels.clone(),
                state_age_secs: now.saturating_duration_since(w.since).as_secs(),
            })
            .collect()
    }
}
