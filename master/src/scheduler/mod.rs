//! The scheduler: one actor that owns every pool, worker and active build.
//!
//! Everything that changes scheduling state arrives as an event on one
//! channel and is handled in order. After each one, `decide` (pure) turns
//! the state and the time into effects and the next wake time, and `apply`
//! performs them. One actor means no cap races and only one start or stop in
//! flight per worker.

mod actor;
mod apply;
mod budgets;
mod builds;
mod commit;
mod decide;
mod effect;
mod events;
mod fleet;
mod handle;
mod hello;
mod lost;
mod persist;
mod pool;
mod pool_view;
mod queue_position;
mod reason;
mod reconfigure;
mod retired;
mod runner_jit;
mod secrets;
mod shutdown;
mod spend;
mod startup;
mod state;
mod terminate;
mod tokens;
mod warm;
mod worker;

pub use actor::{PoolSpec, Scheduler, SchedulerSettings};
pub use handle::{SchedError, SchedulerHandle, Submitted};
pub use pool::POOL_LABEL;
pub use reconfigure::PoolChanges;
pub use runner_jit::{JitConfig, RunnerConfigs};
pub use warm::WallClock;
pub use worker::WorkerState;
