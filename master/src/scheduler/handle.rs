use std::sync::Arc;

use burst_proto::{worker_message, Hello, MasterMessage, Refused};
use tokio::sync::{mpsc, oneshot};

use super::events::Event;
use crate::metrics::Fleet;
use crate::model::{
    BuildId, BuildState, IdempotencyKey, NewBuild, PoolView, QueuePosition, WorkerView,
};
use crate::store::{StoreError, StoreHealth};

#[derive(Debug, Clone, thiserror::Error)]
pub enum SchedError {
    #[error("the scheduler has stopped")]
    Stopped,
    #[error("the master is shutting down and takes no new builds")]
    ShuttingDown,
    #[error(
        "the Idempotency-Key {0:?} was already used for a different submit; \
         use a new key for a new submit"
    )]
    KeyReused(String),
    #[error("build {0} does not exist or has already finished")]
    NotActive(BuildId),
    #[error("failed to store the builds")]
    Store(#[source] Arc<StoreError>),
    /// Refused up front: the store is failing and nothing new is taken.
    #[error("the master cannot save builds right now ({0}); nothing was queued, try again later")]
    StoreFailing(String),
}

/// What a submit did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Submitted {
    /// New builds, queued.
    New(Vec<BuildId>),
    /// The idempotency key was used before for this request: its builds,
    /// and nothing new.
    Replayed {
        submit_id: String,
        builds: Vec<BuildId>,
    },
}

/// The scheduler's address: cheap to clone, used by the API and the worker
/// sessions.
#[derive(Clone)]
pub struct SchedulerHandle {
    tx: mpsc::Sender<Event>,
    health: Arc<StoreHealth>,
}

impl SchedulerHandle {
    pub(super) fn new(tx: mpsc::Sender<Event>, health: Arc<StoreHealth>) -> Self {
        Self { tx, health }
    }

    /// Why the store fails right now, or `None` when it works.
    pub fn store_fault(&self) -> Option<String> {
        self.health.fault()
    }

    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, SchedError>>) -> Event,
    ) -> Result<T, SchedError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(make(reply))
            .await
            .map_err(|_| SchedError::Stopped)?;
        rx.await.map_err(|_| SchedError::Stopped)?
    }

    /// Puts a reloaded config's pools in force; returns what changed.
    pub async fn reconfigure(
        &self,
        pools: Vec<super::PoolSpec>,
    ) -> Result<super::PoolChanges, SchedError> {
        self.ask(|reply| Event::Reconfigure { pools, reply }).await
    }

    /// Puts a reloaded config's `[budget]` in force.
    pub async fn set_budget(&self, budget: crate::config::BudgetConfig) -> Result<(), SchedError> {
        let budget = Box::new(budget);
        self.ask(|reply| Event::Budget { budget, reply }).await
    }

    /// Queues builds; returns their ids.
    pub async fn submit(&self, builds: Vec<NewBuild>) -> Result<Vec<BuildId>, SchedError> {
        match self.submit_once(builds, None).await? {
            Submitted::New(ids) | Submitted::Replayed { builds: ids, .. } => Ok(ids),
        }
    }

    /// Queues builds once per idempotency key (see `Store::insert_builds_once`).
    pub async fn submit_once(
        &self,
        builds: Vec<NewBuild>,
        key: Option<IdempotencyKey>,
    ) -> Result<Submitted, SchedError> {
        self.ask(|reply| Event::Submit { builds, key, reply }).await
    }

    /// Cancels a queued or running build; returns its state afterwards.
    pub async fn cancel(&self, build: BuildId) -> Result<BuildState, SchedError> {
        self.ask(|reply| Event::Cancel { build, reply }).await
    }

    pub async fn workers(&self) -> Result<Vec<WorkerView>, SchedError> {
        self.ask(|reply| Event::Workers { reply }).await
    }

    /// Every pool with its caps, counts and launch backoff.
    pub async fn pools(&self) -> Result<Vec<PoolView>, SchedError> {
        self.ask(|reply| Event::Pools { reply }).await
    }

    /// Where a queued build stands (None once it left the queue).
    pub async fn queue_position(
        &self,
        build: BuildId,
    ) -> Result<Option<QueuePosition>, SchedError> {
        self.ask(|reply| Event::QueuePosition { build, reply })
            .await
    }

    /// Pools, workers and queue as `/metrics` shows them.
    pub async fn fleet(&self) -> Result<Fleet, SchedError> {
        self.ask(|reply| Event::Fleet { reply }).await
    }

    /// Checks a worker's hello. On success the `Welcome` is already queued
    /// on `tx` and the session id is returned.
    pub async fn hello(
        &self,
        hello: Hello,
        tx: mpsc::Sender<Box<MasterMessage>>,
    ) -> Result<u64, Refused> {
        let (reply, rx) = oneshot::channel();
        let stopped = || Refused {
            reason: "the master is stopping".into(),
            fatal: false,
        };
        self.tx
            .send(Event::Hello { hello, tx, reply })
            .await
            .map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }

    pub async fn from_worker(&self, worker_id: &str, session: u64, msg: worker_message::Msg) {
        let event = Event::FromWorker {
            worker_id: worker_id.to_owned(),
            session,
            msg,
        };
        // A stopped scheduler has nothing left to tell.
        let _ = self.tx.send(event).await;
    }

    pub async fn disconnected(&self, worker_id: &str, session: u64) {
        let _ = self
            .tx
            .send(Event::Disconnected {
                worker_id: worker_id.to_owned(),
                session,
            })
            .await;
    }

    /// Stops taking builds, lets running ones finish within the grace period,
    /// cancels the rest, terminates every worker, and returns when all are gone.
    pub async fn shutdown(&self) -> Result<(), SchedError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Event::Shutdown { reply })
            .await
            .map_err(|_| SchedError::Stopped)?;
        rx.await.map_err(|_| SchedError::Stopped)
    }
}
