//! The configuration file's shape. Every struct denies unknown keys so a typo
//! is an error, not a silently ignored setting.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::model::StepSpec;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub master: MasterConfig,
    /// Pool name -> pool. Builds go to the first pool (in name order) whose
    /// labels cover theirs.
    #[serde(default)]
    pub pools: BTreeMap<String, PoolConfig>,
    #[serde(default)]
    pub builders: Vec<BuilderConfig>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MasterConfig {
    /// Database, logs and worker directories live here.
    pub state_dir: PathBuf,
    /// The HTTP JSON API and `/healthz`.
    pub http_listen: SocketAddr,
    /// The gRPC endpoint workers dial.
    pub grpc_listen: SocketAddr,
    /// The URL handed to workers; defaults to `http://<grpc_listen>`.
    pub advertise_url: Option<String>,
    #[serde(with = "humantime_serde")]
    pub heartbeat_interval: Duration,
    /// Missed heartbeats before a worker is declared lost.
    pub heartbeat_misses: u32,
    /// On SIGTERM, how long running builds may finish before they are cancelled.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// How many times a build whose worker was lost is retried.
    pub build_retries: u32,
}

impl Default for MasterConfig {
    fn default() -> Self {
        Self {
            state_dir: PathBuf::from(".burst"),
            http_listen: SocketAddr::from(([127, 0, 0, 1], 8480)),
            grpc_listen: SocketAddr::from(([127, 0, 0, 1], 8481)),
            advertise_url: None,
            heartbeat_interval: Duration::from_secs(10),
            heartbeat_misses: 3,
            shutdown_grace: Duration::from_secs(30),
            build_retries: 1,
        }
    }
}

impl MasterConfig {
    pub fn advertise_url(&self) -> String {
        self.advertise_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.grpc_listen))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolConfig {
    /// Which provider section applies: "local", "docker" or "ssh".
    pub provider: ProviderKind,
    #[serde(default)]
    pub labels: Vec<String>,
    /// Hard cap on workers of this pool at once, in any state.
    #[serde(default = "defaults::max_workers")]
    pub max_workers: u32,
    /// Idle workers kept warm; 0 scales to zero.
    #[serde(default)]
    pub min_idle: u32,
    /// Launches in flight (launched but not yet connected) at once.
    #[serde(default = "defaults::max_starting")]
    pub max_starting: u32,
    #[serde(default = "defaults::idle_timeout", with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// From launch to the worker's hello.
    #[serde(default = "defaults::start_timeout", with = "humantime_serde")]
    pub start_timeout: Duration,
    /// Recycle a worker after this many builds; 0 = never, 1 = a fresh worker
    /// per build.
    #[serde(default)]
    pub max_builds: u32,
    /// First delay after a failed launch; doubles with jitter up to `backoff_max`.
    #[serde(default = "defaults::backoff_min", with = "humantime_serde")]
    pub backoff_min: Duration,
    #[serde(default = "defaults::backoff_max", with = "humantime_serde")]
    pub backoff_max: Duration,
    #[serde(default)]
    pub local: LocalPoolConfig,
    #[serde(default)]
    pub docker: DockerPoolConfig,
    /// Required when `provider = "ssh"`.
    #[serde(default)]
    pub ssh: Option<SshPoolConfig>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    Local,
    Docker,
    Ssh,
}

/// `[pools.NAME.local]`: workers as processes on the master's machine.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LocalPoolConfig {
    /// Program and leading arguments that start a worker; empty = the
    /// `burst-worker` next to `burst`. E.g. `["wine", "burst-worker.exe"]`.
    pub command: Vec<String>,
    /// Extra environment for the worker process.
    pub env: BTreeMap<String, String>,
}

