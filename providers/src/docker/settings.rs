//! The settings of one Docker pool, as the provider uses them (derived from
//! its config section in `section.rs`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::platform::Platform;

/// When to pull the worker image from its registry (`pull` in the config).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PullPolicy {
    /// Only use an image the host already has; a missing image fails the
    /// launch with a permanent error.
    Never,
    /// Pull (or build, with a build context) only when the host lacks it.
    #[default]
    IfMissing,
    /// Pull before launching, at most once per `PULL_ALWAYS_WINDOW` per host.
    Always,
}

/// How to reach one Docker engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// The local engine: `DOCKER_HOST` when it names a unix socket, else
    /// `/var/run/docker.sock`.
    Local,
    /// `unix:///path/to/docker.sock`.
    Unix(PathBuf),
    /// `tcp://host:port` or `http://host:port`, plain HTTP.
    Http(String),
    /// `tcp://host:port` or `https://host:port` with client certificates:
    /// `ca.pem`, `cert.pem` and `key.pem` in `tls_dir` (Docker's layout).
    Tls { addr: String, tls_dir: PathBuf },
}

impl Endpoint {
    /// Whether containers on this engine share the master's machine, so its
    /// loopback-bound master is reachable through the bridge gateway.
    pub fn is_local(&self) -> bool {
        match self {
            Endpoint::Local | Endpoint::Unix(_) => true,
            Endpoint::Http(addr) | Endpoint::Tls { addr, .. } => {
                super::url::host_of(addr).is_some_and(|h| super::url::is_local_host(&h))
            }
        }
    }
}

/// Parses a host's `endpoint` (and optional `tls_dir`) setting.
pub fn parse_endpoint(endpoint: &str, tls_dir: Option<PathBuf>) -> Result<Endpoint, String> {
    let endpoint = endpoint.trim();
    if endpoint.is_empty() || endpoint == "local" {
        return match tls_dir {
            None => Ok(Endpoint::Local),
            Some(_) => Err("tls_dir needs a tcp:// or https:// endpoint".to_owned()),
        };
    }
    if let Some(path) = endpoint.strip_prefix("unix://") {
        if tls_dir.is_some() {
            return Err("tls_dir needs a tcp:// or https:// endpoint".to_owned());
        }
        if !path.starts_with('/') {
            return Err(format!(
                "unix endpoint {endpoint:?} needs an absolute path, e.g. unix:///var/run/docker.sock"
            ));
        }
        return Ok(Endpoint::Unix(PathBuf::from(path)));
    }
    let (scheme, rest) = endpoint.split_once("://").ok_or_else(|| {
        format!("endpoint {endpoint:?} needs a scheme: unix://, tcp://, http:// or https://")
    })?;
    let authority = rest.trim_end_matches('/');
    if authority.is_empty() || authority.contains('/') {
        return Err(format!("endpoint {endpoint:?} must be SCHEME://HOST:PORT"));
    }
    if super::url::host_of(endpoint).is_none() {
        return Err(format!("endpoint {endpoint:?} has no host"));
    }
    let addr = format!("tcp://{authority}");
    match (scheme, tls_dir) {
        ("tcp", None) | ("http", None) => Ok(Endpoint::Http(addr)),
        ("tcp", Some(tls_dir)) | ("https", Some(tls_dir)) => Ok(Endpoint::Tls { addr, tls_dir }),
        ("https", None) => Err(format!(
            "endpoint {endpoint:?} needs tls_dir (a directory with ca.pem, cert.pem and key.pem)"
        )),
        ("http", Some(_)) => Err("tls_dir needs a tcp:// or https:// endpoint".to_owned()),
        (other, _) => Err(format!(
            "endpoint scheme {other:?} is not supported (unix, tcp, http or https)"
        )),
    }
}

/// One Docker engine a pool may place containers on.
#[derive(Debug, Clone, PartialEq)]
pub struct HostSettings {
    /// Unique within the pool; part of each container's provider id.
    pub name: String,
    pub endpoint: Endpoint,
    /// Containers of this pool at once on this host; `None` = only the
    /// pool's `max_workers` limits it.
    pub capacity: Option<u32>,
    /// Recorded with each container it runs (the ledger's `price_per_hour`).
    pub price_per_hour: Option<f64>,
}

