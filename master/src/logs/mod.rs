//! Step logs: one file per step run under `<state_dir>/logs`, appended by
//! worker sessions and read back complete or followed live.

mod files;
mod step_run_id;

pub use files::{LogError, LogStore};
pub use step_run_id::StepRunId;
