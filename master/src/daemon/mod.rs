//! `burst master`: opens the store, builds the pools, serves the worker and
//! HTTP endpoints, reloads its config on SIGHUP (`reload.rs`), and shuts
//! down cleanly on SIGTERM or Ctrl-C.

mod admin_token;
mod binding;
mod github;
mod listen;
mod notify;
mod reap;
pub mod reload;
mod run;
mod signals;
mod triggers;

pub use run::{run, RunInfo, RunTls};
