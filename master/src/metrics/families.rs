//! Every metric the master exposes, registered once in one registry (no
//! global state: tests build their own `Metrics`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use super::fleet::{Fleet, FleetCollector};
use super::labels::{
    BuilderLabels, CacheLabels, FinishedLabels, LaunchFailure, LaunchFailureLabels, Operation,
    PoolLabels, PoolProviderLabels, ProviderCallLabels, ProviderErrorLabels, StoreLabels,
};
use crate::model::{Build, Instance, Millis};

/// The `Content-Type` of what [`Metrics::encode`] returns.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// Seconds a build waits in the queue: 0.1 s to about 40 min.
fn queue_wait_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.1, 2.5, 12))
}

/// Seconds a build runs: 1 s to about 16 h.
fn build_duration_buckets() -> Histogram {
    Histogram::new(exponential_buckets(1.0, 2.5, 12))
}

/// Seconds from launch to the worker's hello: 0.1 s to about 14 min.
fn startup_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.1, 2.0, 14))
}

/// Seconds a provider API call takes: 5 ms to about 2 min.
fn provider_call_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.5, 12))
}

/// Seconds a store write takes: 0.5 ms to about 2 s.
fn store_write_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.5, 10))
}

pub struct Metrics {
    registry: Registry,
    fleet: Arc<FleetCollector>,
    /// Held from setting the fleet to encoding it: one scrape at a time.
    scrape: Mutex<()>,
    builds_submitted: Family<BuilderLabels, Counter>,
    builds_finished: Family<FinishedLabels, Counter>,
    queue_wait: Histograms<PoolLabels>,
    build_duration: Histograms<BuilderLabels>,
    worker_startup: Histograms<PoolProviderLabels>,
    launches: Family<PoolProviderLabels, Counter>,
    launch_failures: Family<LaunchFailureLabels, Counter>,
    terminations: Family<PoolProviderLabels, Counter>,
    orphans_reaped: Family<PoolLabels, Counter>,
    provider_calls: Histograms<ProviderCallLabels>,
    provider_errors: Family<ProviderErrorLabels, Counter>,
    log_bytes: Counter,
    artifact_bytes: Counter,
    cache_requests: Family<CacheLabels, Counter>,
    cache_restored: Family<BuilderLabels, Counter>,
    cache_saved: Family<BuilderLabels, Counter>,
    store_writes: Histograms<StoreLabels>,
    store_errors: Family<StoreLabels, Counter>,
    /// Estimated dollars of workers that are gone, by pool; live workers'
    /// share is added at scrape time.
    retired_cost: Mutex<HashMap<String, f64>>,
    /// Sources, polls and reporters (`triggers.rs`).
    pub(super) triggers: super::triggers::TriggerFamilies,
    /// The GitHub runner manager (`github.rs`).
    pub(super) github: super::github::GithubFamilies,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("burst");
        let fleet = Arc::new(FleetCollector::default());
        registry.register_collector(Box::new(fleet.clone()));
        let m = Self {
            registry: Registry::default(),
            fleet,
            scrape: Mutex::new(()),
            builds_submitted: Family::default(),
            builds_finished: Family::default(),
            queue_wait: Family::new_with_constructor(queue_wait_buckets),
            build_duration: Family::new_with_constructor(build_duration_buckets),
            worker_startup: Family::new_with_constructor(startup_buckets),
            launches: Family::default(),
            launch_failures: Family::default(),
            terminations: Family::default(),
            orphans_reaped: Family::default(),
            provider_calls: Family::new_with_constructor(provider_call_buckets),
            provider_errors: Family::default(),
            log_bytes: Counter::default(),
            artifact_bytes: Counter::default(),
            cache_requests: Family::default(),
            cache_restored: Family::default(),
            cache_saved: Family::default(),
            store_writes: Family::new_with_constructor(store_write_buckets),
            store_errors: Family::default(),
            retired_cost: Mutex::new(HashMap::new()),
            triggers: Default::default(),
            github: Default::default(),
        };
        // Counters get `_total` from the encoder, help texts a full stop.
        let r = &mut registry;
        r.register(
            "builds_submitted",
            "Builds queued by a submit (one per matrix cell)",
            m.builds_submitted.clone(),
        );
        r.register(
            "builds_finished",
            "Builds that reached a final state, by that state",
            m.builds_finished.clone(),
        );
        r.register(
            "queue_wait_seconds",
            "Time from a build's submit to its first step's start, by the pool it ran on",
            m.queue_wait.clone(),
        );
        r.register(
            "build_duration_seconds",
            "Time from a build's first start to its end, for builds that started",
            m.build_duration.clone(),
        );
        r.register(
            "worker_startup_seconds",
            "Time from a worker's launch to its first connected session",
            m.worker_startup.clone(),
        );
        r.register(
            "worker_launches",
            "Workers the scheduler asked a provider to launch",
            m.launches.clone(),
        );
        r.register(
            "worker_launch_failures",
            "Launches that failed, or workers that died or timed out before connecting",
            m.launch_failures.clone(),
        );
        r.register(
            "worker_terminations",
            "Workers the provider confirmed terminated",
            m.terminations.clone(),
        );
        r.register(
            "orphans_reaped",
            "Workers of a previous run terminated at startup",
            m.orphans_reaped.clone(),
        );
        r.register(
            "provider_call_seconds",
            "Latency of provider API calls, by operation",
            m.provider_calls.clone(),
        );
        r.register(
            "provider_call_errors",
            "Provider API calls that failed, by operation and kind of error",
            m.provider_errors.clone(),
        );
        r.register(
            "log_received_bytes",
            "Bytes of step output received from workers",
            m.log_bytes.clone(),
        );
        r.register(
            "artifact_received_bytes",
            "Bytes of artifacts received from workers",
            m.artifact_bytes.clone(),
        );
        r.register(
            "cache_requests",
            "Cache restores, by builder and result (hit, partial, miss)",
            m.cache_requests.clone(),
        );
        r.register(
            "cache_restored_bytes",
            "Bytes of cache archives sent to workers, by builder",
            m.cache_restored.clone(),
        );
        r.register(
            "cache_saved_bytes",
            "Bytes of cache archives saved by workers, by builder",
            m.cache_saved.clone(),
        );
        r.register(
            "store_write_seconds",
            "Latency of writes to the store, by operation",
            m.store_writes.clone(),
        );
        r.register(
            "store_write_errors",
            "Writes to the store that failed, by operation",
            m.store_errors.clone(),
        );
        m.triggers.register(r);
        m.github.register(r);
        Self { registry, ..m }
    }

    /// The whole exposition in the Prometheus text format, with `fleet`
    /// (the scheduler's state now) as the gauges.
    pub fn encode(&self, fleet: Fleet) -> String {
        let mut out = String::new();
        // One scrape at a time: the fleet set here is the one encoded.
        let scrape = self.scrape.lock().unwrap_or_else(|p| p.into_inner());
        *self.fleet.lock() = fleet;
        let result = prometheus_text::encode(&mut out, &self.registry);
        drop(scrape);
        if let Err(e) = result {
            // Writing to a String cannot fail; a collector could.
            tracing::error!(error = %e, "failed to encode metrics");
        }
        out
    }

    pub fn build_submitted(&self, builder: &str) {
        self.builds_submitted
            .get_or_create(&BuilderLabels {
                builder: builder.to_owned(),
            })
            .inc();
    }

    /// A build reached a final state (called once per build).
    pub fn build_finished(&self, build: &Build) {
        let Some(result) = super::BuildResult::of(build.state) else {
            return;
        };
        self.builds_finished
            .get_or_create(&FinishedLabels {
                builder: build.builder.clone(),
                result,
            })
            .inc();
        if let (Some(start), Some(end)) = (build.started_at, build.finished_at) {
            self.build_duration
                .get_or_create(&BuilderLabels {
                    builder: build.builder.clone(),
                })
                .observe(seconds_between(start, end));
        }
    }

    /// A build's first attempt starts on a worker of `pool`.
    pub fn build_started(&self, pool: &str, submitted_at: Millis, started_at: Millis) {
        self.queue_wait
            .get_or_create(&pool_labels(pool))
            .observe(seconds_between(submitted_at, started_at));
    }

    pub fn worker_launched(&self, pool: &str, provider: &str) {
        self.launches
            .get_or_create(&pool_provider(pool, provider))
            .inc();
    }

    pub fn launch_failed(&self, pool: &str, provider: &str, reason: LaunchFailure) {
        self.launch_failures
            .get_or_create(&LaunchFailureLabels {
                pool: pool.to_owned(),
                provider: provider.to_owned(),
                reason,
            })
            .inc();
    }

    /// A worker's first session: launch → connected, from its ledger row.
    pub fn worker_connected(&self, row: &Instance) {
        let Some(connected) = row.connected_at else {
            return;
        };
        self.worker_startup
            .get_or_create(&pool_provider(&row.pool, &row.provider))
            .observe(seconds_between(row.launched_at, connected));
    }

    pub fn worker_terminated(&self, pool: &str, provider: &str) {
        self.terminations
            .get_or_create(&pool_provider(pool, provider))
            .inc();
    }

    /// A worker leaves the scheduler: its estimated cost is final.
    pub fn worker_retired(&self, row: &Instance, now: Millis) {
        let cost = accrued_cost(row, now);
        if cost > 0.0 {
            *self.lock_cost().entry(row.pool.clone()).or_default() += cost;
        }
    }

    /// Estimated dollars of `pool`'s workers that are gone.
    pub fn retired_cost(&self, pool: &str) -> f64 {
        self.lock_cost().get(pool).copied().unwrap_or(0.0)
    }

    pub fn orphan_reaped(&self, pool: &str) {
        self.orphans_reaped.get_or_create(&pool_labels(pool)).inc();
    }

    pub fn log_received(&self, bytes: usize) {
        self.log_bytes.inc_by(bytes as u64);
    }

    pub fn artifact_received(&self, bytes: usize) {
        self.artifact_bytes.inc_by(bytes as u64);
    }

    pub fn cache_request(&self, builder: &str, result: &str) {
        self.cache_requests
            .get_or_create(&CacheLabels {
                builder: builder.to_owned(),
                result: result.to_owned(),
            })
            .inc();
    }

    pub fn cache_restored(&self, builder: &str, bytes: u64) {
        let labels = BuilderLabels {
            builder: builder.to_owned(),
        };
        self.cache_restored.get_or_create(&labels).inc_by(bytes);
    }

    pub fn cache_saved(&self, builder: &str, bytes: u64) {
        let labels = BuilderLabels {
            builder: builder.to_owned(),
        };
        self.cache_saved.get_or_create(&labels).inc_by(bytes);
    }

    pub(super) fn provider_call(
        &self,
        pool: &str,
        provider: &str,
        operation: Operation,
        took: Duration,
        error: Option<LaunchFailure>,
    ) {
        self.provider_calls
            .get_or_create(&ProviderCallLabels {
                pool: pool.to_owned(),
                provider: provider.to_owned(),
                operation,
            })
            .observe(took.as_secs_f64());
        if let Some(reason) = error {
            self.provider_errors
                .get_or_create(&ProviderErrorLabels {
                    pool: pool.to_owned(),
                    provider: provider.to_owned(),
                    operation,
                    reason,
                })
                .inc();
        }
    }

    pub(super) fn store_write(&self, operation: &'static str, took: Duration, failed: bool) {
        let labels = StoreLabels { operation };
        self.store_writes
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
        if failed {
            self.store_errors.get_or_create(&labels).inc();
        }
    }

    fn lock_cost(&self) -> MutexGuard<'_, HashMap<String, f64>> {
        self.retired_cost.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A worker's billed cost from launch to termination (or `now`, counted at
/// least at its billing minimum): the hourly price and billing rule its
/// ledger row recorded, if any (`crate::cost::Priced`).
pub fn accrued_cost(row: &Instance, now: Millis) -> f64 {
    crate::cost::Priced::of(row).map_or(0.0, |p| p.cost(row, now))
}

fn seconds_between(from: Millis, to: Millis) -> f64 {
    (to - from).max(0) as f64 / 1000.0
}

fn pool_labels(pool: &str) -> PoolLabels {
    PoolLabels {
        pool: pool.to_owned(),
    }
}

fn pool_provider(pool: &str, provider: &str) -> PoolProviderLabels {
    PoolProviderLabels {
        pool: pool.to_owned(),
        provider: provider.to_owned(),
    }
}
