//! Why the scheduler stops a worker (logged, not stored).

use std::fmt;

use crate::model::Expiry;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// Idle past `idle_timeout`, above `min_idle`.
    IdleTimeout,
    Expired(Expiry),
    /// `max_builds` reached.
    Recycled {
        after: u32,
    },
    InterruptionNotice,
    ExitedBeforeConnecting,
    /// The provider says it exited while the master waited for it to reconnect.
    Exited {
        detail: String,
    },
    ShuttingDown,
    /// Its pool is no longer in the config and it has no build left.
    PoolRemoved {
        pool: String,
    },
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StopReason::IdleTimeout => f.write_str("idle timeout"),
            StopReason::Expired(e) => e.fmt(f),
            StopReason::Recycled { after } => write!(f, "recycled after {after} build(s)"),
            StopReason::InterruptionNotice => f.write_str("interruption notice"),
            StopReason::ExitedBeforeConnecting => f.write_str("exited before connecting"),
            StopReason::Exited { detail } => f.write_str(detail),
            StopReason::ShuttingDown => f.write_str("master shutting down"),
            StopReason::PoolRemoved { pool } => {
                write!(f, "drained: pool {pool} is no longer in the config")
            }
        }
    }
}
