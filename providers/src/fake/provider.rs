//! The fake provider: it keeps the books (launches, terminations, live
//! workers, orphans) and leaves playing the workers to a [`FakeWorld`].

use std::any::Any;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::config::FakePoolConfig;
use crate::{Health, LaunchSpec, Launched, ListedInstance, Provider, ProviderError};

/// What the fake does with one launch.
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

/// How one fake worker behaves, handed to the world that plays it.
#[derive(Clone, Debug)]
pub struct FakeWorker {
    pub connect_after: Duration,
    pub die_on_first_step: bool,
    pub step_time: Duration,
    pub exit_code: i32,
}

/// Where fake workers run: a test harness speaking the master's side of
/// the protocol.
#[async_trait]
pub trait FakeWorld: Send + Sync + 'static {
    /// Starts a worker for `spec`; aborting the task kills it.
    fn start(&self, spec: LaunchSpec, worker: FakeWorker) -> JoinHandle<()>;

    /// The worker's task was killed: end its session as a broken stream
    /// would.
    async fn crashed(&self, worker_id: &str);
}

#[derive(Default)]
struct Books {
    plan: VecDeque<Behaviour>,
    launches: Vec<(Instant, String)>,
    terminated: Vec<String>,
    live: HashMap<String, Option<JoinHandle<()>>>,
    max_live: usize,
    /// Listed as existing although this run never launched them.
    orphans: Vec<ListedInstance>,
    /// Launch tokens handed out, by worker id.
    tokens: HashMap<String, String>,
}

pub struct FakeProvider {
    config: FakePoolConfig,
    books: Mutex<Books>,
    world: Mutex<Option<Arc<dyn FakeWorld>>>,
}

impl FakeProvider {
    pub fn from_config(config: FakePoolConfig) -> Self {
        Self {
            config,
            books: Mutex::default(),
            world: Mutex::new(None),
        }
    }

    /// The fake behind a provider the registry built, if it is one.
    pub fn downcast(provider: Arc<dyn Provider>) -> Option<Arc<FakeProvider>> {
        let any: Arc<dyn Any + Send + Sync> = provider;
        any.downcast().ok()
    }

    pub fn config(&self) -> &FakePoolConfig {
        &self.config
    }

    /// Where launched workers run from now on.
    pub fn attach(&self, world: Arc<dyn FakeWorld>) {
        *self.world.lock().unwrap_or_else(PoisonError::into_inner) = Some(world);
    }

    fn books(&self) -> std::sync::MutexGuard<'_, Books> {
        self.books.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn world(&self) -> Option<Arc<dyn FakeWorld>> {
        self.world
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// What the next launches do, in order; then workers connect after
    /// `connect_after`.
    pub fn plan(&self, behaviours: impl IntoIterator<Item = Behaviour>) {
        self.books().plan.extend(behaviours);
    }

    pub fn add_orphan(&self, worker_id: &str) {
        let mut b = self.books();
        b.orphans.push(ListedInstance {
            worker_id: worker_id.into(),
            provider_id: format!("p-{worker_id}"),
        });
        b.live.insert(worker_id.into(), None);
    }

    /// The launch token a worker was given.
    pub fn token(&self, worker_id: &str) -> String {
        self.books()
            .tokens
            .get(worker_id)
            .cloned()
            .unwrap_or_default()
    }

    pub fn launches(&self) -> Vec<(Instant, String)> {
        self.books().launches.clone()
    }

    pub fn terminated(&self) -> Vec<String> {
        self.books().terminated.clone()
    }

    pub fn live(&self) -> usize {
        self.books().live.len()
    }

    pub fn max_live(&self) -> usize {
        self.books().max_live
    }

    /// Kills a worker without a goodbye.
    pub async fn crash(&self, worker_id: &str) {
        if let Some(Some(task)) = self.books().live.get_mut(worker_id).map(Option::take) {
            task.abort();
        }
        if let Some(world) = self.world() {
            world.crashed(worker_id).await;
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
            let mut b = self.books();
            b.launches.push((Instant::now(), spec.worker_id.clone()));
            b.tokens.insert(spec.worker_id.clone(), spec.token.clone());
            b.plan
                .pop_front()
                .unwrap_or(Behaviour::Connect(self.config.connect_after.get()))
        };
        let worker = |connect_after, die_on_first_step| FakeWorker {
            connect_after,
            die_on_first_step,
            step_time: self.config.step_time,
            exit_code: self.config.exit_code,
        };
        let worker = match behaviour {
            Behaviour::Fail(e) => return Err(e),
            Behaviour::Silent => None,
            Behaviour::Connect(after) => Some(worker(after, false)),
            Behaviour::DieOnFirstStep => Some(worker(Duration::from_secs(1), true)),
        };
        let task = match worker {
            None => None,
            Some(worker) => {
                let world = self.world().ok_or_else(|| {
                    ProviderError::permanent("failed to launch a fake worker: no world attached")
                })?;
                Some(world.start(spec.clone(), worker))
            }
        };
        let mut b = self.books();
        b.live.insert(spec.worker_id.clone(), task);
        b.max_live = b.max_live.max(b.live.len());
        Ok(Launched {
            provider_id: format!("p-{}", spec.worker_id),
            details: serde_json::Value::Null,
        })
    }

    async fn terminate(&self, worker_id: &str, _provider_id: &str) -> Result<(), ProviderError> {
        let mut b = self.books();
        if let Some(Some(task)) = b.live.remove(worker_id) {
            task.abort();
        }
        b.terminated.push(worker_id.to_owned());
        Ok(())
    }

    async fn list(&self) -> Result<Vec<ListedInstance>, ProviderError> {
        Ok(self.books().orphans.clone())
    }

    async fn health(&self, _worker_id: &str, _provider_id: &str) -> Result<Health, ProviderError> {
        Ok(Health::Running)
    }
}
