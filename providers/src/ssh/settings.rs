//! What one SSH pool is configured with, as the provider sees it (derived
//! from its config section in `section.rs`).

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// The operating system a host runs: it decides the remote shell dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Platform {
    #[default]
    Linux,
    Macos,
    Windows,
}

impl Platform {
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Linux => "linux",
            Platform::Macos => "macos",
            Platform::Windows => "windows",
        }
    }

    pub fn is_windows(self) -> bool {
        self == Platform::Windows
    }

    /// The worker executable's file name on this platform.
    pub fn worker_file_name(self) -> &'static str {
        if self.is_windows() {
            "burst-worker.exe"
        } else {
            "burst-worker"
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How host keys are checked. There is deliberately no "off".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostKeyCheck {
    /// The host's key must already be in the known_hosts file.
    #[default]
    Strict,
    /// Unknown hosts are added on first contact; a changed key is refused.
    AcceptNew,
}

/// One build machine.
#[derive(Debug, Clone)]
pub struct HostSettings {
    /// Unique within the pool; part of every provider id.
    pub name: String,
    pub address: String,
    pub port: u16,
    /// `None` lets ssh pick (its config, or the master's user name).
    pub user: Option<String>,
    pub key_file: Option<PathBuf>,
    pub platform: Platform,
    /// Workers this host runs at once (for this pool).
    pub max_workers: u32,
    /// Directory holding the worker binary; relative = from the login
    /// directory.
    pub install_dir: String,
    /// Root of pid files, logs and work dirs:
    /// `<state_dir>/<master_id>/<pool>/<worker_id>/`.
    pub state_dir: String,
    /// Argv run on the master to power the host on; empty = none.
    pub wake: Vec<String>,
    /// Argv run on the master once the host's last worker is gone.
    pub sleep: Vec<String>,
    /// How long SSH may take to come up after `wake`.
    pub wake_timeout: Duration,
    /// Recorded with each worker it runs (the ledger's `price_per_hour`).
    pub price_per_hour: Option<f64>,
}

impl HostSettings {
    /// `user@address:port`, for messages.
    pub fn destination(&self) -> String {
        match &self.user {
            Some(user) => format!("{user}@{}:{}", self.address, self.port),
            None => format!("{}:{}", self.address, self.port),
        }
    }
}

/// Settings of one SSH pool.
#[derive(Debug, Clone)]
pub struct SshSettings {
    pub master_id: String,
    pub pool: String,
    pub hosts: Vec<HostSettings>,
    /// `None` = ssh's own default (`~/.ssh/known_hosts` of the master's user).
    pub known_hosts: Option<PathBuf>,
    pub host_key_check: HostKeyCheck,
    pub connect_timeout: Duration,
    /// Between asking a worker to stop and killing it.
    pub stop_grace: Duration,
    /// Upload the worker when it is missing or differs from the local one.
    pub upload: bool,
    /// `"<os>-<arch>"` (e.g. `linux-x86_64`) -> local worker binary.
    pub worker_binaries: BTreeMap<String, PathBuf>,
    /// Extra environment for every worker.
    pub env: BTreeMap<String, String>,
    /// Where the ssh control sockets live (one sub-directory per host).
    pub control_dir: PathBuf,
    /// Per-host backoff after a failed connection: first delay and cap.
    pub backoff_min: Duration,
    pub backoff_max: Duration,
}