impl HostSettings {
    /// The engine on this machine, with no limit of its own.
    pub fn local() -> Self {
        Self {
            name: "local".to_owned(),
            endpoint: Endpoint::Local,
            capacity: None,
            price_per_hour: None,
        }
    }
}

/// Settings of one Docker pool.
#[derive(Debug, Clone)]
pub struct DockerSettings {
    pub master_id: String,
    pub pool: String,
    /// The worker image, e.g. `burst-worker:latest`.
    pub image: String,
    pub pull: PullPolicy,
    /// A directory holding a Dockerfile: when a host lacks the image, it is
    /// built there from this context instead of pulled.
    pub build_context: Option<PathBuf>,
    /// The Dockerfile's path inside the context.
    pub dockerfile: String,
    pub hosts: Vec<HostSettings>,
    /// The network containers join; `None` = the engine's default bridge.
    pub network: Option<String>,
    /// `SOURCE:TARGET[:OPTIONS]`, as `docker run -v`.
    pub binds: Vec<String>,
    /// Anonymous volumes (container paths), removed with the container.
    pub volumes: Vec<String>,
    /// Builders' volume caches: created (labelled) before each container,
    /// mounted into it, kept across containers.
    pub cache_volumes: Vec<crate::config::CacheVolume>,
    pub env: BTreeMap<String, String>,
    /// CPUs the container may use, e.g. 1.5.
    pub cpus: Option<f64>,
    /// Memory limit in bytes.
    pub memory: Option<u64>,
    /// Extra labels; the `io.burst.*` ones are the provider's own.
    pub labels: BTreeMap<String, String>,
    pub privileged: bool,
    /// Processes a container may hold at once.
    pub pids_limit: u32,
    /// `docker run --user`; `None` = the image's user.
    pub user: Option<String>,
    /// The URL workers dial, overriding the one derived from the master's
    /// advertised URL.
    pub master_url: Option<String>,
    /// The OS of the containers (and so of the hosts that run them).
    pub platform: Platform,
    /// The worker's executable in the image; `None` = the image's entrypoint
    /// on Linux, `C:\burst\burst-worker.exe` on Windows.
    pub worker_path: Option<String>,
    /// The worker's work directory inside the container.
    pub work_dir: String,
    /// Per-request timeout of Docker API calls (pulls and builds excepted).
    pub api_timeout: Duration,
    /// Bounds of a host's quarantine after a failure.
    pub quarantine_min: Duration,
    pub quarantine_max: Duration,
}

impl DockerSettings {
    /// Defaults for everything but the identity of the pool.
    pub fn new(master_id: impl Into<String>, pool: impl Into<String>) -> Self {
        Self {
            master_id: master_id.into(),
            pool: pool.into(),
            image: "burst-worker:latest".to_owned(),
            pull: PullPolicy::default(),
            build_context: None,
            dockerfile: "Dockerfile".to_owned(),
            hosts: vec![HostSettings::local()],
            network: None,
            binds: Vec::new(),
            cache_volumes: Vec::new(),
            volumes: Vec::new(),
            env: BTreeMap::new(),
            cpus: None,
            memory: None,
            labels: BTreeMap::new(),
            privileged: false,
            pids_limit: super::platform::DEFAULT_PIDS_LIMIT,
            user: None,
            master_url: None,
            platform: Platform::Linux,
            worker_path: None,
            work_dir: Platform::Linux.default_work_dir().to_owned(),
            api_timeout: Duration::from_secs(60),
            quarantine_min: Duration::from_secs(1),
            quarantine_max: Duration::from_secs(60),
        }
    }
}

