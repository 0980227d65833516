//! Step logs: one file per step run under `<state_dir>/logs`, appended by
//! worker sessions and read back complete or followed live. Secret values
//! are masked on the way in, so no reader ever sees them.

mod checkpoint;
mod files;
mod mask;
mod session_owner;
mod step_run_id;

pub use files::{limit_message, LogError, LogStore, Output, DEFAULT_STEP_LOG_LIMIT};
pub use mask::{Mask, MaskError, MaskStream, MASKED};
pub use session_owner::session_owner;
pub use step_run_id::StepRunId;
