//! Workers on build machines reached over SSH (Linux, macOS, Windows),
//! woken and put to sleep on demand.

mod commands;
mod config;
mod connect;
mod exec;
mod hosts;
mod posix;
mod power;
mod provider;
mod quote;
mod section;
mod settings;
mod upload;
mod validate;
mod windows;

pub use burst_common::windows_quote::cmd_path_problem as windows_path_problem;
pub use config::{SshHostConfig, SshPoolConfig};

pub use provider::SshProvider;
pub use settings::{HostKeyCheck, HostSettings, Platform, SshSettings};
