use std::sync::Arc;
use std::time::Duration;

use burst_common::backoff::Backoff;
use burst_providers::{Provider, ProviderError};
use tokio::time::Instant;

use crate::config::PoolConfig;

/// The prefix of the label every pool carries with its own name.
pub const POOL_LABEL: &str = "burst:pool=";

/// One pool: its settings, its provider, and its launch backoff.
pub struct Pool {
    pub name: String,
    pub cfg: PoolConfig,
    pub provider: Arc<dyn Provider>,
    /// Jittered exponential from `backoff_min` up to `backoff_max`.
    backoff: Backoff,
    /// No launch before this instant.
    pub retry_at: Option<Instant>,
    /// Why the last launch failed, for the status of waiting builds.
    pub last_error: Option<String>,
    /// The delay chosen after the last failure (a fixed figure, so a
    /// waiting build's status does not change every second).
    pub last_delay: Duration,
    /// Set by a permanent error: builds only this pool serves fail instead
    /// of waiting for a launch that cannot succeed.
    pub permanent_error: Option<String>,
    /// Not in the config: kept only for the workers of a previous run that
    /// come back to finish their build (see `retired.rs`). Serves nothing,
    /// launches nothing.
    pub retired: bool,
    /// Retired at start, with the stand-in provider of `retired.rs` (no
    /// provider call can reach its workers: they are told to drain and
    /// exit). A pool a reload removed keeps its real provider.
    pub stand_in: bool,
}

impl Pool {
    pub fn new(name: String, cfg: PoolConfig, provider: Arc<dyn Provider>) -> Self {
        Self {
            name,
            backoff: Backoff::new(cfg.backoff_min.get(), cfg.backoff_max),
            cfg,
            provider,
            retry_at: None,
            last_error: None,
            last_delay: Duration::ZERO,
            permanent_error: None,
            retired: false,
            stand_in: false,
        }
    }

    /// A worker of this pool can run a build that needs `labels`. Every
    /// pool also carries `burst:pool=<its name>` (runner builds name their
    /// pool so).
    pub fn serves(&self, labels: &[String]) -> bool {
        !self.retired
            && labels.iter().all(|l| {
                self.cfg.labels.contains(l)
                    || l.strip_prefix(POOL_LABEL) == Some(self.name.as_str())
            })
    }

    pub fn backing_off(&self, now: Instant) -> bool {
        self.retry_at.is_some_and(|t| t > now)
    }

    /// Starts or extends the backoff: jittered exponential up to
    /// `backoff_max`; a permanent error waits the maximum at once.
    pub fn record_failure(&mut self, err: &ProviderError, now: Instant) -> Duration {
        let delay = if err.is_permanent() {
            self.permanent_error = Some(err.to_string());
            self.backoff.max()
        } else {
            self.backoff.next_delay()
        };
        self.retry_at = Some(now + delay);
        self.last_error = Some(err.to_string());
        self.last_delay = delay;
        delay
    }

    /// Draws the backoff's jitter from `seed` (see `Scheduler::with_seed`).
    pub fn seed_backoff(&mut self, seed: u64) {
        self.backoff = Backoff::seeded(self.cfg.backoff_min.get(), self.cfg.backoff_max, seed);
    }

    /// A reload gave the pool new settings: they apply to its workers
    /// from now on, and a backoff or permanent error of the old settings
    /// is forgotten (the new ones may fix it).
    pub fn reconfigure(&mut self, cfg: PoolConfig) {
        if cfg != self.cfg || self.retired {
            self.backoff = Backoff::new(cfg.backoff_min.get(), cfg.backoff_max);
            self.retry_at = None;
            self.last_error = None;
            self.permanent_error = None;
        }
        self.cfg = cfg;
        self.retired = false;
        self.stand_in = false;
    }

    /// A worker connected: the pool is healthy again.
    pub fn record_success(&mut self) {
        self.backoff.reset();
        self.retry_at = None;
        self.last_error = None;
        self.permanent_error = None;
    }
}
