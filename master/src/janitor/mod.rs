//! The janitor: deletes finished builds that `[retention]` no longer
//! keeps, with everything the master holds for them, in the background
//! and on `POST /api/v1/gc` (`burst gc`).

mod data;
mod sweep;
mod task;

pub use data::BuildData;
pub use sweep::{GcReport, Janitor};
pub use task::spawn;
