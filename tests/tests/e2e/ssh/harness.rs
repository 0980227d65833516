//! The ssh pool of these tests, for the one `burst_e2e::MasterBuilder`:
//! its hosts are local sshd servers (`burst_e2e::sshd`).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use burst_e2e::sshd::{ClientKey, Sshd};
use burst_e2e::toml_text::quote;
use burst_e2e::MasterBuilder;

/// The directory of the `burst` and `burst-worker` under test (see
/// `burst_e2e::Bins`; `BURST_E2E_BIN_DIR` overrides it).
pub fn bin_dir() -> PathBuf {
    let bins = burst_e2e::Bins::locate().unwrap_or_else(|e| panic!("{e}"));
    bins.burst
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// One host's `[[pools.ssh.ssh.hosts]]` entry.
pub struct HostEntry<'a> {
    pub sshd: &'a Sshd,
    pub max_workers: u32,
    pub install_dir: String,
    pub state_dir: String,
    /// More TOML lines for the host's table (wake, sleep...).
    pub extra: String,
}

impl<'a> HostEntry<'a> {
    pub fn new(sshd: &'a Sshd, max_workers: u32) -> Self {
        Self {
            sshd,
            max_workers,
            install_dir: sshd.root.join("bin").display().to_string(),
            state_dir: sshd.root.join("state").display().to_string(),
            extra: String::new(),
        }
    }
}

pub struct PoolSpec {
    pub max_workers: u32,
    pub steps: String,
}

// A short step lease: a restarted master reaps the workers of the killed
// one (which cannot reach its new port) once it ran out.
const MASTER: &str = r#"heartbeat_interval = "1s"
step_lease = "3s"
heartbeat_misses = 3
shutdown_grace = "5s"
build_retries = 1"#;

/// A master with pool `ssh` on `hosts` and builder `hello` of `pool.steps`;
/// `known_hosts` is the file the pool checks host keys against.
pub fn master(
    key: &ClientKey,
    known_hosts: &Path,
    hosts: &[HostEntry<'_>],
    pool: &PoolSpec,
) -> MasterBuilder {
    let mut text = format!(
        r#"[pools.ssh]
provider = "ssh"
labels = ["linux", "ssh"]
max_workers = {max_workers}
max_starting = {max_workers}
max_builds = 1
idle_timeout = "1s"
start_timeout = "90s"
backoff_min = "1s"
backoff_max = "20s"

[pools.ssh.ssh]
known_hosts = {known_hosts}
connect_timeout = "5s"
stop_grace = "3s"
"#,
        max_workers = pool.max_workers,
        known_hosts = quote(&known_hosts.display().to_string()),
    );
    for h in hosts {
        text.push_str(&format!(
            r#"
[[pools.ssh.ssh.hosts]]
name = {name}
address = "127.0.0.1"
port = {port}
user = "root"
key_file = {key}
platform = "linux"
max_workers = {max}
install_dir = {install}
state_dir = {state}
{extra}"#,
            extra = h.extra,
            name = quote(&h.sshd.name),
            port = h.sshd.port,
            key = quote(&key.private.display().to_string()),
            max = h.max_workers,
            install = quote(&h.install_dir),
            state = quote(&h.state_dir),
        ));
    }
    let builder = format!(
        "[[builders]]\nname = \"hello\"\nlabels = [\"ssh\"]\n\n{}\n",
        pool.steps
    );
    MasterBuilder::new()
        .master_toml(MASTER)
        .section(&text)
        .section(&builder)
        .rust_log("info,burst_providers=debug")
        // The master stops its remote workers itself.
        .stop_gracefully(Duration::from_secs(30))
}

/// Writes a known_hosts file trusting these servers.
pub fn write_known_hosts(dir: &Path, hosts: &[&Sshd]) -> PathBuf {
    let path = dir.join("known_hosts");
    let text: String = hosts
        .iter()
        .map(|h| format!("{}\n", h.known_hosts_line()))
        .collect();
    fs::write(&path, text).expect("write known_hosts");
    path
}
