//! Where burst's latent workers come from.
//!
//! Every backend (local processes, Docker, EC2, SSH) implements [`Provider`]:
//! launch a worker, terminate it, and list the ones that exist so the master
//! can reconcile its ledger against reality after a crash. The variables a
//! provider hands its workers are `burst_common::launch_env`.

pub mod docker;
pub mod ec2;
mod error;
mod host_choice;
pub mod local;
mod provider;
pub mod ssh;

pub use error::{ErrorKind, ProviderError};
pub use provider::{Health, LaunchSpec, Launched, ListedInstance, Provider};
