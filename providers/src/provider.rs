use async_trait::async_trait;

use crate::ProviderError;

/// Everything a provider needs to launch one worker.
#[derive(Debug, Clone)]
pub struct LaunchSpec {
    /// The id the master chose; the worker presents it in its hello.
    pub worker_id: String,
    pub pool: String,
    /// The owning master: every resource is tagged with it.
    pub master_id: String,
    /// The gRPC URL the worker dials.
    pub master_url: String,
    /// The pin of the master's TLS certificate (`launch_env::MASTER_PIN`),
    /// when it serves TLS; public, handed over beside the token.
    pub master_pin: Option<String>,
    /// One-time launch token. Never log it.
    pub token: String,
    pub labels: Vec<String>,
}

/// What a successful launch returns.
#[derive(Debug, Clone, Default)]
pub struct Launched {
    /// The backend's handle: a pid, a container id, an instance id.
    pub provider_id: String,
    /// Backend facts kept in the ledger (instance type, market, host...).
    pub details: serde_json::Value,
}

/// A worker the backend reports as existing, found by its tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedInstance {
    pub worker_id: String,
    pub provider_id: String,
}

/// What a provider sees of a worker that has not connected yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    Running,
    /// The worker is gone before connecting; `detail` says why (exit status,
    /// last log lines).
    Exited {
        detail: String,
    },
}

/// One host of a multi-host provider, as metrics show it.
#[derive(Debug, Clone, PartialEq)]
pub struct HostStatus {
    /// The host's name from the config.
    pub name: String,
    /// How long launches still keep away from it after failures.
    pub quarantined_for: std::time::Duration,
}

/// A source of latent workers. One value serves one pool.
///
/// Implementations must be safe to call concurrently: the master runs several
/// launches and terminations at once.
#[async_trait]
// `Any`: tests reach the fake behind an `Arc<dyn Provider>` the registry built.
pub trait Provider: std::any::Any + Send + Sync + 'static {
    /// Short name used in logs and the ledger: "local", "docker", "ec2", "ssh".
    fn kind(&self) -> &'static str;

    /// Starts a worker that will dial `spec.master_url`.
    async fn launch(&self, spec: &LaunchSpec) -> Result<Launched, ProviderError>;

    /// Stops and removes a worker. Terminating a worker that is already gone
    /// succeeds.
    async fn terminate(&self, worker_id: &str, provider_id: &str) -> Result<(), ProviderError>;

    /// Lists the workers of this master and pool that exist right now.
    async fn list(&self) -> Result<Vec<ListedInstance>, ProviderError>;

    /// Polled while a worker is starting, so a crashed start fails fast.
    async fn health(&self, _worker_id: &str, _provider_id: &str) -> Result<Health, ProviderError> {
        Ok(Health::Running)
    }

    /// The hosts a multi-host provider places workers on, for metrics;
    /// empty for single-backend providers.
    fn hosts(&self) -> Vec<HostStatus> {
        Vec::new()
    }

    /// Removes the pool's cache volumes not named in `keep` and not in use
    /// (the engine refuses to remove a mounted one: it is kept for a later
    /// pass); returns the names removed. Providers without volumes have none.
    async fn remove_cache_volumes(&self, _keep: &[String]) -> Result<Vec<String>, ProviderError> {
        Ok(Vec::new())
    }
}
