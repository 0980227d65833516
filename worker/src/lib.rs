//! burst-worker: the agent on a build machine. It dials the master over
//! gRPC, runs the steps it is sent, streams their output back, and reports
//! how they ended. See [`run`] and `burst-worker --help`.

pub mod args;
mod artifacts;
mod backoff;
mod cache;
mod checkout;
mod interruption;
mod journal;
pub mod launch_token;
mod output;
mod platform;
mod running;
mod session;
mod step;
pub mod step_env;
pub mod step_user;
mod tls;
mod workspace;

pub use args::{Args, Config};
pub use journal::MESSAGE_DATA;
pub use session::{hello, run, run_until, Exit, OUTBOX_CAPACITY};
pub use tls::Trust;

/// Resolves when the OS asks the worker to stop: SIGTERM or SIGINT on Unix,
/// Ctrl-C on Windows. Pass it to [`run_until`].
pub async fn shutdown_signal() {
    platform::shutdown_signal().await;
}
