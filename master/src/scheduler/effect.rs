//! What the scheduler decided to do: the output of `decide`, the input of
//! `apply`.

use tokio::time::Instant;

use super::reason::StopReason;
use crate::cost::budget::{Level, Period, Scope};
use crate::model::{BuildId, Expiry, LostReason, QueuedStatus, Unservable};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// A launch failed after all (the worker never connected): back off.
    PoolFailed {
        pool: usize,
        cause: Expiry,
    },
    /// The build's worker is gone: record the lost attempt, maybe retry.
    LoseBuild {
        build: BuildId,
        reason: LostReason,
    },
    /// The build's worker is declared lost but may still run its step: the
    /// build is lost once the provider confirms the worker is gone, or at
    /// `until` (its lease surely ran out), whichever comes first.
    Fence {
        build: BuildId,
        reason: LostReason,
        until: Instant,
    },
    Terminate {
        worker: String,
        reason: StopReason,
    },
    /// Ask the provider whether a starting or reconnecting worker still runs.
    CheckHealth {
        worker: String,
    },
    /// The shutdown grace ran out while the build ran.
    CancelForShutdown {
        build: BuildId,
    },
    Start {
        build: BuildId,
        worker: String,
    },
    Fail {
        build: BuildId,
        reason: Unservable,
    },
    Launch {
        pool: usize,
    },
    /// The build's status text changes.
    Explain {
        build: BuildId,
        status: QueuedStatus,
    },
    /// A budget crossed a level (warning share, limit, or back under).
    Budget {
        scope: Scope,
        period: Period,
        level: Level,
        message: String,
    },
}

/// One decision: effects in the order to apply them, and when to look
/// again if no event comes first (`None`: nothing is pending).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub effects: Vec<Effect>,
    pub wake_at: Option<Instant>,
}