/// `[pools.NAME.docker]`: one container per worker, on one or several
/// Docker hosts. See docs/docker.md.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DockerPoolConfig {
    /// The worker image (built by images/docker/build.sh).
    pub image: String,
    pub pull: PullPolicy,
    /// A directory with a Dockerfile: a host that lacks the image builds
    /// it from here (relative to the master's working directory).
    pub build_context: Option<PathBuf>,
    /// The Dockerfile inside `build_context`; default `Dockerfile`.
    pub dockerfile: Option<String>,
    /// Where containers run; empty = the local engine only.
    pub hosts: Vec<DockerHostConfig>,
    /// The network containers join; default: the engine's bridge.
    pub network: Option<String>,
    /// `SOURCE:TARGET[:OPTIONS]`, as `docker run -v`.
    pub binds: Vec<String>,
    /// Anonymous volumes (container paths), removed with the container.
    pub volumes: Vec<String>,
    pub env: BTreeMap<String, String>,
    /// CPUs per container, e.g. 1.5.
    pub cpus: Option<f64>,
    /// Memory per container: "512m", "2g", "1.5GiB".
    pub memory: Option<String>,
    /// Extra container labels; `io.burst.*` are burst's own.
    pub labels: BTreeMap<String, String>,
    pub privileged: bool,
    /// The URL workers dial; default: the master's advertised URL, its
    /// loopback host replaced by the network's gateway.
    pub master_url: Option<String>,
    /// The OS of the containers: "linux" (default) or "windows".
    pub platform: DockerPlatform,
    /// The worker's executable in the image; default: the image's
    /// entrypoint on Linux, `C:\burst\burst-worker.exe` on Windows.
    pub worker_path: Option<String>,
    /// The worker's work directory inside the container; default `/work`
    /// on Linux, `C:\burst\work` on Windows.
    pub work_dir: Option<String>,
}

impl Default for DockerPoolConfig {
    fn default() -> Self {
        Self {
            image: "burst-worker:latest".to_owned(),
            pull: PullPolicy::default(),
            build_context: None,
            dockerfile: None,
            hosts: Vec::new(),
            network: None,
            binds: Vec::new(),
            volumes: Vec::new(),
            env: BTreeMap::new(),
            cpus: None,
            memory: None,
            labels: BTreeMap::new(),
            privileged: false,
            master_url: None,
            platform: DockerPlatform::default(),
            worker_path: None,
            work_dir: None,
        }
    }
}

/// The operating system of a docker pool's containers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DockerPlatform {
    #[default]
    Linux,
    Windows,
}

/// When a Docker host fetches the worker image from its registry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PullPolicy {
    /// Use only images the host has.
    Never,
    /// Pull (or build, with a build context) when the host lacks it.
    #[default]
    IfMissing,
    /// Pull before launching (at most once a minute per host).
    Always,
}

/// `[[pools.NAME.docker.hosts]]`: one Docker engine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DockerHostConfig {
    /// Shown in logs and kept in provider ids; default: "local", or the
    /// endpoint's host:port.
    #[serde(default)]
    pub name: Option<String>,
    /// "local", unix:///path, tcp://host:port, http://host:port or
    /// https://host:port.
    #[serde(default = "defaults::docker_endpoint")]
    pub endpoint: String,
    /// A directory with ca.pem, cert.pem and key.pem for a TLS endpoint.
    #[serde(default)]
    pub tls_dir: Option<PathBuf>,
    /// Containers of this pool at once on this host; default: no limit
    /// beyond the pool's max_workers.
    #[serde(default)]
    pub capacity: Option<u32>,
}

impl DockerHostConfig {
    /// The name, or the one derived from the endpoint.
    pub fn name(&self, index: usize) -> String {
        if let Some(name) = &self.name {
            return name.clone();
        }
        let endpoint = self.endpoint.trim();
        if endpoint.is_empty() || endpoint == "local" {
            return "local".to_owned();
        }
        match endpoint.split_once("://") {
            Some(("unix", _)) | None => format!("host{index}"),
            Some((_, rest)) => rest.trim_end_matches('/').to_owned(),
        }
    }
}

