//! The scheduler: one actor that owns every pool, worker and active build.
//!
//! Everything that changes scheduling state arrives as an [`Event`] on one
//! channel and is applied in order, then [`Scheduler::reconcile`] compares
//! the desired state (queued builds, `min_idle`, timeouts) with the observed
//! one (workers and their states) and acts. One actor means no cap races and
//! only one start or stop in flight per worker.

mod actor;
mod builds;
mod events;
mod handle;
mod hello;
mod lost;
mod pool;
mod reconcile;
mod shutdown;
mod startup;
mod terminate;
mod tokens;
mod worker;

pub use actor::{PoolSpec, Scheduler, SchedulerSettings};
pub use handle::{SchedError, SchedulerHandle};
pub use worker::WorkerState;
