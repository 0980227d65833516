//! Provider calls: launching, terminating and health-checking workers. Each
//! runs in its own task and reports back as an event, so the actor never
//! waits on a provider. The ledger row is written before every call.

use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use burst_common::error_chain::Chain;
use burst_providers::{Health, LaunchSpec, Launched, ProviderError};
use tokio::time::Instant;

use super::actor::Scheduler;
use super::events::Event;
use super::reason::StopReason;
use super::tokens;
use super::worker::{Worker, WorkerState};
use crate::cost::Priced;
use crate::metrics::LaunchFailure;
use crate::model::{Instance, InstanceState, LostReason};

impl Scheduler {
    /// Launches one worker in `pool`. Returns false when the ledger could
    /// not be written, in which case nothing was launched.
    pub(super) async fn launch(&mut self, pool_idx: usize, now: Instant) -> bool {
        let pool = &self.state.pools[pool_idx];
        let mut worker_id = format!("{}-{}", pool.name, self.ids.short_id());
        while self.state.workers.contains_key(&worker_id) {
            worker_id = format!("{}-{}", pool.name, self.ids.short_id());
        }
        let token = tokens::new_token();
        let mut ledger = Instance {
            worker_id: worker_id.clone(),
            pool: pool.name.clone(),
            provider: pool.provider.kind().to_owned(),
            provider_id: None,
            state: InstanceState::Launching,
            details: serde_json::Value::Null,
            error: None,
            launched_at: self.state.settings.clock.millis(now),
            connected_at: None,
            terminated_at: None,
            ended_by: None,
            resume_hash: None,
            resume_prev_hash: None,
        };
        record_price(&mut ledger, &pool.cfg);
        // The ledger first: a crash from here on leaves a row to reconcile.
        if let Err(e) = self.store.save_instance(&ledger).await {
            tracing::error!(pool = %pool.name, error = %Chain(&e), "failed to record a launch in the ledger; not launching");
            self.store_failed(&e);
            return false;
        }
        let spec = LaunchSpec {
            worker_id: worker_id.clone(),
            pool: pool.name.clone(),
            master_id: self.state.settings.master_id.clone(),
            master_url: self.state.settings.advertise_url.clone(),
            master_pin: self.state.settings.master_pin.clone(),
            token: token.clone(),
            labels: pool.cfg.labels.clone(),
        };
        let worker = Worker {
            id: worker_id.clone(),
            pool: pool_idx,
            provider: pool.provider.clone(),
            state: WorkerState::Launching,
            since: now,
            deadline: Some(now + pool.cfg.start_timeout.get()),
            launch_token: tokens::hash(&token),
            resume_token: None,
            resume_prev: None,
            lease_until: now,
            readmitted: false,
            session: None,
            last_seen: now,
            builds_done: 0,
            build: None,
            os: None,
            labels: pool.cfg.labels.clone(),
            ledger,
            launch_returned: false,
            health_in_flight: false,
            next_health: now + self.state.settings.health_interval,
        };
        tracing::info!(pool = %pool.name, worker = %worker_id, "launching worker");
        self.metrics
            .worker_launched(&pool.name, pool.provider.kind());
        let provider = pool.provider.clone();
        let tx = self.events_tx.clone();
        self.state.workers.insert(worker_id.clone(), worker);
        tokio::spawn(async move {
            let result = provider.launch(&spec).await;
            let _ = tx.send(Event::LaunchDone { worker_id, result }).await;
        });
        true
    }

    pub(super) async fn launch_done(
        &mut self,
        worker_id: &str,
        result: Result<Launched, ProviderError>,
        now: Instant,
    ) {
        let Some(worker) = self.state.workers.get_mut(worker_id) else {
            return;
        };
        worker.launch_returned = true;
        match result {
            Ok(launched) => {
                worker.ledger.provider_id = Some(launched.provider_id);
                worker.ledger.details = launched.details;
                if let Some(p) = self.state.pools.get(worker.pool) {
                    record_price(&mut worker.ledger, &p.cfg);
                }
                match worker.state {
                    WorkerState::Launching => {
                        worker.ledger.state = InstanceState::Launched;
                        worker.state = WorkerState::Connecting;
                    }
                    // It was told to stop while the launch was in flight:
                    // now there is a handle to stop.
                    WorkerState::Terminating => {
                        self.persist_worker(worker_id).await;
                        self.spawn_terminate(worker_id);
                        return;
                    }
                    _ => {}
                }
                self.persist_worker(worker_id).await;
            }
            Err(e) => {
                tracing::warn!(worker = worker_id, error = %Chain(&e), kind = %e.kind, "launch failed");
                let pool = worker.pool;
                let was_terminating = worker.state == WorkerState::Terminating;
                worker.ledger.state = InstanceState::Failed;
                worker.ledger.error = Some(Chain(&e).to_string());
                worker.ledger.terminated_at = Some(self.state.settings.clock.millis(now));
                self.persist_worker(worker_id).await;
                self.remove_worker(worker_id);
                if !was_terminating {
                    self.count_start_failure(pool, e.kind.into());
                    let delay = self.state.pools[pool].record_failure(&e, now);
                    tracing::info!(pool = %self.state.pools[pool].name, ?delay, "pool backs off");
                }
            }
        }
    }