/// `[pools.NAME.ssh]`: workers on build machines reached over SSH.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    pub host_key_check: HostKeyCheckConfig,
    #[serde(default = "defaults::ssh_connect_timeout", with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// After the worker is asked to stop, how long before it is killed.
    #[serde(default = "defaults::ssh_stop_grace", with = "humantime_serde")]
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

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostKeyCheckConfig {
    #[default]
    Strict,
    AcceptNew,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SshPlatform {
    #[default]
    Linux,
    Macos,
    Windows,
}

/// One build machine of an SSH pool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SshHostConfig {
    /// Unique in the pool; defaults to `address` (`address:port` when the
    /// port is not 22). Shown in logs and the instance ledger.
    #[serde(default)]
    pub name: Option<String>,
    pub address: String,
    #[serde(default = "defaults::ssh_port")]
    pub port: u16,
    /// Unset = ssh's default (its config, or the master's user name).
    #[serde(default)]
    pub user: Option<String>,
    /// Private key used for this host (and only it).
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    #[serde(default)]
    pub platform: SshPlatform,
    /// Workers this host runs at once.
    #[serde(default = "defaults::ssh_host_workers")]
    pub max_workers: u32,
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
    #[serde(default = "defaults::ssh_wake_timeout", with = "humantime_serde")]
    pub wake_timeout: Duration,
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuilderConfig {
    pub name: String,
    /// Labels a worker must carry. `{axis}` is replaced by the cell's value,
    /// so `labels = ["{os}"]` sends each cell of an `os` axis to its own pool.
    #[serde(default)]
    pub labels: Vec<String>,
    /// Axis name -> values; one build per combination. Each value reaches the
    /// steps as the environment variable named like the axis, upper-cased.
    #[serde(default)]
    pub matrix: BTreeMap<String, Vec<String>>,
    /// Overrides `master.build_retries`.
    #[serde(default)]
    pub retries: Option<u32>,
    pub steps: Vec<StepConfig>,
}

/// A step as written in the config file: `run` (a script) or `argv`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepConfig {
    pub name: String,
    #[serde(default)]
    pub run: Option<String>,
    #[serde(default)]
    pub argv: Option<Vec<String>>,
    /// Script used on Windows workers instead of `run`.
    #[serde(default)]
    pub run_windows: Option<String>,
    #[serde(default)]
    pub shell: Option<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub working_dir: Option<String>,
    #[serde(default, with = "humantime_serde::option")]
    pub timeout: Option<Duration>,
    #[serde(default)]
    pub continue_on_failure: bool,
    #[serde(default)]
    pub always_run: bool,
}

impl StepConfig {
    /// The step as builds carry it. Validation has already checked that
    /// exactly one of `run` and `argv` is set.
    pub fn to_spec(&self) -> StepSpec {
        use crate::model::Command;
        let command = match (&self.run, &self.argv) {
            (_, Some(argv)) => Command::Argv(argv.clone()),
            (Some(run), None) => Command::Script(run.clone()),
            (None, None) => Command::Script(String::new()),
        };
        StepSpec {
            name: self.name.clone(),
            command,
            command_windows: self.run_windows.clone().map(Command::Script),
            shell: self.shell.clone(),
            env: self.env.clone(),
            working_dir: self.working_dir.clone(),
            timeout: self.timeout,
            continue_on_failure: self.continue_on_failure,
            always_run: self.always_run,
        }
    }
}

mod defaults {
    use std::time::Duration;

    pub fn docker_endpoint() -> String {
        "local".to_owned()
    }

    pub fn max_workers() -> u32 {
        4
    }
    pub fn max_starting() -> u32 {
        4
    }
    pub fn idle_timeout() -> Duration {
        Duration::from_secs(300)
    }
    pub fn start_timeout() -> Duration {
        Duration::from_secs(120)
    }
    pub fn backoff_min() -> Duration {
        Duration::from_secs(1)
    }
    pub fn backoff_max() -> Duration {
        Duration::from_secs(300)
    }
    pub fn yes() -> bool {
        true
    }
    pub fn ssh_port() -> u16 {
        22
    }
    pub fn ssh_host_workers() -> u32 {
        1
    }
    pub fn ssh_connect_timeout() -> Duration {
        Duration::from_secs(10)
    }
    pub fn ssh_stop_grace() -> Duration {
        Duration::from_secs(10)
    }
    pub fn ssh_wake_timeout() -> Duration {
        Duration::from_secs(180)
    }
}
