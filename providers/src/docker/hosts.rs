//! The Docker hosts of a pool: their clients, their capacity, and the
//! quarantine that keeps launches away from a failing host while it recovers.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use bollard::query_parameters::InspectNetworkOptions;
use bollard::{Docker, API_DEFAULT_VERSION};
use tokio::sync::OnceCell;
use tokio::time::Instant;

use super::errors;
use super::settings::{Endpoint, HostSettings};
use super::url;
use crate::ProviderError;

/// One Docker engine.
pub(super) struct Host {
    pub settings: HostSettings,
    api_timeout: Duration,
    /// Connected and version-negotiated on first use, so a master starts
    /// even while an engine is down.
    client: OnceCell<Docker>,
    /// The gateway of the pool's network on this host, once looked up.
    gateway: OnceCell<IpAddr>,
    /// Serialises pulls and builds of the pool's image on this host.
    pub image_lock: tokio::sync::Mutex<Option<Instant>>,
    state: Mutex<HostState>,
}

#[derive(Default)]
struct HostState {
    /// Workers placed here whose containers may still exist.
    workers: HashSet<String>,
    quarantined_until: Option<Instant>,
    /// Delays of the current run of failures; reset by a success.
    backoff: Option<ExponentialBackoff>,
    last_error: Option<String>,
}

impl Host {
    pub fn new(settings: HostSettings, api_timeout: Duration) -> Self {
        Self {
            settings,
            api_timeout,
            client: OnceCell::new(),
            gateway: OnceCell::new(),
            image_lock: tokio::sync::Mutex::new(None),
            state: Mutex::new(HostState::default()),
        }
    }

    pub fn name(&self) -> &str {
        &self.settings.name
    }

    fn state(&self) -> MutexGuard<'_, HostState> {
        // A panic while holding this lock leaves plain counters behind;
        // they are still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The API client, connected on first use.
    pub async fn client(&self) -> Result<&Docker, ProviderError> {
        self.client
            .get_or_try_init(|| async {
                let docker = connect(&self.settings.endpoint, self.api_timeout)
                    .map_err(|e| errors::provider_error("connect", self.name(), &e))?;
                // Older engines refuse a client that speaks a newer API.
                docker
                    .negotiate_version()
                    .await
                    .map_err(|e| errors::provider_error("reach the engine", self.name(), &e))
            })
            .await
    }