    /// Stops a worker: tells it to shut down, then asks the provider to
    /// remove it. The caller has already dealt with its build.
    pub(super) async fn terminate(&mut self, worker_id: &str, reason: &StopReason) {
        let Some(worker) = self.state.workers.get_mut(worker_id) else {
            return;
        };
        if worker.state == WorkerState::Terminating {
            return;
        }
        if worker.readmitted {
            tracing::warn!(worker = worker_id, %reason, "terminating orphan from a previous run: it did not come back");
        } else {
            tracing::info!(worker = worker_id, %reason, "terminating worker");
        }
        // A drained worker has nothing left to finish; `drain` makes sure.
        // A stand-in has no provider: the worker is told to drain and exit.
        let retired = self.state.pools[worker.pool].stand_in;
        let shutdown = burst_proto::Shutdown {
            drain: retired && worker.build.is_none(),
        };
        let told = worker.send(burst_proto::MasterMessage {
            msg: Some(burst_proto::master_message::Msg::Shutdown(shutdown)),
        });
        worker.session = None;
        if retired {
            self.stop_retired(worker_id, told).await;
            return;
        }
        let Some(worker) = self.state.workers.get_mut(worker_id) else {
            return;
        };
        worker.state = WorkerState::Terminating;
        worker.ledger.state = InstanceState::Terminating;
        let has_handle = worker.ledger.provider_id.is_some();
        let launch_returned = worker.launch_returned;
        self.persist_worker(worker_id).await;
        if has_handle {
            self.spawn_terminate(worker_id);
        } else if launch_returned {
            // Launched without a handle cannot happen; nothing to stop.
            self.forget_worker(worker_id, InstanceState::Gone).await;
        }
        // Otherwise launch_done starts the terminate once the handle is known.
    }

    /// A worker of a retired pool has no provider to stop it: it exits by
    /// itself once told to shut down (see ARCHITECTURE.md for what is left
    /// of it per provider). Told, its row ends gone; not told (it is not
    /// connected), the row stays terminating with why, and the worker is
    /// left to its own orphan timeout (`--max-disconnected`).
    async fn stop_retired(&mut self, worker_id: &str, told: bool) {
        let master = self.state.settings.master_id.clone();
        let Some(worker) = self.state.workers.get_mut(worker_id) else {
            return;
        };
        let pool = worker.ledger.pool.clone();
        if told {
            tracing::info!(worker = worker_id, %pool, "drained worker of a removed pool told to shut down");
            worker.ledger.ended_by = Some(format!(
                "drained and told to shut down by master {master}: its pool {pool} is no longer in the config (the worker exits by itself)"
            ));
            self.metrics
                .worker_terminated(&pool, &worker.ledger.provider);
            self.forget_worker(worker_id, InstanceState::Gone).await;
        } else {
            tracing::warn!(worker = worker_id, %pool, "cannot stop a worker of a removed pool that is not connected; it exits once it gives up on the master");
            worker.state = WorkerState::Terminating;
            worker.ledger.state = InstanceState::Terminating;
            worker.ledger.error = Some(format!(
                "pool {pool} is no longer in the config: no provider to stop this worker, and it was not connected to be told"
            ));
            self.persist_worker(worker_id).await;
            self.remove_worker(worker_id);
        }
    }

    fn spawn_terminate(&self, worker_id: &str) {
        let Some(worker) = self.state.workers.get(worker_id) else {
            return;
        };
        let Some(provider_id) = worker.ledger.provider_id.clone() else {
            return;
        };
        let provider = worker.provider.clone();
        let tx = self.events_tx.clone();
        let worker_id = worker_id.to_owned();
        tokio::spawn(async move {
            let result = (|| async { provider.terminate(&worker_id, &provider_id).await })
                .retry(
                    ExponentialBuilder::default()
                        .with_min_delay(Duration::from_millis(500))
                        .with_max_delay(Duration::from_secs(30))
                        .with_jitter()
                        .with_max_times(6),
                )
                .when(|e: &ProviderError| !e.is_permanent())
                .notify(|e, delay| tracing::warn!(worker = %worker_id, error = %Chain(e), ?delay, "terminate failed; retrying"))
                .await;
            let _ = tx.send(Event::TerminateDone { worker_id, result }).await;
        });
    }

