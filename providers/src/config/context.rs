//! What a provider's validation and construction know besides its section.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The pool and master a section belongs to.
#[derive(Debug, Clone)]
pub struct Context {
    /// The pool's name (`pools.NAME`).
    pub pool: String,
    /// Every resource a provider creates is tagged with it; empty while only
    /// validating.
    pub master_id: String,
    /// The master's state directory (worker dirs, ssh control sockets).
    pub state_dir: PathBuf,
    /// The URL handed to workers.
    pub advertise_url: String,
    /// Where the master listens for workers.
    pub grpc_listen: SocketAddr,
    /// The pool's `min_idle`.
    pub min_idle: u32,
    /// The pool's launch backoff, also used per host by providers with hosts.
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// Named volumes every worker of the pool mounts: builders' caches of
    /// `kind = "volume"` (only the Docker provider takes them).
    pub cache_volumes: Vec<CacheVolume>,
}

/// A named volume a builder's cache lives in, and where workers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheVolume {
    pub name: String,
    /// An absolute path inside the worker.
    pub target: String,
}

impl Context {
    /// A context for `pool` with neutral values, for tests and tools.
    pub fn for_pool(pool: &str) -> Self {
        Self {
            pool: pool.to_owned(),
            master_id: String::new(),
            state_dir: PathBuf::from(".burst"),
            advertise_url: "http://127.0.0.1:8481".to_owned(),
            grpc_listen: SocketAddr::from(([127, 0, 0, 1], 8481)),
            min_idle: 0,
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(300),
            cache_volumes: Vec::new(),
        }
    }
}
