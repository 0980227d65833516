//! Reporters: the states of builds that sources started, sent back to the
//! forge. Off the scheduler's path: `watch.rs` reads build states from the
//! store and queues them in the persisted outbox, `deliver.rs` sends the
//! outbox with retries (`request.rs` says what each kind sends). Neither
//! can block or fail a build, and a restart resumes the outbox.

mod deliver;
mod queued;
mod request;
mod watch;

pub use deliver::{spawn_reporters, ReporterSettings};
pub use queued::watch_new;
pub use request::{context, Outgoing};
