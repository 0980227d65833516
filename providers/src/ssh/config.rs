//! `[pools.NAME.ssh]`: workers on build machines reached over SSH. Required
//! when `provider = "ssh"`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::settings::{HostKeyCheck, Platform};
use crate::config::{AtLeastOne, Positive};

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SshPoolConfig {
    /// `[[pools.NAME.ssh.hosts]]`, at least one.
    pub hosts: Vec<SshHostConfig>,
    /// known_hosts file host keys are checked against; unset = ssh's default
    /// (`~/.ssh/known_hosts` of the user running the master).
    #[serde(default)]
    pub known_hosts: Option<PathBuf>,
    /// `strict` (default): the key must be in `known_hosts`. `accept-new`:
    /// unknown hosts are added on first contact, changed keys still refused.
    #[serde(default)]
    pub host_key_check: HostKeyCheck,
    #[serde(default = "defaults::connect_timeout")]
    pub connect_timeout: Positive,
    /// After the worker is asked to stop, how long before it is killed.
    #[serde(default = "defaults::stop_grace", with = "humantime_serde")]
    pub stop_grace: Duration,
    /// Upload the worker when a host's copy is missing or differs (by
    /// sha256) from the local one for its OS and architecture.
    #[serde(default = "defaults::yes")]
    pub upload: bool,
    /// `"<os>-<arch>"` -> local worker binary, e.g. `linux-x86_64`,
    /// `macos-aarch64`, `windows-x86_64`. `linux-x86_64` defaults to the
    /// `burst-worker` next to `burst`.
    #[serde(default)]
    pub worker_binaries: BTreeMap<String, PathBuf>,
    /// Extra environment for every worker.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

/// One build machine of an SSH pool.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SshHostConfig {
    /// Unique in the pool; defaults to `address` (`address:port` when the
    /// port is not 22). Shown in logs and the instance ledger.
    #[serde(default)]
    pub name: Option<String>,
    pub address: String,
    /// What a worker on this host costs an hour; over the pool's
    /// `price_per_hour` (docs/cost.md).
    #[serde(default)]
    pub price_per_hour: Option<f64>,
    #[serde(default = "defaults::port")]
    pub port: u16,
    /// Unset = ssh's default (its config, or the master's user name).
    #[serde(default)]
    pub user: Option<String>,
    /// Private key used for this host (and only it).
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    #[serde(default)]
    pub platform: Platform,
    /// Workers this host runs at once.
    #[serde(default = "defaults::host_workers")]
    pub max_workers: AtLeastOne,
    /// Directory of the worker binary on the host; relative paths are from
    /// the login directory. Default `.burst/bin`.
    #[serde(default)]
    pub install_dir: Option<String>,
    /// Pid files, logs and work dirs on the host. Default `.burst`.
    #[serde(default)]
    pub state_dir: Option<String>,
    /// Argv run on the master to power the host on when it does not answer.
    #[serde(default)]
    pub wake: Vec<String>,
    /// Argv run on the master once the host's last burst worker is gone.
    #[serde(default)]
    pub sleep: Vec<String>,
    /// How long to wait for SSH after `wake` (also bounds `sleep`).
    #[serde(default = "defaults::wake_timeout")]
    pub wake_timeout: Positive,
}

impl SshHostConfig {
    /// The host's name in logs, the ledger and provider ids.
    pub fn display_name(&self) -> String {
        match &self.name {
            Some(name) => name.clone(),
            None if self.port == 22 => self.address.clone(),
            None => format!("{}:{}", self.address, self.port),
        }
    }
}

mod defaults {
    use std::time::Duration;

    use crate::config::{AtLeastOne, Positive};

    pub fn yes() -> bool {
        true
    }
    pub fn port() -> u16 {
        22
    }
    pub fn host_workers() -> AtLeastOne {
        AtLeastOne::new(1)
    }
    pub fn connect_timeout() -> Positive {
        Positive::secs(10)
    }
    pub fn stop_grace() -> Duration {
        Duration::from_secs(10)
    }
    pub fn wake_timeout() -> Positive {
        Positive::secs(180)
    }
}
