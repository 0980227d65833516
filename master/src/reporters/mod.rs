//! Reporters: the states of builds that sources started, sent back to the
//! forge. Off the scheduler's path: `watch.rs` records a triggered
//! submit's reporters before its builds exist, the store then queues each
//! state those builds are saved with in the persisted outbox (in the
//! build's own write), and `deliver.rs` sends the outbox with retries
//! (`request.rs` says what each kind sends). Neither can block or fail a
//! build, and a restart resumes the outbox.

mod deliver;
mod request;
mod watch;

pub use deliver::{spawn_reporters, ReporterSettings};
pub use request::{context, Outgoing};
pub use watch::watch_submit;
