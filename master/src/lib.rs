//! burst's master: pools of latent workers, the scheduler, the store, the
//! HTTP API and the CLI.

pub mod api;
pub mod artifacts;
pub mod caches;
pub mod cli;
pub mod config;
pub mod cost;
pub mod daemon;
pub mod failpoint;
pub mod github;
pub mod grpc;
pub mod identity;
pub mod janitor;
pub mod logging;
pub mod logs;
pub mod metrics;
pub mod model;
pub mod reporters;
pub mod scheduler;
pub mod simulate;
pub mod store;
pub mod tls;
pub mod triggers;
pub mod ui;