    pub(super) async fn terminate_done(
        &mut self,
        worker_id: &str,
        result: Result<(), ProviderError>,
    ) {
        match result {
            Ok(()) => {
                tracing::info!(worker = worker_id, "worker terminated");
                if let Some(w) = self.state.workers.get(worker_id) {
                    self.metrics
                        .worker_terminated(&w.ledger.pool, &w.ledger.provider);
                }
                self.forget_worker(worker_id, InstanceState::Gone).await;
            }
            Err(e) => {
                // The ledger keeps the row live (terminating): the next
                // startup's reconciliation tries again.
                tracing::error!(worker = worker_id, error = %Chain(&e), "failed to terminate worker; left for reconciliation");
                if let Some(w) = self.state.workers.get_mut(worker_id) {
                    w.ledger.error = Some(Chain(&e).to_string());
                }
                self.persist_worker(worker_id).await;
                self.remove_worker(worker_id);
            }
        }
    }

    /// The worker is surely gone: its ledger row ends, and builds fenced
    /// off it are retried now.
    async fn forget_worker(&mut self, worker_id: &str, state: InstanceState) {
        let reaper = format!(
            "reaped at start by master {}",
            self.state.settings.master_id
        );
        let clock = self.state.settings.clock;
        if let Some(w) = self.state.workers.get_mut(worker_id) {
            w.ledger.state = state;
            w.ledger.terminated_at = Some(clock.millis(Instant::now()));
            // A worker of the previous run that never came back is reaped
            // as the start's reconciliation would have (only later).
            if w.readmitted && state == InstanceState::Gone {
                w.ledger.ended_by = Some(reaper);
                self.metrics.orphan_reaped(&w.ledger.pool);
            }
        }
        self.persist_worker(worker_id).await;
        self.remove_worker(worker_id);
        self.worker_gone(worker_id).await;
    }

    /// Asks the provider whether a worker that should connect still runs
    /// (chosen by `decide`, so one that died fails fast, not at its deadline).
    pub(super) fn spawn_health_check(&mut self, worker_id: &str, now: Instant) {
        let interval = self.state.settings.health_interval;
        let Some(worker) = self.state.workers.get_mut(worker_id) else {
            return;
        };
        let Some(provider_id) = worker.ledger.provider_id.clone() else {
            return;
        };
        worker.health_in_flight = true;
        worker.next_health = now + interval;
        let provider = worker.provider.clone();
        let tx = self.events_tx.clone();
        let worker_id = worker.id.clone();
        tokio::spawn(async move {
            let result = provider.health(&worker_id, &provider_id).await;
            let _ = tx.send(Event::Health { worker_id, result }).await;
        });
    }

    pub(super) async fn health_result(
        &mut self,
        worker_id: &str,
        result: Result<Health, ProviderError>,
        now: Instant,
    ) {
        let Some(worker) = self.state.workers.get_mut(worker_id) else {
            return;
        };
        worker.health_in_flight = false;
        let detail = match result {
            Ok(Health::Exited { detail }) => detail,
            Ok(Health::Running) => return,
            Err(e) => {
                tracing::debug!(worker = worker_id, error = %Chain(&e), "health check failed");
                return;
            }
        };
        match worker.state {
            WorkerState::Connecting => {
                let pool = worker.pool;
                worker.ledger.error = Some(detail.clone());
                let err = ProviderError::transient(format!(
                    "worker {worker_id} failed to start: {detail}"
                ));
                self.state.pools[pool].record_failure(&err, now);
                self.count_start_failure(pool, LaunchFailure::transient);
                self.terminate(worker_id, &StopReason::ExitedBeforeConnecting)
                    .await;
            }
            WorkerState::Reconnecting => {
                // Its steps may outlive it (own process groups): the build
                // waits for the terminate, which takes them too.
                let until = worker.lease_until + self.state.settings.lease_grace();
                if let Some(build) = worker.build {
                    let reason = LostReason::Disconnected {
                        worker: worker_id.to_owned(),
                    };
                    self.fence_build(build, reason, until);
                }
                self.terminate(worker_id, &StopReason::Exited { detail })
                    .await
            }
            _ => {}
        }
    }
}

/// Puts the worker's price and billing rule in its ledger row, so what it
/// cost stays what it was when it ran, whatever later reloads change. A
/// provider's own price (EC2's) is kept; a pool without one records none.
fn record_price(row: &mut Instance, cfg: &crate::config::PoolConfig) {
    Priced::record(row, cfg.price_per_hour, cfg.billing_rule());
}
