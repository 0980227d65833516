use std::sync::Arc;

use burst_proto::MasterMessage;
use burst_providers::Provider;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::tokens::TokenHash;
use crate::model::{BuildId, Instance};

/// A worker's lifecycle. Gone and failed workers leave the scheduler's map;
/// the ledger keeps their history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerState {
    /// The provider's launch call is in flight.
    Launching,
    /// Launched; waiting for the worker's hello until the start deadline.
    Connecting,
    Idle,
    Busy,
    /// The session broke; waiting for the worker to come back with its
    /// resume token until the heartbeat window closes.
    Reconnecting,
    /// The provider's terminate call is in flight (or waits for the launch
    /// call to return a handle to terminate).
    Terminating,
}

impl WorkerState {
    pub const ALL: [WorkerState; 6] = [
        WorkerState::Launching,
        WorkerState::Connecting,
        WorkerState::Idle,
        WorkerState::Busy,
        WorkerState::Reconnecting,
        WorkerState::Terminating,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            WorkerState::Launching => "launching",
            WorkerState::Connecting => "connecting",
            WorkerState::Idle => "idle",
            WorkerState::Busy => "busy",
            WorkerState::Reconnecting => "reconnecting",
            WorkerState::Terminating => "terminating",
        }
    }

    /// Will be ready for a build without a new launch.
    pub fn is_starting(self) -> bool {
        matches!(self, WorkerState::Launching | WorkerState::Connecting)
    }
}

pub struct Session {
    pub id: u64,
    /// Boxed: a channel allocates its slots 32 at a time, and a
    /// `MasterMessage` is 344 bytes; a box is 8, so an idle session's
    /// queue costs 256 bytes, not 11 KiB.
    pub tx: mpsc::Sender<Box<MasterMessage>>,
}

pub struct Worker {
    pub id: String,
    /// Index into the scheduler's pools.
    pub pool: usize,
    /// The provider that launched it, which stops it: a reload may give its
    /// pool another provider section, or remove the pool.
    pub provider: Arc<dyn Provider>,
    pub state: WorkerState,
    /// When the worker entered its current state.
    pub since: Instant,
    /// Start deadline (launching/connecting) or reconnect deadline.
    pub deadline: Option<Instant>,
    pub launch_token: TokenHash,
    /// Set once the launch token is spent.
    pub resume_token: Option<TokenHash>,
    /// The token the worker presented to get `resume_token`: still good
    /// until the worker uses the new one (the `Welcome` may not have reached
    /// it).
    pub resume_prev: Option<TokenHash>,
    /// The latest the worker's step lease can run to: the last renewal sent,
    /// plus the lease. Past it (and a grace) the worker has killed its steps.
    pub lease_until: Instant,
    /// Taken back from the ledger at start and not back yet: terminated, it
    /// is an orphan of the previous run (reaped, and counted, as such).
    pub readmitted: bool,
    pub session: Option<Session>,
    pub last_seen: Instant,
    pub builds_done: u32,
    pub build: Option<BuildId>,
    pub os: Option<String>,
    pub labels: Vec<String>,
    /// This worker's ledger row, saved whenever it changes.
    pub ledger: Instance,
    /// The provider's launch call has returned (successfully or not).
    pub launch_returned: bool,
    pub health_in_flight: bool,
    pub next_health: Instant,
}

impl Worker {
    pub fn set_state(&mut self, state: WorkerState, now: Instant) {
        self.state = state;
        self.since = now;
    }

    /// Queues a message for the worker. A full or closed queue means the
    /// session is broken; the caller treats the worker as lost.
    pub fn send(&self, msg: MasterMessage) -> bool {
        self.session
            .as_ref()
            .is_some_and(|s| s.tx.try_send(Box::new(msg)).is_ok())
    }
}
