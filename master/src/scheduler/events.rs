use burst_proto::{worker_message, Hello, MasterMessage, Refused};
use burst_providers::{Health, Launched, ProviderError};
use tokio::sync::{mpsc, oneshot};

use super::{SchedError, Submitted};
use crate::metrics::Fleet;
use crate::model::{
    BuildId, BuildState, IdempotencyKey, NewBuild, PoolView, QueuePosition, WorkerView,
};

pub type Reply<T> = oneshot::Sender<Result<T, SchedError>>;

/// Everything that can change the scheduler's state.
pub enum Event {
    Submit {
        builds: Vec<NewBuild>,
        key: Option<IdempotencyKey>,
        reply: Reply<Submitted>,
    },
    Cancel {
        build: BuildId,
        reply: Reply<BuildState>,
    },
    /// A worker opened a session. On success the scheduler has already
    /// queued the `Welcome` on `tx`; the reply carries the session id.
    Hello {
        hello: Hello,
        tx: mpsc::Sender<Box<MasterMessage>>,
        reply: oneshot::Sender<Result<u64, Refused>>,
    },
    FromWorker {
        worker_id: String,
        session: u64,
        msg: worker_message::Msg,
    },
    Disconnected {
        worker_id: String,
        session: u64,
    },
    LaunchDone {
        worker_id: String,
        result: Result<Launched, ProviderError>,
    },
    TerminateDone {
        worker_id: String,
        result: Result<(), ProviderError>,
    },
    Health {
        worker_id: String,
        result: Result<Health, ProviderError>,
    },
    Workers {
        reply: Reply<Vec<WorkerView>>,
    },
    /// Pools with their caps, counts and backoff.
    Pools {
        reply: Reply<Vec<PoolView>>,
    },
    /// Where a queued build stands in its pool's queue.
    QueuePosition {
        build: BuildId,
        reply: Reply<Option<QueuePosition>>,
    },
    Shutdown {
        reply: oneshot::Sender<()>,
    },
    /// A config reload's `[budget]`.
    Budget {
        budget: Box<crate::config::BudgetConfig>,
        reply: Reply<()>,
    },
    /// A config reload's pools (see `reconfigure.rs`).
    Reconfigure {
        pools: Vec<super::actor::PoolSpec>,
        reply: Reply<super::PoolChanges>,
    },
    /// A runner step's JIT config task ended (`runner_jit.rs`).
    Jit {
        step: crate::logs::StepRunId,
        worker_id: String,
        result: Result<super::runner_jit::JitConfig, String>,
    },
    /// The state `/metrics` shows as gauges.
    Fleet {
        reply: Reply<Fleet>,
    },
}
