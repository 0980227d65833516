//! burst's master: pools of latent workers, the scheduler, the store, the
//! HTTP API and the CLI.

pub mod cli;
pub mod config;
pub mod daemon;
pub mod model;
pub mod store;
