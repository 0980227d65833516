//! The HTTP JSON API under `/api/v1/…`, plus `/healthz`. The CLI is its
//! first client.

mod builds;
mod cost;
mod error;
mod log_stream;
mod query;
mod router;
mod workers;

pub use router::{router, AppState};
