//! The gauges taken from the scheduler's state at scrape time: nothing is
//! incremented and decremented, so nothing can drift.

use std::sync::{Mutex, MutexGuard};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;

use super::labels::{BudgetLabels, HostLabels, PoolLabels, WorkerStateLabels};

/// What the scheduler reports of its pools at one instant.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fleet {
    pub pools: Vec<PoolFleet>,
    /// Every configured budget against its spend.
    pub budgets: Vec<BudgetFleet>,
}

/// One budget (`global` or a pool's) in one window.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BudgetFleet {
    pub budget: String,
    pub period: &'static str,
    pub spent: f64,
    pub limit: f64,
    /// 0 under the warning share, 1 at or over it, 2 reached.
    pub level: u8,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct PoolFleet {
    pub pool: String,
    /// Workers per state, every state listed (zeros included).
    pub workers: Vec<(&'static str, u64)>,
    /// Queued builds this pool would serve (the first pool by name whose
    /// labels cover the build's, as the scheduler picks).
    pub queued: u64,
    /// Workers with an open session.
    pub sessions: u64,
    /// How long the pool's launch backoff still lasts (0: none).
    pub backoff_seconds: f64,
    /// Estimated dollars accrued by the pool's workers, gone and live.
    pub cost_dollars: f64,
    /// The hourly price of the pool's workers in flight now.
    pub spend_rate: f64,
    pub hosts: Vec<HostFleet>,
}

/// One host of a multi-host provider (Docker engines, SSH machines).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostFleet {
    pub host: String,
    /// How long the host's quarantine still lasts (0: none).
    pub backoff_seconds: f64,
}

#[derive(Debug, Default)]
pub(super) struct FleetCollector(Mutex<Fleet>);

impl FleetCollector {
    pub fn lock(&self) -> MutexGuard<'_, Fleet> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Collector for FleetCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let fleet = self.lock();
        let pools = &fleet.pools;
        let pool = |p: &PoolFleet| PoolLabels {
            pool: p.pool.clone(),
        };
        {
            let mut e = encoder.encode_descriptor(
                "workers",
                "Workers the scheduler holds, by pool and state.",
                None,
                MetricType::Gauge,
            )?;
            for p in pools {
                for (state, n) in &p.workers {
                    let labels = WorkerStateLabels {
                        pool: p.pool.clone(),
                        state,
                    };
                    ConstGauge::new(*n as i64).encode(e.encode_family(&labels)?)?;
                }
            }
        }
        gauge(
            &mut encoder,
            "builds_queued",
            "Queued builds, by the pool that would serve them.",
            pools.iter().map(|p| (pool(p), p.queued as f64)),
        )?;
        gauge(
            &mut encoder,
            "sessions_connected",
            "Worker sessions open now.",
            pools.iter().map(|p| (pool(p), p.sessions as f64)),
        )?;
        gauge(
            &mut encoder,
            "pool_backoff_seconds",
            "How long the pool's launch backoff still lasts (0: launching freely).",
            pools.iter().map(|p| (pool(p), p.backoff_seconds)),
        )?;
        {
            let mut e = encoder.encode_descriptor(
                "host_backoff_seconds",
                "How long a host's quarantine after failures still lasts (0: none).",
                None,
                MetricType::Gauge,
            )?;
            for p in pools {
                for h in &p.hosts {
                    let labels = HostLabels {
                        pool: p.pool.clone(),
                        host: h.host.clone(),
                    };
                    ConstGauge::new(h.backoff_seconds).encode(e.encode_family(&labels)?)?;
                }
            }
        }
        gauge(
            &mut encoder,
            "pool_spend_rate_dollars_per_hour",
            "The hourly price of the pool's workers in flight (what max_spend_rate caps).",
            pools.iter().map(|p| (pool(p), p.spend_rate)),
        )?;
        let budgets = &fleet.budgets;
        let budget = |b: &BudgetFleet| BudgetLabels {
            budget: b.budget.clone(),
            period: b.period,
        };
        for (name, help, value) in [
            (
                "budget_spent_dollars",
                "Spent in the budget's window so far (live workers at least at their billing minimum), in [budget] currency.",
                (|b: &BudgetFleet| b.spent) as fn(&BudgetFleet) -> f64,
            ),
            (
                "budget_limit_dollars",
                "The budget's limit, in [budget] currency.",
                |b: &BudgetFleet| b.limit,
            ),
        ] {
            let mut e = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for b in budgets {
                ConstGauge::new(value(b)).encode(e.encode_family(&budget(b))?)?;
            }
        }
        {
            let mut e = encoder.encode_descriptor(
                "budget_level",
                "0 under the warning share, 1 at or over it (warn_at), 2 reached: no new workers.",
                None,
                MetricType::Gauge,
            )?;
            for b in budgets {
                ConstGauge::new(i64::from(b.level)).encode(e.encode_family(&budget(b))?)?;
            }
        }
        let mut e = encoder.encode_descriptor(
            "cost_estimated_dollars",
            "Estimated cost of the pool's workers (hourly price from the ledger times lifetime).",
            None,
            MetricType::Counter,
        )?;
        for p in pools {
            ConstCounter::new(p.cost_dollars).encode(e.encode_family(&pool(p))?)?;
        }
        Ok(())
    }
}

fn gauge(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    values: impl Iterator<Item = (PoolLabels, f64)>,
) -> Result<(), std::fmt::Error> {
    let mut e = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, v) in values {
        ConstGauge::new(v).encode(e.encode_family(&labels)?)?;
    }
    Ok(())
}
