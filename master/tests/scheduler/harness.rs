//! A scheduler on virtual time with the fake provider (burst_providers::fake)
//! whose workers are tasks that speak to the scheduler through its handle, as
//! gRPC sessions do.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use burst_master::config::{BudgetConfig, PoolConfig, Secrets};
use burst_master::logs::{LogStore, StepRunId};
use burst_master::metrics::Metrics;
use burst_master::model::{
    AttemptState, Build, BuildId, BuildState, Command, NewBuild, StepSpec, WorkerView,
};
use burst_master::scheduler::{
    PoolSpec, RunnerConfigs, Scheduler, SchedulerHandle, SchedulerSettings, WallClock,
};
use burst_master::store::{MemoryStore, Store};
use burst_proto::{master_message, worker_message, Heartbeat, Hello, Platform, StepFinished};
use burst_providers::config::Context;
pub use burst_providers::fake::{Behaviour, FakeProvider};
use burst_providers::fake::{FakePoolConfig, FakeWorker, FakeWorld};
use burst_providers::{LaunchSpec, ProviderSection};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// A step as a fake worker received it, and what the store held then.
#[derive(Debug, Clone)]
pub struct ReceivedStep {
    pub step_run_id: String,
    /// The store held the step's attempt, running, when the step arrived.
    pub attempt_saved: bool,
    /// What the step's stdin was to get.
    pub stdin: Vec<u8>,
}

pub const HEARTBEAT: Duration = Duration::from_secs(10);
pub const STEP_LEASE: Duration = Duration::from_secs(120);

/// Builds the fake provider through the registry from a `[pools.NAME.fake]`
/// section, as the daemon builds real providers.
/// (`new` returns the `Arc` the tests share, as the old constructor did.)
#[allow(clippy::new_ret_no_self)]
pub trait NewFake {
    fn new(step_time: Duration) -> Arc<FakeProvider>;
}

impl NewFake for FakeProvider {
    fn new(step_time: Duration) -> Arc<FakeProvider> {
        let section = format!("step_time = \"{}\"", humantime::format_duration(step_time));
        let config: FakePoolConfig = toml::from_str(&section).expect("fake section");
        let provider = ProviderSection::new(config)
            .build(&Context::for_pool("pool"))
            .expect("fake provider");
        FakeProvider::downcast(provider).expect("the fake")
    }
}

/// Plays the fake's workers against the scheduler, through its handle, as
/// gRPC sessions do.
struct SchedulerWorld {
    handle: SchedulerHandle,
    store: Arc<MemoryStore>,
    /// Every step a fake worker was sent, in order.
    received: Arc<Mutex<Vec<ReceivedStep>>>,
    /// Session ids of connected fake workers.
    sessions: Arc<Mutex<HashMap<String, u64>>>,
}

#[async_trait]
impl FakeWorld for SchedulerWorld {
    fn start(&self, spec: LaunchSpec, worker: FakeWorker) -> JoinHandle<()> {
        let handle = self.handle.clone();
        let sessions = self.sessions.clone();
        let (store, received) = (self.store.clone(), self.received.clone());
        let (step_time, exit_code) = (worker.step_time, worker.exit_code);
        tokio::spawn(async move {
            tokio::time::sleep(worker.connect_after).await;
            let (tx, mut rx) = mpsc::channel(64);
            let hello = hello(&spec.worker_id, &spec.token);
            let Ok(session) = handle.hello(hello, tx).await else {
                return;
            };
            sessions
                .lock()
                .unwrap()
                .insert(spec.worker_id.clone(), session);
            let mut beat = tokio::time::interval(HEARTBEAT);
            let (done_tx, mut done_rx) = mpsc::channel::<StepFinished>(8);
            loop {
                tokio::select! {
                    msg = rx.recv() => match msg.and_then(|m| m.msg) {
                        Some(master_message::Msg::Run(run)) => {
                            let attempt_saved = attempt_saved(&store, &run.step_run_id).await;
                            let stdin = run.stdin.clone();
                            received.lock().unwrap().push(ReceivedStep {
                                stdin,
                                step_run_id: run.step_run_id.clone(),
                                attempt_saved,
                            });
                            if worker.die_on_first_step {
                                return;
                            }
                            let done_tx = done_tx.clone();
                            tokio::spawn(async move {
                                tokio::time::sleep(step_time).await;
                                let _ = done_tx.send(StepFinished {
                                    step_run_id: run.step_run_id,
                                    exit_code: Some(exit_code),
                                    duration_ms: step_time.as_millis() as u64,
                                    ..Default::default()
                                }).await;
                            });
                        }
                        Some(master_message::Msg::Cancel(c)) => {
                            let _ = done_tx.send(StepFinished {
                                step_run_id: c.step_run_id,
                                exit_code: None,
                                signal: Some(9),
                                cancelled: true,
                                ..Default::default()
                            }).await;
                        }
                        Some(master_message::Msg::Shutdown(_)) | None => return,
                        Some(_) => {}
                    },
                    Some(done) = done_rx.recv() => {
                        handle.from_worker(&spec.worker_id, session, worker_message::Msg::Finished(done)).await;
                    }
                    _ = beat.tick() => {
                        handle.from_worker(&spec.worker_id, session, worker_message::Msg::Heartbeat(Heartbeat::default())).await;
                    }
                }
            }
        })
    }

