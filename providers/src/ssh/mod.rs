//! Workers on build machines reached over SSH (Linux, macOS, Windows),
//! woken and put to sleep on demand.

mod commands;
mod connect;
mod exec;
mod hosts;
mod posix;
mod power;
mod provider;
mod quote;
mod settings;
mod upload;
mod windows;

pub use burst_common::windows_quote::cmd_path_problem as windows_path_problem;
pub use provider::SshProvider;
pub use settings::{HostKeyCheck, HostSettings, Platform, SshSettings};
