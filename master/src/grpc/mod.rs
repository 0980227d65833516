//! The endpoint workers dial: one bidirectional stream per worker session.

mod session;

pub use session::WorkerGrpc;
