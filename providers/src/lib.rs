//! Where burst's latent workers come from.
//!
//! Every backend (local processes, Docker, EC2, SSH) implements [`Provider`]:
//! launch a worker, terminate it, and list the ones that exist so the master
//! can reconcile its ledger against reality after a crash. Each provider
//! module also owns its config section, its checks and its construction
//! ([`Section`]); `registry.rs` lists them. The variables a provider hands
//! its workers are `burst_common::launch_env`.

pub mod config;
pub mod docker;
pub mod ec2;
mod error;
#[cfg(feature = "fake")]
pub mod fake;
mod host_choice;
pub mod local;
mod provider;
pub mod registry;
mod section;
#[cfg(all(feature = "sim", unix))]
pub mod sim;
pub mod ssh;

pub use error::{ErrorKind, ProviderError};
pub use provider::{Health, HostStatus, LaunchSpec, Launched, ListedInstance, Provider};
pub use registry::{ProviderConfig, ProviderKind, ProviderSection};
pub use section::Section;
