use std::sync::Arc;
use std::time::Duration;

use burst_providers::Provider;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::commit::Pending;
use super::events::Event;
use super::handle::SchedulerHandle;
use super::persist::Unsaved;
use super::pool::Pool;
use super::state::State;
use super::warm::WallClock;
use crate::config::{PoolConfig, Secrets};
use crate::logs::LogStore;
use crate::metrics::Metrics;
use crate::store::{Store, StoreHealth};

/// The longest the actor sleeps when nothing is pending.
const IDLE_LOOK: Duration = Duration::from_secs(60);
/// Events handled in one turn, at most, before deciding and committing:
/// events that queued up while the last turn ran share its decision pass
/// and its store transaction.
const MAX_TURN_EVENTS: usize = 256;

/// Master-wide settings the scheduler needs.
#[derive(Debug, Clone)]
pub struct SchedulerSettings {
    pub master_id: String,
    /// The URL workers dial.
    pub advertise_url: String,
    /// The TLS certificate pin workers check (None: no TLS).
    pub master_pin: Option<String>,
    pub heartbeat_interval: Duration,
    pub heartbeat_misses: u32,
    /// How long a busy worker runs its step without a renewal (`step_lease`).
    pub step_lease: Duration,
    pub shutdown_grace: Duration,
    /// How often a starting worker's provider is asked whether it still runs.
    pub health_interval: Duration,
    /// `[secrets]` values, added to the environment of steps that ask.
    pub secrets: Secrets,
    /// Wall-clock time, for warm periods; tests pin it to a date.
    pub clock: WallClock,
    /// `[artifacts] max_build_bytes`, told to workers (0: no limit).
    pub artifact_limit: u64,
    /// Signs the capability each cache step is sent with.
    pub cache_keys: crate::caches::CacheKeys,
    /// `[budget]`: the master's spend limits, currency and time zone.
    pub budget: crate::config::BudgetConfig,
}

impl SchedulerSettings {
    pub fn heartbeat_window(&self) -> Duration {
        self.heartbeat_interval * self.heartbeat_misses.max(1)
    }

    /// Past a lease's end, how long a worker may still take to notice and
    /// kill its steps (a renewal is also received a little after it was sent).
    pub fn lease_grace(&self) -> Duration {
        self.heartbeat_interval.max(Duration::from_secs(2))
    }
}

pub struct PoolSpec {
    pub name: String,
    pub config: PoolConfig,
    pub provider: Arc<dyn Provider>,
}

pub struct Scheduler {
    pub(super) state: State,
    pub(super) store: Arc<dyn Store>,
    pub(super) logs: Arc<LogStore>,
    pub(super) events_tx: mpsc::Sender<Event>,
    rx: mpsc::Receiver<Event>,
    /// Replaced by the daemon's through `with_metrics`.
    pub(super) metrics: Arc<Metrics>,
    /// What the store refused, kept until it is saved.
    pub(super) unsaved: Unsaved,
    /// This turn's unsaved builds and what waits for them (`commit.rs`).
    pub(super) pending: Pending,
    pub(super) health: Arc<StoreHealth>,
    /// Runner steps' JIT configs (`runner_jit.rs`).
    pub(super) jit: super::runner_jit::JitState,
    /// Worker ids (seeded by `with_seed`).
    pub(super) ids: super::tokens::Ids,
}

impl Scheduler {
    pub fn new(
        settings: SchedulerSettings,
        pools: Vec<PoolSpec>,
        store: Arc<dyn Store>,
        logs: Arc<LogStore>,
    ) -> (Self, SchedulerHandle) {
        let (tx, rx) = mpsc::channel(1024);
        let health = Arc::new(StoreHealth::new());
        let pools = pools
            .into_iter()
            .map(|p| Pool::new(p.name, p.config, p.provider))
            .collect();
        let scheduler = Self {
            state: State::new(settings, pools),
            store,
            logs,
            events_tx: tx.clone(),
            rx,
            metrics: Arc::new(Metrics::new()),
            unsaved: Unsaved::default(),
            pending: Pending::default(),
            health: health.clone(),
            jit: Default::default(),
            ids: Default::default(),
        };
        (scheduler, SchedulerHandle::new(tx, health))
    }

