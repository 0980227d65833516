//! The Docker hosts of a pool: their clients, their capacity, and the
//! quarantine that keeps launches away from a failing host while it recovers.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bollard::query_parameters::InspectNetworkOptions;
use bollard::{Docker, API_DEFAULT_VERSION};
use burst_common::backoff::Backoff;
use burst_common::error_chain::Chain;
use burst_common::host_slots::HostSlots;
use tokio::sync::OnceCell;
use tokio::time::Instant;

use super::errors;
use super::settings::{Endpoint, HostSettings};
use super::url;
use crate::host_choice::{SharedSlots, SlotHost, Words};
use crate::ProviderError;

/// How launch errors speak of Docker hosts.
pub(super) const WORDS: Words = Words {
    kind: "docker",
    unit: "containers",
    resting: "quarantined",
};

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
    /// Its containers (for the capacity) and its quarantine.
    slots: SharedSlots,
}

impl Host {
    pub fn new(settings: HostSettings, api_timeout: Duration, quarantine: Backoff) -> Self {
        let capacity = settings.capacity.map(|c| c as usize);
        Self {
            settings,
            api_timeout,
            client: OnceCell::new(),
            gateway: OnceCell::new(),
            image_lock: tokio::sync::Mutex::new(None),
            slots: SharedSlots::new(HostSlots::new(capacity, quarantine)),
        }
    }

    pub fn name(&self) -> &str {
        &self.settings.name
    }

    /// The API client, connected on first use.
    pub async fn client(&self) -> Result<&Docker, ProviderError> {
        self.client
            .get_or_try_init(|| async {
                let docker = connect(&self.settings.endpoint, self.api_timeout)
                    .map_err(|e| errors::provider_error("connect", self.name(), e))?;
                // Older engines refuse a client that speaks a newer API.
                docker
                    .negotiate_version()
                    .await
                    .map_err(|e| errors::provider_error("reach the engine", self.name(), e))
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
                            e,
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
}

impl Host {
    /// A failure that says the host itself is in trouble: keep launches
    /// away from it for the next backoff delay. Returns the delay.
    pub fn quarantine(&self, error: &ProviderError) -> Duration {
        let delay = self.slots.lock().quarantine(
            Instant::now(),
            error.message.clone(),
            error.is_permanent(),
        );
        tracing::warn!(host = self.name(), ?delay, error = %Chain(error), "docker host quarantined");
        delay
    }
}

impl SlotHost for Host {
    fn name(&self) -> &str {
        Host::name(self)
    }
    fn slots(&self) -> &SharedSlots {
        &self.slots
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
                .map(|h| {
                    let quarantine = Backoff::new(quarantine_min, quarantine_max);
                    Arc::new(Host::new(h, api_timeout, quarantine))
                })
                .collect(),
        }
    }

    pub fn all(&self) -> &[Arc<Host>] {
        &self.hosts
    }

    pub fn by_name(&self, name: &str) -> Option<&Arc<Host>> {
        self.hosts.iter().find(|h| h.name() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host_choice::{candidates, describe};

    fn hosts(caps: &[Option<u32>]) -> Hosts {
        let settings = caps
            .iter()
            .enumerate()
            .map(|(i, cap)| HostSettings {
                name: format!("h{i}"),
                endpoint: Endpoint::Http(format!("tcp://127.0.0.1:{}", 1 + i)),
                capacity: *cap,
                price_per_hour: None,
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
        candidates(hosts.all(), Instant::now())
            .into_iter()
            .map(|i| hosts.all()[i].name().to_owned())
            .collect()
    }

    fn reserve(host: &Host, worker_id: &str, now: Instant) -> bool {
        host.slots.lock().reserve(worker_id, now)
    }

    #[test]
    fn placements_spread_by_fraction_of_capacity() {
        let hosts = hosts(&[Some(2), Some(4)]);
        let now = Instant::now();
        assert_eq!(names(&hosts), ["h0", "h1"]);
        let first = hosts.all()[candidates(hosts.all(), now)[0]].clone();
        assert!(reserve(&first, "w1", now));
        // h0 is half full, h1 empty.
        assert_eq!(names(&hosts), ["h1", "h0"]);
        assert!(reserve(&hosts.all()[1], "w2", now));
        // 1/2 against 1/4.
        assert_eq!(names(&hosts), ["h1", "h0"]);
        assert!(reserve(&hosts.all()[0], "w3", now));
        assert!(!reserve(&hosts.all()[0], "w4", now), "h0 is full");
        assert!(describe(hosts.all(), &WORDS, now).contains("h0: 2/2 containers"));
        hosts.all()[0].slots.lock().release("w1");
        assert!(reserve(&hosts.all()[0], "w4", now));
    }

    #[test]
    fn unlimited_hosts_spread_by_count() {
        let hosts = hosts(&[None, None]);
        let now = Instant::now();
        for i in 0..4 {
            let host = hosts.all()[candidates(hosts.all(), now)[0]].clone();
            assert!(reserve(&host, &format!("w{i}"), now));
        }
        assert!(describe(hosts.all(), &WORDS, now).contains("h0: 2/unlimited"));
        assert!(describe(hosts.all(), &WORDS, now).contains("h1: 2/unlimited"));
    }

    #[tokio::test(start_paused = true)]
    async fn quarantine_backs_off_and_lifts() {
        let hosts = hosts(&[None, None]);
        let h0 = hosts.all()[0].clone();
        let err = ProviderError::transient("failed to reach h0");
        let first = h0.quarantine(&err);
        assert!(first >= Duration::from_secs(1) && first <= Duration::from_secs(2));
        assert!(!reserve(&h0, "w1", Instant::now()));
        assert!(describe(hosts.all(), &WORDS, Instant::now()).contains("quarantined"));
        assert!(reserve(&hosts.all()[1], "w1", Instant::now()));
        let second = h0.quarantine(&err);
        assert!(second >= Duration::from_secs(2), "{second:?} grows");
        tokio::time::advance(second + Duration::from_millis(1)).await;
        assert!(reserve(&h0, "w2", Instant::now()), "quarantine over");
        h0.slots.lock().healthy();
        let again = h0.quarantine(&err);
        assert!(
            again <= Duration::from_secs(2),
            "a success resets: {again:?}"
        );
    }
}
