//! Step logs: one file per step run under `<state_dir>/logs`, appended by
//! worker sessions and read back complete or followed live. Secret values
//! are masked on the way in, so no reader ever sees them. A finished
//! build's logs are compressed (`compress.rs`) and read back transparently.

mod checkpoint;
mod compress;
mod files;
mod mask;
mod session_owner;
mod step_run_id;

pub use compress::read_all as read_compressed;
pub use files::{limit_message, LogError, LogStore, Output, DEFAULT_STEP_LOG_LIMIT};
pub use mask::{Mask, MaskError, MaskStream, MASKED};
pub use session_owner::session_owner;
pub use step_run_id::StepRunId;
