//! The endpoint workers dial: one bidirectional stream per worker session.

mod hello_limits;
mod session;

pub use hello_limits::for_log;
pub use session::WorkerGrpc;
