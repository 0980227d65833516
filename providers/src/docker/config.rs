//! `[pools.NAME.docker]`: one container per worker, on one or several
//! Docker hosts (docs/docker.md). The section may be left out.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::platform::Platform;
use super::settings::PullPolicy;
use crate::config::AtLeastOne;

#[derive(Debug, Clone, PartialEq, Deserialize)]
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
    /// All capabilities, devices and no seccomp/AppArmor: off by default,
    /// and logged as a warning when on.
    pub privileged: bool,
    /// Processes a container may hold at once (a fork bomb stops there).
    pub pids_limit: AtLeastOne,
    /// The user the worker runs as (`docker run --user`); default: the
    /// image's (root in the burst image).
    pub user: Option<String>,
    /// The URL workers dial; default: the master's advertised URL, its
    /// loopback host replaced by the network's gateway.
    pub master_url: Option<String>,
    /// The OS of the containers: "linux" (default) or "windows".
    pub platform: Platform,
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
            pids_limit: AtLeastOne::new(super::platform::DEFAULT_PIDS_LIMIT),
            user: None,
            master_url: None,
            platform: Platform::default(),
            worker_path: None,
            work_dir: None,
        }
    }
}

/// `[[pools.NAME.docker.hosts]]`: one Docker engine.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DockerHostConfig {
    /// Shown in logs and kept in provider ids; default: "local", or the
    /// endpoint's host:port.
    #[serde(default)]
    pub name: Option<String>,
    /// "local", unix:///path, tcp://host:port, http://host:port or
    /// https://host:port.
    #[serde(default = "local_endpoint")]
    pub endpoint: String,
    /// A directory with ca.pem, cert.pem and key.pem for a TLS endpoint.
    #[serde(default)]
    pub tls_dir: Option<PathBuf>,
    /// Containers of this pool at once on this host; default: no limit
    /// beyond the pool's max_workers.
    #[serde(default)]
    pub capacity: Option<AtLeastOne>,
    /// What a worker on this host costs an hour; over the pool's
    /// `price_per_hour` (docs/cost.md).
    #[serde(default)]
    pub price_per_hour: Option<f64>,
}

fn local_endpoint() -> String {
    "local".to_owned()
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
