//! The endpoint workers dial: one bidirectional stream per worker session.

mod caches;
mod hello_limits;
mod session;

pub use caches::CacheService;
pub use hello_limits::for_log;
pub use session::WorkerGrpc;
