//! Workers as Docker containers, on one or several Docker hosts.
//!
//! Every container carries labels naming its master, pool and worker, so the
//! containers of a pool are found again on every host after a master crash.

mod config;
mod errors;
mod hosts;
mod image;
mod labels;
mod platform;
mod provider;
mod section;
mod settings;
pub mod url;
mod validate;

pub use config::{DockerHostConfig, DockerPoolConfig};

pub use labels::{LABEL_MASTER, LABEL_POOL, LABEL_PREFIX, LABEL_WORKER};
pub use platform::{Platform, LINUX_WORK_DIR, WINDOWS_WORKER_PATH, WINDOWS_WORK_DIR};
pub use provider::DockerProvider;
pub use settings::{
    parse_endpoint, parse_memory, DockerSettings, Endpoint, HostSettings, PullPolicy,
};
