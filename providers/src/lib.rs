//! Where burst's latent workers come from.
//!
//! Every backend (local processes, Docker, EC2, SSH) implements [`Provider`]:
//! launch a worker, terminate it, and list the ones that exist so the master
//! can reconcile its ledger against reality after a crash. Each provider
//! module also owns its config section, its checks and its construction
//! ([`Section`]); `registry.rs` lists them.

pub mod config;
pub mod docker;
pub mod ec2;
mod error;
#[cfg(feature = "fake")]
pub mod fake;
pub mod local;
mod provider;
pub mod registry;
mod section;
pub mod ssh;

pub use error::{ErrorKind, ProviderError};
pub use provider::{Health, LaunchSpec, Launched, ListedInstance, Provider};
pub use registry::{ProviderConfig, ProviderKind, ProviderSection};
pub use section::Section;

/// Environment variables a provider hands to the worker it launches. The
/// worker reads the same names (see `burst-worker --help`).
pub mod env {
    pub const MASTER_URL: &str = "BURST_MASTER_URL";
    pub const WORKER_ID: &str = "BURST_WORKER_ID";
    pub const TOKEN: &str = "BURST_TOKEN";
    pub const LABELS: &str = "BURST_LABELS";
    pub const WORK_DIR: &str = "BURST_WORK_DIR";
    /// Which master launched the worker: lets `list` find its workers.
    pub const MASTER_ID: &str = "BURST_MASTER_ID";
    pub const POOL: &str = "BURST_POOL";
}