    /// Draws worker ids and launch-backoff jitter from `seed`, so the same
    /// events give the same decisions: the policy simulator's replays.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.ids = super::tokens::Ids::seeded(seed);
        for (i, pool) in self.state.pools.iter_mut().enumerate() {
            pool.seed_backoff(seed.wrapping_add(i as u64 + 1));
        }
        self
    }

    /// Reconciles what the last run left behind, then serves events until a
    /// shutdown has terminated every worker.
    pub async fn run(mut self) {
        self.startup().await;
        loop {
            let now = Instant::now();
            self.retry_unsaved(now).await;
            let wake = self.reconcile(now).await;
            self.commit().await;
            if self.shutdown_complete() {
                break;
            }
            // Nothing pending still gets a look now and then, so a store
            // write that failed (a launch's ledger row) is tried again.
            let wake = wake.unwrap_or(now + IDLE_LOOK);
            let wake = self.unsaved.retry_at.map_or(wake, |at| at.min(wake));
            // Events first when both are ready (the timer's work is done by
            // the next turn's reconcile anyway): no random pick, so a
            // replay on paused time decides the same way every run.
            tokio::select! {
                biased;
                event = self.rx.recv() => match event {
                    Some(event) => {
                        self.handle(event).await;
                        for _ in 1..MAX_TURN_EVENTS {
                            match self.rx.try_recv() {
                                Ok(event) => self.handle(event).await,
                                Err(_) => break,
                            }
                        }
                    }
                    None => break,
                },
                _ = tokio::time::sleep_until(wake) => {}
            }
        }
        self.flush_at_exit().await;
        tracing::info!("scheduler stopped");
    }

    async fn handle(&mut self, event: Event) {
        let now = Instant::now();
        match event {
            Event::Submit { builds, key, reply } => {
                let result = self.submit(builds, key).await;
                let _ = reply.send(result);
            }
            // Answered once what they changed is saved.
            Event::Cancel { build, reply } => {
                let result = self.cancel(build).await;
                self.defer_reply(move || {
                    let _ = reply.send(result);
                });
            }
            Event::Hello { hello, tx, reply } => {
                let result = self.hello(hello, tx, now).await;
                self.defer_reply(move || {
                    let _ = reply.send(result);
                });
            }
            Event::FromWorker {
                worker_id,
                session,
                msg,
            } => self.on_worker_message(&worker_id, session, msg, now).await,
            Event::Disconnected { worker_id, session } => {
                self.disconnected(&worker_id, session, now).await
            }
            Event::LaunchDone { worker_id, result } => {
                self.launch_done(&worker_id, result, now).await
            }
            Event::TerminateDone { worker_id, result } => {
                self.terminate_done(&worker_id, result).await
            }
            Event::Health { worker_id, result } => {
                self.health_result(&worker_id, result, now).await
            }
            Event::Workers { reply } => {
                let _ = reply.send(Ok(self.state.worker_views(now)));
            }
            Event::Pools { reply } => {
                let _ = reply.send(Ok(self.pool_views(now)));
            }
            Event::QueuePosition { build, reply } => {
                let _ = reply.send(Ok(self.state.queue_position(build)));
            }
            Event::Shutdown { reply } => self.begin_shutdown(reply, now),
            Event::Reconfigure { pools, reply } => {
                let _ = reply.send(Ok(self.reconfigure(pools)));
            }
            Event::Budget { budget, reply } => {
                self.state.settings.budget = *budget;
                let _ = reply.send(Ok(()));
            }
            Event::Jit {
                step,
                worker_id,
                result,
            } => self.on_jit(step, &worker_id, result, now).await,
            Event::Fleet { reply } => {
                let _ = reply.send(Ok(self.fleet(now)));
            }
        }
    }
}
