//! The HTTP JSON API under `/api/v1/…`, plus `/healthz`, `/readyz` and `/metrics`. The CLI is its
//! first client.

mod builds;
mod caller;
mod cost;
pub mod credentials;
mod error;
mod guard;
mod log_stream;
mod metrics;
mod query;
mod ready;
mod router;
mod secret_view;
mod submit_body;
mod tokens;
mod workers;

pub use router::{router, AppState};
