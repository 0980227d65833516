//! A scheduler on virtual time with a fake provider whose workers are tasks
//! that speak to the scheduler through its handle, as gRPC sessions do.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use burst_master::config::{LocalPoolConfig, PoolConfig, ProviderKind};
use burst_master::logs::LogStore;
use burst_master::model::{Build, BuildId, BuildState, Command, NewBuild, StepSpec, WorkerView};
use burst_master::scheduler::{PoolSpec, Scheduler, SchedulerHandle, SchedulerSettings};
use burst_master::store::{MemoryStore, Store};
use burst_proto::{master_message, worker_message, Heartbeat, Hello, Platform, StepFinished};
use burst_providers::{Health, LaunchSpec, Launched, ListedInstance, Provider, ProviderError};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub const HEARTBEAT: Duration = Duration::from_secs(10);

/// What the fake provider does with one launch.
#[derive(Clone, Debug)]
pub enum Behaviour {
    /// The worker connects after this long.
    Connect(Duration),
    /// The launch call fails.
    Fail(ProviderError),
    /// The launch succeeds but the worker never says hello.
    Silent,
    /// The worker connects, then vanishes (no goodbye) on its first step.
    DieOnFirstStep,
}

#[derive(Default)]
struct FakeState {
    plan: VecDeque<Behaviour>,
    launches: Vec<(Instant, String)>,
    terminated: Vec<String>,
    live: HashMap<String, Option<JoinHandle<()>>>,
    max_live: usize,
    /// Listed as existing although this run never launched them.
    orphans: Vec<ListedInstance>,
    /// Session ids of connected fake workers.
    sessions: HashMap<String, u64>,
    /// Launch tokens handed out, by worker id.
    tokens: HashMap<String, String>,
}

pub struct FakeProvider {
    state: Arc<Mutex<FakeState>>,
    handle: Mutex<Option<SchedulerHandle>>,
    /// How long each step takes on a fake worker.
    pub step_time: Duration,
    /// Exit code steps report.
    pub exit_code: i32,
}

impl FakeProvider {
    pub fn new(step_time: Duration) -> Arc<Self> {
        Arc::new(Self {
            state: Arc::default(),
            handle: Mutex::new(None),
            step_time,
            exit_code: 0,
        })
    }

    pub fn plan(&self, behaviours: impl IntoIterator<Item = Behaviour>) {
        self.state.lock().unwrap().plan.extend(behaviours);
    }

    pub fn add_orphan(&self, worker_id: &str) {
        let mut s = self.state.lock().unwrap();
        s.orphans.push(ListedInstance {
            worker_id: worker_id.into(),
            provider_id: format!("p-{worker_id}"),
        });
        s.live.insert(worker_id.into(), None);
    }

    pub fn token(&self, worker_id: &str) -> String {
        self.state.lock().unwrap().tokens[worker_id].clone()
    }

    pub fn launches(&self) -> Vec<(Instant, String)> {
        self.state.lock().unwrap().launches.clone()
    }

    pub fn terminated(&self) -> Vec<String> {
        self.state.lock().unwrap().terminated.clone()
    }

    pub fn live(&self) -> usize {
        self.state.lock().unwrap().live.len()
    }

    pub fn max_live(&self) -> usize {
        self.state.lock().unwrap().max_live
    }

    /// Kills a fake worker's task; its session ends as a broken gRPC
    /// stream would end it.
    pub async fn crash(&self, worker_id: &str) {
        let session = {
            let mut s = self.state.lock().unwrap();
            if let Some(Some(task)) = s.live.get_mut(worker_id).map(Option::take) {
                task.abort();
            }
            s.sessions.get(worker_id).copied()
        };
        let handle = self
            .handle
            .lock()
            .unwrap()
            .clone()
            .expect("scheduler handle set");
        if let Some(session) = session {
            handle.disconnected(worker_id, session).await;
        }
    }
}

