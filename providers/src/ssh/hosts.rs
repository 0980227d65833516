//! One host's live state: its SSH session, its workers (for capacity), and
//! its backoff. A host that fails backs off alone; the pool's other hosts
//! keep taking builds.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use openssh::Session;
use tokio::time::Instant;

use super::commands::Remote;
use super::settings::HostSettings;
use crate::ProviderError;

pub struct HostState {
    pub cfg: HostSettings,
    pub remote: Remote,
    /// The multiplexed connection; `None` until first use or after it died.
    /// Held while connecting, waking and sleeping, so those never overlap.
    pub session: tokio::sync::Mutex<Option<Arc<Session>>>,
    /// Serializes probe-and-upload, so concurrent launches upload once.
    pub upload_lock: tokio::sync::Mutex<()>,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Workers launched (or being launched) on this host by this provider.
    workers: BTreeSet<String>,
    backoff: Option<ExponentialBackoff>,
    retry_at: Option<Instant>,
    last_error: Option<String>,
    /// The last failure needs a config change (host key, auth).
    last_permanent: bool,
}

impl HostState {
    pub fn new(cfg: HostSettings, remote: Remote) -> Self {
        Self {
            cfg,
            remote,
            session: tokio::sync::Mutex::new(None),
            upload_lock: tokio::sync::Mutex::new(()),
            inner: Mutex::new(Inner::default()),
        }
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        // The state stays consistent even if a holder panicked: every
        // update is a single assignment.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn name(&self) -> &str {
        &self.cfg.name
    }

    /// Workers on this host now, and its capacity.
    pub fn load(&self) -> (usize, usize) {
        (self.inner().workers.len(), self.cfg.max_workers as usize)
    }

    pub fn backing_off(&self, now: Instant) -> Option<(Duration, String)> {
        let inner = self.inner();
        let at = inner.retry_at.filter(|t| *t > now)?;
        Some((at - now, inner.last_error.clone().unwrap_or_default()))
    }

    /// The error this host is backing off after, when only a config change
    /// can fix it.
    pub fn permanent_failure(&self, now: Instant) -> Option<String> {
        let inner = self.inner();
        (inner.last_permanent && inner.retry_at.is_some_and(|t| t > now))
            .then(|| inner.last_error.clone().unwrap_or_default())
    }

    /// Claims a slot for `worker_id` if the host has one and is not backing
    /// off.
    pub fn try_reserve(&self, worker_id: &str, now: Instant) -> bool {
        let mut inner = self.inner();
        if inner.retry_at.is_some_and(|t| t > now)
            || inner.workers.len() >= self.cfg.max_workers as usize
        {
            return false;
        }
        inner.workers.insert(worker_id.to_owned())
    }

    /// A worker found on the host (after a master restart) holds a slot
    /// until it is stopped.
    pub fn adopt(&self, worker_id: &str) {
        self.inner().workers.insert(worker_id.to_owned());
    }

    /// Frees the worker's slot; returns how many remain.
    pub fn release(&self, worker_id: &str) -> usize {
        let mut inner = self.inner();
        inner.workers.remove(worker_id);
        inner.workers.len()
    }

    /// Starts or extends this host's backoff: jittered exponential from
    /// `min` up to `max`; a permanent error (bad host key, refused auth)
    /// waits `max` at once. Returns the delay.
    pub fn record_failure(&self, err: &ProviderError, min: Duration, max: Duration) -> Duration {
        let mut inner = self.inner();
        let delay = if err.is_permanent() {
            max
        } else {
            inner
                .backoff
                .get_or_insert_with(|| {
                    ExponentialBuilder::default()
                        .with_min_delay(min)
                        .with_max_delay(max)
                        .with_jitter()
                        .without_max_times()
                        .build()
                })
                .next()
                .unwrap_or(max)
                .min(max)
        };
        inner.retry_at = Some(Instant::now() + delay);
        inner.last_error = Some(err.to_string());
        inner.last_permanent = err.is_permanent();
        delay
    }

    pub fn record_success(&self) {
        let mut inner = self.inner();
        inner.backoff = None;
        inner.retry_at = None;
        inner.last_error = None;
        inner.last_permanent = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ssh::settings::Platform;

    fn host(max_workers: u32) -> HostState {
        let cfg = HostSettings {
            name: "h".into(),
            address: "h.lan".into(),
            port: 22,
            user: None,
            key_file: None,
            platform: Platform::Linux,
            max_workers,
            install_dir: ".burst/bin".into(),
            state_dir: ".burst".into(),
            wake: vec![],
            sleep: vec![],
            wake_timeout: Duration::from_secs(1),
        };
        let remote = Remote::new(&cfg, "m", "p");
        HostState::new(cfg, remote)
    }

    #[tokio::test]
    async fn capacity_is_per_host() {
        let h = host(2);
        let now = Instant::now();
        assert!(h.try_reserve("a", now));
        assert!(h.try_reserve("b", now));
        assert!(!h.try_reserve("c", now));
        assert_eq!(h.load(), (2, 2));
        assert_eq!(h.release("a"), 1);
        assert!(h.try_reserve("c", now));
    }

    #[tokio::test]
    async fn a_failed_host_backs_off_and_recovers() {
        let h = host(1);
        let (min, max) = (Duration::from_secs(2), Duration::from_secs(60));
        let delay = h.record_failure(&ProviderError::transient("failed to connect"), min, max);
        assert!(delay >= min && delay <= max, "{delay:?}");
        let now = Instant::now();
        assert!(h.backing_off(now).is_some());
        assert!(!h.try_reserve("a", now));
        assert_eq!(h.permanent_failure(Instant::now()), None);
        let delay = h.record_failure(&ProviderError::permanent("bad host key"), min, max);
        assert_eq!(delay, max);
        assert_eq!(
            h.permanent_failure(Instant::now()).as_deref(),
            Some("bad host key")
        );
        h.record_success();
        assert!(h.backing_off(Instant::now()).is_none());
        assert!(h.try_reserve("a", Instant::now()));
    }
}