    async fn crashed(&self, worker_id: &str) {
        let session = self.sessions.lock().unwrap().get(worker_id).copied();
        if let Some(session) = session {
            self.handle.disconnected(worker_id, session).await;
        }
    }
}

async fn attempt_saved(store: &MemoryStore, step_run_id: &str) -> bool {
    let Ok(id) = step_run_id.parse::<StepRunId>() else {
        return false;
    };
    let Ok(Some(build)) = store.get_build(id.build).await else {
        return false;
    };
    build
        .attempts
        .get(id.attempt as usize - 1)
        .is_some_and(|a| a.number == id.attempt && a.state == AttemptState::Running)
}

pub fn hello(worker_id: &str, token: &str) -> Hello {
    Hello {
        worker_id: worker_id.into(),
        token: token.into(),
        protocol_version: burst_proto::PROTOCOL_VERSION,
        platform: Some(Platform {
            os: "linux".into(),
            arch: "x86_64".into(),
            default_shell: "sh".into(),
        }),
        labels: vec![],
        capacity: 1,
        version: "test".into(),
        running_steps: vec![],
        finished_steps: vec![],
    }
}

pub fn pool(max_workers: u32) -> PoolConfig {
    let mut pool = PoolConfig::new(ProviderSection::new(FakePoolConfig::default()));
    pool.labels = vec!["linux".into()];
    pool.max_workers = max_workers.into();
    pool.max_starting = max_workers.into();
    pool.idle_timeout = Duration::from_secs(60).into();
    pool.start_timeout = Duration::from_secs(30).into();
    pool.backoff_min = Duration::from_secs(1).into();
    pool.backoff_max = Duration::from_secs(60);
    pool
}

pub fn new_build(steps: usize) -> NewBuild {
    NewBuild {
        submit_id: "s".into(),
        builder: "b".into(),
        cell: BTreeMap::new(),
        params: BTreeMap::new(),
        labels: vec!["linux".into()],
        steps: (0..steps)
            .map(|i| StepSpec {
                name: format!("step{i}"),
                command: Command::Script("true".into()),
                command_windows: None,
                shell: None,
                env: BTreeMap::new(),
                working_dir: None,
                timeout: None,
                continue_on_failure: false,
                always_run: false,
                secrets: Vec::new(),
                artifacts: None,
                runner: None,
            })
            .collect(),
        retries: 1,
        submitted_by: None,
    }
}

pub struct Harness {
    pub handle: SchedulerHandle,
    pub provider: Arc<FakeProvider>,
    pub store: Arc<MemoryStore>,
    pub metrics: Arc<Metrics>,
    pub task: JoinHandle<()>,
    received: Arc<Mutex<Vec<ReceivedStep>>>,
    world: Arc<SchedulerWorld>,
    _dir: tempfile::TempDir,
}

impl Harness {
    pub async fn start(pool_cfg: PoolConfig, provider: Arc<FakeProvider>) -> Self {
        Self::start_with_store(pool_cfg, provider, Arc::new(MemoryStore::new())).await
    }

    pub async fn start_with_store(
        pool_cfg: PoolConfig,
        provider: Arc<FakeProvider>,
        store: Arc<MemoryStore>,
    ) -> Self {
        Self::start_with_secrets(pool_cfg, provider, store, Secrets::default()).await
    }

    /// With `[secrets]` values, as the daemon passes them.
    pub async fn start_with_secrets(
        pool_cfg: PoolConfig,
        provider: Arc<FakeProvider>,
        store: Arc<MemoryStore>,
        secrets: Secrets,
    ) -> Self {
        Self::start_full(
            pool_cfg,
            provider,
            store,
            secrets,
            WallClock::System,
            None,
            BudgetConfig::default(),
        )
        .await
    }

    /// Runner steps get their JIT configs from `source`.
    pub async fn start_with_runner_configs(
        pool_cfg: PoolConfig,
        provider: Arc<FakeProvider>,
        source: Arc<dyn RunnerConfigs>,
    ) -> Self {
        let store = Arc::new(MemoryStore::new());
        let secrets = Secrets::default();
        Self::start_full(
            pool_cfg,
            provider,
            store,
            secrets,
            WallClock::System,
            Some(source),
            BudgetConfig::default(),
        )
        .await
    }

    /// With the wall clock reading `utc` now (warm periods are wall-clock
    /// times); it moves with the paused tokio clock.
    pub async fn start_at(
        pool_cfg: PoolConfig,
        provider: Arc<FakeProvider>,
        utc: chrono::DateTime<chrono::Utc>,
    ) -> Self {
        let store = Arc::new(MemoryStore::new());
        Self::start_full(
            pool_cfg,
            provider,
            store,
            Secrets::default(),
            WallClock::pinned(utc),
            None,
            BudgetConfig::default(),
        )
        .await
    }

