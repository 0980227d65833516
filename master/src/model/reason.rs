//! Why a build is where it is, as typed values. The API and CLI show their
//! `Display` text (stored in `Build::reason` / `Attempt::reason`); nothing
//! parses that text back.

use std::fmt;
use std::time::Duration;

use humantime::format_duration;

use super::{AttemptState, Build, BuildState};

/// A worker missed a deadline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expiry {
    StartTimeout { worker: String, timeout: Duration },
    NoReconnect { worker: String },
    MissedHeartbeats { worker: String, window: Duration },
}

impl fmt::Display for Expiry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expiry::StartTimeout { worker, timeout } => write!(
                f,
                "worker {worker} did not connect within start_timeout ({})",
                format_duration(*timeout)
            ),
            Expiry::NoReconnect { worker } => {
                write!(f, "worker {worker} disconnected and did not come back")
            }
            Expiry::MissedHeartbeats { worker, window } => write!(
                f,
                "worker {worker} missed its heartbeats for {}",
                format_duration(*window)
            ),
        }
    }
}

/// Why an attempt lost its worker (the attempt's reason).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LostReason {
    Expired(Expiry),
    Disconnected { worker: String },
    Interrupted { worker: String, detail: String },
    UnreachableWhileCancelling,
    UnreachableOnStep,
}

impl fmt::Display for LostReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LostReason::Expired(e) => e.fmt(f),
            LostReason::Disconnected { worker } => write!(f, "worker {worker} disconnected"),
            LostReason::Interrupted { worker, detail } => {
                write!(f, "worker {worker} got an interruption notice: {detail}")
            }
            LostReason::UnreachableWhileCancelling => {
                f.write_str("worker unreachable while cancelling")
            }
            LostReason::UnreachableOnStep => {
                f.write_str("worker unreachable when its step was sent")
            }
        }
    }
}

/// Why an attempt was interrupted through no fault of its worker (the
/// attempt's reason; such an attempt never uses up a retry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InterruptReason {
    MasterRestarted,
    /// The worker killed the step itself: no renewal of its step lease came
    /// in time (the master was away or unreachable for that long).
    LeaseExpired {
        worker: String,
    },
}

impl fmt::Display for InterruptReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InterruptReason::MasterRestarted => {
                f.write_str("the master restarted while the build ran")
            }
            InterruptReason::LeaseExpired { worker } => write!(
                f,
                "worker {worker} killed the step: its step lease ran out without a renewal"
            ),
        }
    }
}

/// A queued build whose last attempt lost its worker or was interrupted: it
/// runs again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retrying {
    /// The attempt that was lost.
    pub attempt: u32,
    /// That attempt's reason.
    pub cause: String,
}

impl Retrying {
    /// Read from the build's history, so it holds across restarts too.
    pub fn of(build: &Build) -> Option<Self> {
        let last = build.attempts.last()?;
        let ended = matches!(
            last.state,
            AttemptState::WorkerLost | AttemptState::Interrupted
        );
        (build.state == BuildState::Queued && ended).then(|| Retrying {
            attempt: last.number,
            cause: last.reason.clone().unwrap_or_default(),
        })
    }
}

impl fmt::Display for Retrying {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "retrying: {}", self.cause)
    }
}

/// What a queued build waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitReason {
    Backoff {
        pool: String,
        error: String,
        /// Whole seconds, so the status does not change every second.
        retry_after: Duration,
    },
    Starting {
        pool: String,
    },
    AtCap {
        pool: String,
        max_workers: u32,
    },
    Worker {
        pool: String,
    },
    /// A budget is reached or a spend-rate cap is met: "budget reached:
    /// 40.12 of 40.00 USD today".
    Spend {
        why: String,
    },
}

impl fmt::Display for WaitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WaitReason::Backoff {
                pool,
                error,
                retry_after,
            } => write!(
                f,
                "waiting for pool {pool}: backing off after a failed launch ({error}); retrying after {}",
                format_duration(*retry_after)
            ),
            WaitReason::Starting { pool } => {
                write!(f, "waiting for a worker of pool {pool} to start")
            }
            WaitReason::AtCap { pool, max_workers } => write!(
                f,
                "waiting for a free worker: pool {pool} is at max_workers ({max_workers})"
            ),
            WaitReason::Worker { pool } => write!(f, "waiting for a worker of pool {pool}"),
            WaitReason::Spend { why } => f.write_str(why),
        }
    }
}

/// A queued build's status: why it was retried (if it was), then what it
/// waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedStatus {
    pub retry: Option<Retrying>,
    pub wait: WaitReason,
}

impl fmt::Display for QueuedStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.retry {
            Some(retry) => write!(f, "{retry} — {}", self.wait),
            None => self.wait.fmt(f),
        }
    }
}

/// Why a queued build fails without running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unservable {
    NoPool {
        labels: Vec<String>,
    },
    /// Every pool that serves it failed with a permanent error: (pool, error).
    LaunchFailed {
        errors: Vec<(String, String)>,
    },
}

impl fmt::Display for Unservable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unservable::NoPool { labels } => {
                write!(f, "no pool serves labels [{}]", labels.join(", "))
            }
            Unservable::LaunchFailed { errors } => {
                let errors: Vec<_> = errors
                    .iter()
                    .map(|(pool, error)| format!("pool {pool}: {error}"))
                    .collect();
                write!(f, "failed to launch a worker: {}", errors.join("; "))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_stay_what_the_api_showed() {
        let retry = Retrying {
            attempt: 1,
            cause: "worker w disconnected".into(),
        };
        let status = QueuedStatus {
            retry: Some(retry),
            wait: WaitReason::Backoff {
                pool: "p".into(),
                error: "boom".into(),
                retry_after: Duration::from_secs(2),
            },
        };
        assert_eq!(
            status.to_string(),
            "retrying: worker w disconnected — waiting for pool p: backing off after a failed launch (boom); retrying after 2s"
        );
        let cap = WaitReason::AtCap {
            pool: "p".into(),
            max_workers: 3,
        };
        assert_eq!(
            cap.to_string(),
            "waiting for a free worker: pool p is at max_workers (3)"
        );
        let expiry = Expiry::StartTimeout {
            worker: "w".into(),
            timeout: Duration::from_secs(30),
        };
        assert_eq!(
            expiry.to_string(),
            "worker w did not connect within start_timeout (30s)"
        );
        let failed = Unservable::LaunchFailed {
            errors: vec![("a".into(), "x".into()), ("b".into(), "y".into())],
        };
        assert_eq!(
            failed.to_string(),
            "failed to launch a worker: pool a: x; pool b: y"
        );
    }
}