/// Parses a memory limit: Docker's `512m` / `2g` (binary units, as
/// `docker run -m`), or `512MiB`, `1.5GB`, a plain byte count.
pub fn parse_memory(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let docker_style = text.char_indices().last().filter(|(i, c)| {
        *i > 0 && "bkmgtBKMGT".contains(*c) && text[..*i].bytes().all(|b| b.is_ascii_digit())
    });
    let bytes = match docker_style {
        Some((i, unit)) => {
            let n: u64 = text[..i]
                .parse()
                .map_err(|e| format!("invalid memory size {text:?}: {e}"))?;
            let shift = match unit.to_ascii_lowercase() {
                'k' => 10,
                'm' => 20,
                'g' => 30,
                't' => 40,
                _ => 0,
            };
            n.checked_mul(1 << shift)
                .ok_or_else(|| format!("memory size {text:?} is too large"))?
        }
        None => text
            .parse::<bytesize::ByteSize>()
            .map_err(|e| format!("invalid memory size {text:?} (e.g. \"512m\", \"2GiB\"): {e}"))?
            .as_u64(),
    };
    // Docker refuses limits under 6 MiB; nothing useful runs in less.
    if bytes < 6 << 20 {
        return Err(format!(
            "memory size {text:?} is below Docker's minimum of 6 MiB"
        ));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sizes() {
        assert_eq!(parse_memory("512m"), Ok(512 << 20));
        assert_eq!(parse_memory("2g"), Ok(2 << 30));
        assert_eq!(parse_memory("2G"), Ok(2 << 30));
        assert_eq!(parse_memory("512MiB"), Ok(512 << 20));
        assert_eq!(parse_memory("1 GB"), Ok(1_000_000_000));
        assert_eq!(parse_memory("67108864"), Ok(64 << 20));
        assert!(parse_memory("1m").is_err_and(|e| e.contains("minimum")));
        assert!(parse_memory("lots").is_err_and(|e| e.contains("invalid memory size")));
        assert!(parse_memory("99999999999999999999t").is_err());
        assert!(parse_memory("").is_err());
    }

    #[test]
    fn endpoints() {
        assert_eq!(parse_endpoint("", None), Ok(Endpoint::Local));
        assert_eq!(parse_endpoint("local", None), Ok(Endpoint::Local));
        assert_eq!(
            parse_endpoint("unix:///run/docker.sock", None),
            Ok(Endpoint::Unix(PathBuf::from("/run/docker.sock")))
        );
        assert_eq!(
            parse_endpoint("tcp://10.0.0.5:2375", None),
            Ok(Endpoint::Http("tcp://10.0.0.5:2375".to_owned()))
        );
        assert_eq!(
            parse_endpoint("http://builder:2375/", None),
            Ok(Endpoint::Http("tcp://builder:2375".to_owned()))
        );
        assert_eq!(
            parse_endpoint("https://builder:2376", Some(PathBuf::from("/certs"))),
            Ok(Endpoint::Tls {
                addr: "tcp://builder:2376".to_owned(),
                tls_dir: PathBuf::from("/certs")
            })
        );
        assert!(parse_endpoint("https://builder:2376", None).is_err_and(|e| e.contains("tls_dir")));
        assert!(parse_endpoint("unix://relative.sock", None).is_err_and(|e| e.contains("absolute")));
        assert!(parse_endpoint("ssh://builder", None).is_err_and(|e| e.contains("not supported")));
        assert!(parse_endpoint("builder:2375", None).is_err_and(|e| e.contains("scheme")));
        assert!(parse_endpoint("tcp://", None).is_err());
        assert!(parse_endpoint("tcp://a:1/x", None).is_err());
        assert!(parse_endpoint("local", Some(PathBuf::from("/c"))).is_err());
    }

    #[test]
    fn locality() {
        assert!(Endpoint::Local.is_local());
        assert!(Endpoint::Unix(PathBuf::from("/x")).is_local());
        assert!(Endpoint::Http("tcp://127.0.0.1:2375".to_owned()).is_local());
        assert!(Endpoint::Http("tcp://localhost:2375".to_owned()).is_local());
        assert!(!Endpoint::Http("tcp://10.0.0.5:2375".to_owned()).is_local());
    }
}