    /// The gateway address of `network` (the default bridge when `None`),
    /// which is this host as its containers see it.
    pub async fn gateway(&self, network: Option<&str>) -> Result<IpAddr, ProviderError> {
        let network = network.unwrap_or("bridge");
        let docker = self.client().await?;
        let found = self
            .gateway
            .get_or_try_init(|| async {
                let inspect = docker
                    .inspect_network(network, None::<InspectNetworkOptions>)
                    .await
                    .map_err(|e| {
                        errors::provider_error(
                            &format!("inspect network {network}"),
                            self.name(),
                            &e,
                        )
                    })?;
                let configs: Vec<(Option<String>, Option<String>)> = inspect
                    .ipam
                    .and_then(|ipam| ipam.config)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|c| (c.gateway, c.subnet))
                    .collect();
                url::gateway_from_ipam(&configs).ok_or_else(|| {
                    ProviderError::permanent(format!(
                        "failed to find a gateway address of network {network} on docker \
                             host {}: set the pool's docker.master_url",
                        self.name()
                    ))
                })
            })
            .await?;
        Ok(*found)
    }

    /// A failure that says the host itself is in trouble: keep launches
    /// away from it for the next backoff delay.
    pub fn quarantine(&self, builder: &ExponentialBuilder, error: &ProviderError) -> Duration {
        let mut state = self.state();
        let delay = state
            .backoff
            .get_or_insert_with(|| builder.build())
            .next()
            .unwrap_or(Duration::from_secs(60));
        state.quarantined_until = Some(Instant::now() + delay);
        state.last_error = Some(error.message.clone());
        delay
    }

    /// A call succeeded: the host is healthy again.
    pub fn healthy(&self) {
        let mut state = self.state();
        state.quarantined_until = None;
        state.backoff = None;
        state.last_error = None;
    }

    /// Takes a slot for `worker_id` if the host has one and is not
    /// quarantined.
    pub fn reserve(&self, worker_id: &str, now: Instant) -> bool {
        let mut state = self.state();
        if state.quarantined_until.is_some_and(|t| t > now) {
            return false;
        }
        let full = self
            .settings
            .capacity
            .is_some_and(|cap| state.workers.len() >= cap as usize);
        if full {
            return false;
        }
        state.workers.insert(worker_id.to_owned());
        true
    }

    pub fn release(&self, worker_id: &str) {
        self.state().workers.remove(worker_id);
    }

    /// Records a container found on this host (after a restart, say) so it
    /// counts against the capacity until it is terminated.
    pub fn adopt(&self, worker_id: &str) {
        self.state().workers.insert(worker_id.to_owned());
    }

    /// For ordering placements: the emptiest host first.
    fn load(&self) -> (u64, usize) {
        let state = self.state();
        let used = state.workers.len();
        // Fraction of capacity in thousandths; unlimited hosts count by
        // their container count alone.
        let fraction = match self.settings.capacity {
            Some(cap) if cap > 0 => (used as u64 * 1000) / u64::from(cap),
            _ => 0,
        };
        (fraction, used)
    }

    /// "h1: 4/4 containers" or "h2: quarantined for 3s after: ...".
    fn describe(&self, now: Instant) -> String {
        let state = self.state();
        let cap = self
            .settings
            .capacity
            .map_or_else(|| "unlimited".to_owned(), |c| c.to_string());
        match state.quarantined_until.filter(|t| *t > now) {
            Some(until) => format!(
                "{}: quarantined for {:?} after: {}",
                self.name(),
                until - now,
                state.last_error.as_deref().unwrap_or("an error")
            ),
            None => format!("{}: {}/{cap} containers", self.name(), state.workers.len()),
        }
    }
}

fn connect(endpoint: &Endpoint, timeout: Duration) -> Result<Docker, bollard::errors::Error> {
    let secs = timeout.as_secs().max(1);
    let docker = match endpoint {
        Endpoint::Local => Docker::connect_with_local_defaults()?,
        Endpoint::Unix(path) => {
            Docker::connect_with_unix(&path.to_string_lossy(), secs, API_DEFAULT_VERSION)?
        }
        Endpoint::Http(addr) => Docker::connect_with_http(addr, secs, API_DEFAULT_VERSION)?,
        Endpoint::Tls { addr, tls_dir } => {
            // rustls needs one process-wide crypto provider; another crate
            // may have installed one already, which is as good.
            let _ = rustls::crypto::ring::default_provider().install_default();
            Docker::connect_with_ssl(
                addr,
                &tls_dir.join("key.pem"),
                &tls_dir.join("cert.pem"),
                &tls_dir.join("ca.pem"),
                secs,
                API_DEFAULT_VERSION,
            )?
        }
    };
    Ok(docker.with_timeout(timeout))
}

/// All hosts of a pool.
pub(super) struct Hosts {
    hosts: Vec<Arc<Host>>,
    quarantine: ExponentialBuilder,
}

impl Hosts {
    pub fn new(
        hosts: Vec<HostSettings>,
        api_timeout: Duration,
        quarantine_min: Duration,
        quarantine_max: Duration,
    ) -> Self {
        Self {
            hosts: hosts
                .into_iter()
                .map(|h| Arc::new(Host::new(h, api_timeout)))
                .collect(),
            quarantine: ExponentialBuilder::default()
                .with_min_delay(quarantine_min)
                .with_max_delay(quarantine_max)
                .with_jitter()
                .without_max_times(),
        }
    }

    pub fn all(&self) -> &[Arc<Host>] {
        &self.hosts
    }

