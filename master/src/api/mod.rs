//! The HTTP JSON API under `/api/v1/…`, plus `/healthz`, `/readyz` and `/metrics`. The CLI is its
//! first client.

mod admin;
pub(crate) mod artifacts;
pub(crate) mod builds;
pub(crate) mod caller;
pub(crate) mod cost;
pub mod credentials;
pub(crate) mod error;
pub(crate) mod grid;
pub(crate) mod guard;
mod log_stream;
mod metrics;
pub(crate) mod query;
mod ready;
mod router;
mod secret_view;
pub(crate) mod submit_body;
mod tokens;
pub(crate) mod workers;

pub(crate) use caller::Caller;
pub use router::{router, AppState};