    /// On the wall clock `utc`, with `[budget]` settings and a store that
    /// may hold a previous run's ledger.
    pub async fn start_budgeted(
        pool_cfg: PoolConfig,
        provider: Arc<FakeProvider>,
        store: Arc<MemoryStore>,
        utc: chrono::DateTime<chrono::Utc>,
        budget: BudgetConfig,
    ) -> Self {
        Self::start_full(
            pool_cfg,
            provider,
            store,
            Secrets::default(),
            WallClock::pinned(utc),
            None,
            budget,
        )
        .await
    }

    async fn start_full(
        pool_cfg: PoolConfig,
        provider: Arc<FakeProvider>,
        store: Arc<MemoryStore>,
        secrets: Secrets,
        clock: WallClock,
        runner_configs: Option<Arc<dyn RunnerConfigs>>,
        budget: BudgetConfig,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let settings = SchedulerSettings {
            master_id: "m-test".into(),
            advertise_url: "http://127.0.0.1:1".into(),
            master_pin: None,
            heartbeat_interval: HEARTBEAT,
            heartbeat_misses: 3,
            step_lease: STEP_LEASE,
            shutdown_grace: Duration::from_secs(30),
            health_interval: Duration::from_secs(1),
            secrets,
            clock,
            artifact_limit: 0,
            cache_keys: Default::default(),
            budget,
        };
        let pools = vec![PoolSpec {
            name: "pool".into(),
            config: pool_cfg,
            provider: provider.clone(),
        }];
        let store_dyn: Arc<dyn Store> = store.clone();
        let (scheduler, handle) = Scheduler::new(
            settings,
            pools,
            store_dyn,
            Arc::new(LogStore::new(dir.path())),
        );
        let metrics = Arc::new(Metrics::new());
        let scheduler = scheduler.with_metrics(metrics.clone());
        let scheduler = match runner_configs {
            Some(source) => scheduler.with_runner_configs(source),
            None => scheduler,
        };
        let received = Arc::<Mutex<Vec<ReceivedStep>>>::default();
        let world = Arc::new(SchedulerWorld {
            handle: handle.clone(),
            store: store.clone(),
            received: received.clone(),
            sessions: Arc::default(),
        });
        provider.attach(world.clone());
        let task = tokio::spawn(scheduler.run());
        Self {
            handle,
            provider,
            store,
            metrics,
            task,
            received,
            world,
            _dir: dir,
        }
    }

    /// Another fake provider playing its workers against this scheduler
    /// (a pool a reload adds).
    pub fn fake(&self, step_time: Duration) -> Arc<FakeProvider> {
        let provider = FakeProvider::new(step_time);
        provider.attach(self.world.clone());
        provider
    }

    /// Every step the fake workers were sent so far.
    pub fn received(&self) -> Vec<ReceivedStep> {
        self.received.lock().unwrap().clone()
    }

    /// Waits (in virtual time) until `cond` holds for the stored build.
    pub async fn wait_build(
        &self,
        id: BuildId,
        within: Duration,
        cond: impl Fn(&Build) -> bool,
    ) -> Build {
        let deadline = Instant::now() + within;
        loop {
            let build = self.build(id).await;
            if cond(&build) {
                return build;
            }
            assert!(
                Instant::now() < deadline,
                "build condition not met in time: {build:#?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn submit(&self, n: usize, steps: usize) -> Vec<BuildId> {
        self.handle
            .submit((0..n).map(|_| new_build(steps)).collect())
            .await
            .unwrap()
    }

    pub async fn build(&self, id: BuildId) -> Build {
        self.store.get_build(id).await.unwrap().unwrap()
    }

    /// `/metrics` as the API would serve it now.
    pub async fn metrics_text(&self) -> String {
        self.metrics.encode(self.handle.fleet().await.unwrap())
    }

    pub async fn workers(&self) -> Vec<WorkerView> {
        self.handle.workers().await.unwrap()
    }

    /// Waits (in virtual time) until every build is finished.
    pub async fn wait_finished(&self, ids: &[BuildId], within: Duration) -> Vec<Build> {
        let deadline = Instant::now() + within;
        loop {
            let mut builds = Vec::new();
            for id in ids {
                builds.push(self.build(*id).await);
            }
            if builds.iter().all(|b| b.state.is_finished()) {
                return builds;
            }
            assert!(
                Instant::now() < deadline,
                "builds not finished in time: {builds:#?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits (in virtual time) until `cond` holds for the worker list.
    pub async fn wait_workers(
        &self,
        within: Duration,
        cond: impl Fn(&[WorkerView]) -> bool,
    ) -> Vec<WorkerView> {
        let deadline = Instant::now() + within;
        loop {
            let workers = self.workers().await;
            if cond(&workers) {
                return workers;
            }
            assert!(
                Instant::now() < deadline,
                "worker condition not met in time: {workers:#?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

pub fn all_succeeded(builds: &[Build]) -> bool {
    builds.iter().all(|b| b.state == BuildState::Succeeded)
}