    pub fn by_name(&self, name: &str) -> Option<&Arc<Host>> {
        self.hosts.iter().find(|h| h.name() == name)
    }

    pub fn quarantine(&self, host: &Host, error: &ProviderError) -> Duration {
        host.quarantine(&self.quarantine, error)
    }

    /// Hosts in placement order, emptiest first (config order breaks ties).
    pub fn by_load(&self) -> Vec<Arc<Host>> {
        let mut hosts: Vec<(usize, Arc<Host>)> = self.hosts.iter().cloned().enumerate().collect();
        hosts.sort_by_key(|(i, h)| (h.load(), *i));
        hosts.into_iter().map(|(_, h)| h).collect()
    }

    /// Why no host could take a container.
    pub fn describe(&self, now: Instant) -> String {
        self.hosts
            .iter()
            .map(|h| h.describe(now))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(caps: &[Option<u32>]) -> Hosts {
        let settings = caps
            .iter()
            .enumerate()
            .map(|(i, cap)| HostSettings {
                name: format!("h{i}"),
                endpoint: Endpoint::Http(format!("tcp://127.0.0.1:{}", 1 + i)),
                capacity: *cap,
            })
            .collect();
        Hosts::new(
            settings,
            Duration::from_secs(5),
            Duration::from_secs(1),
            Duration::from_secs(8),
        )
    }

    fn names(hosts: &Hosts) -> Vec<String> {
        hosts
            .by_load()
            .iter()
            .map(|h| h.name().to_owned())
            .collect()
    }

    #[test]
    fn placements_spread_by_fraction_of_capacity() {
        let hosts = hosts(&[Some(2), Some(4)]);
        let now = Instant::now();
        assert_eq!(names(&hosts), ["h0", "h1"]);
        let first = hosts.by_load()[0].clone();
        assert!(first.reserve("w1", now));
        // h0 is half full, h1 empty.
        assert_eq!(names(&hosts), ["h1", "h0"]);
        assert!(hosts.all()[1].reserve("w2", now));
        // 1/2 against 1/4.
        assert_eq!(names(&hosts), ["h1", "h0"]);
        assert!(hosts.all()[0].reserve("w3", now));
        assert!(!hosts.all()[0].reserve("w4", now), "h0 is full");
        assert!(hosts.describe(now).contains("h0: 2/2 containers"));
        hosts.all()[0].release("w1");
        assert!(hosts.all()[0].reserve("w4", now));
    }

    #[test]
    fn unlimited_hosts_spread_by_count() {
        let hosts = hosts(&[None, None]);
        let now = Instant::now();
        for i in 0..4 {
            let host = hosts.by_load()[0].clone();
            assert!(host.reserve(&format!("w{i}"), now));
        }
        assert!(hosts.describe(now).contains("h0: 2/unlimited"));
        assert!(hosts.describe(now).contains("h1: 2/unlimited"));
    }

    #[tokio::test(start_paused = true)]
    async fn quarantine_backs_off_and_lifts() {
        let hosts = hosts(&[None, None]);
        let h0 = hosts.all()[0].clone();
        let err = ProviderError::transient("failed to reach h0");
        let first = hosts.quarantine(&h0, &err);
        assert!(first >= Duration::from_secs(1) && first <= Duration::from_secs(2));
        assert!(!h0.reserve("w1", Instant::now()));
        assert!(hosts.describe(Instant::now()).contains("quarantined"));
        assert!(hosts.all()[1].reserve("w1", Instant::now()));
        let second = hosts.quarantine(&h0, &err);
        assert!(second >= Duration::from_secs(2), "{second:?} grows");
        tokio::time::advance(second + Duration::from_millis(1)).await;
        assert!(h0.reserve("w2", Instant::now()), "quarantine over");
        h0.healthy();
        let again = hosts.quarantine(&h0, &err);
        assert!(
            again <= Duration::from_secs(2),
            "a success resets: {again:?}"
        );
    }
}