#[async_trait]
impl Provider for FakeProvider {
    fn kind(&self) -> &'static str {
        "fake"
    }

    async fn launch(&self, spec: &LaunchSpec) -> Result<Launched, ProviderError> {
        let behaviour = {
            let mut s = self.state.lock().unwrap();
            s.launches.push((Instant::now(), spec.worker_id.clone()));
            s.tokens.insert(spec.worker_id.clone(), spec.token.clone());
            s.plan
                .pop_front()
                .unwrap_or(Behaviour::Connect(Duration::from_secs(1)))
        };
        let task = match behaviour {
            Behaviour::Fail(e) => return Err(e),
            Behaviour::Silent => None,
            Behaviour::Connect(after) => Some(self.spawn_worker(spec.clone(), after, false)),
            Behaviour::DieOnFirstStep => {
                Some(self.spawn_worker(spec.clone(), Duration::from_secs(1), true))
            }
        };
        let mut s = self.state.lock().unwrap();
        s.live.insert(spec.worker_id.clone(), task);
        s.max_live = s.max_live.max(s.live.len());
        Ok(Launched {
            provider_id: format!("p-{}", spec.worker_id),
            details: serde_json::Value::Null,
        })
    }

    async fn terminate(&self, worker_id: &str, _provider_id: &str) -> Result<(), ProviderError> {
        let mut s = self.state.lock().unwrap();
        if let Some(Some(task)) = s.live.remove(worker_id) {
            task.abort();
        }
        s.terminated.push(worker_id.to_owned());
        Ok(())
    }

    async fn list(&self) -> Result<Vec<ListedInstance>, ProviderError> {
        Ok(self.state.lock().unwrap().orphans.clone())
    }

    async fn health(&self, _worker_id: &str, _provider_id: &str) -> Result<Health, ProviderError> {
        Ok(Health::Running)
    }
}

impl FakeProvider {
    fn spawn_worker(&self, spec: LaunchSpec, after: Duration, die_on_step: bool) -> JoinHandle<()> {
        let handle = self
            .handle
            .lock()
            .unwrap()
            .clone()
            .expect("scheduler handle set");
        let (step_time, exit_code) = (self.step_time, self.exit_code);
        let state = self.state.clone();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            let (tx, mut rx) = mpsc::channel(64);
            let hello = hello(&spec.worker_id, &spec.token);
            let Ok(session) = handle.hello(hello, tx).await else {
                return;
            };
            state
                .lock()
                .unwrap()
                .sessions
                .insert(spec.worker_id.clone(), session);
            let mut beat = tokio::time::interval(HEARTBEAT);
            let (done_tx, mut done_rx) = mpsc::channel::<StepFinished>(8);
            loop {
                tokio::select! {
                    msg = rx.recv() => match msg.and_then(|m| m.msg) {
                        Some(master_message::Msg::Run(run)) => {
                            if die_on_step {
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
    }
}

pub fn pool(max_workers: u32) -> PoolConfig {
    PoolConfig {
        provider: ProviderKind::Local,
        labels: vec!["linux".into()],
        max_workers,
        min_idle: 0,
        max_starting: max_workers,
        idle_timeout: Duration::from_secs(60),
        start_timeout: Duration::from_secs(30),
        max_builds: 0,
        backoff_min: Duration::from_secs(1),
        backoff_max: Duration::from_secs(60),
        local: LocalPoolConfig::default(),
        docker: Default::default(),
        ssh: None,
    }
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
            })
            .collect(),
        retries: 1,
    }
}

pub struct Harness {
    pub handle: SchedulerHandle,
    pub provider: Arc<FakeProvider>,
    pub store: Arc<MemoryStore>,
    pub task: JoinHandle<()>,
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
        let dir = tempfile::tempdir().unwrap();
        let settings = SchedulerSettings {
            master_id: "m-test".into(),
            advertise_url: "http://127.0.0.1:1".into(),
            heartbeat_interval: HEARTBEAT,
            heartbeat_misses: 3,
            shutdown_grace: Duration::from_secs(30),
            health_interval: Duration::from_secs(1),
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
        *provider.handle.lock().unwrap() = Some(handle.clone());
        let task = tokio::spawn(scheduler.run());
        Self {
            handle,
            provider,
            store,
            task,
            _dir: dir,
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
