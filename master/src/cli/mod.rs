//! The `burst` command line: `burst master` runs the daemon, every other
//! subcommand is a thin HTTP client of a running master.

mod admin;
pub mod args;
mod artifacts;
pub mod client;
mod commands;
mod cost;
mod docs;
pub mod exit;
mod follow;
pub mod init;
mod init_checks;
pub mod output;
pub mod prefix;
pub mod render;
mod run;
mod simulate;
mod submit;
mod submit_file;
mod token_source;
mod tokens;
mod wait_status;

pub use run::{execute, main};

#[cfg(test)]
mod stub_tests;
