//! From a config file and a trace to replays: places the trace on the
//! clock, derives each policy's pools, runs them and reports.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};

use super::anchors::Policy;
use super::error::SimError;
use super::report::{report, Report};
use super::run::{replay, Setup, Timeline};
use super::trace::Trace;
use crate::config::Config;
use crate::cost::Priced;

/// Monday 2026-11-30 00:00 UTC: where a trace in seconds starts unless
/// `[simulate] start` says otherwise.
pub fn default_start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 30, 0, 0, 0)
        .single()
        .unwrap_or(DateTime::UNIX_EPOCH)
}

#[derive(Debug, Clone)]
pub struct Options {
    pub seed: u64,
    /// Unset: the trace's last submit rounded up to a whole day.
    pub horizon: Option<Duration>,
}

/// A policy's replay and its figures.
pub struct Outcome {
    pub report: Report,
    pub timeline: Timeline,
}

/// The setup of `policy` on `trace` (read from `path`, for messages).
pub fn setup(
    config: &Config,
    trace: &Trace,
    path: &Path,
    policy: &Policy,
    opts: &Options,
) -> Result<Setup, SimError> {
    // RFC 3339 traces start at midnight UTC of their first day.
    let start = config.simulate.start.map(|s| s.0).unwrap_or_else(|| {
        trace
            .first_time()
            .and_then(|t| t.date_naive().and_hms_opt(0, 0, 0))
            .map_or_else(default_start, |t| t.and_utc())
    });
    let jobs = trace.timed(start, path)?;
    const DAY: u64 = 24 * 3600;
    let last = jobs.last().map_or(0, |j| j.at.as_secs());
    let horizon = opts
        .horizon
        .unwrap_or(Duration::from_secs((last / DAY + 1) * DAY));
    Ok(Setup {
        pools: config
            .pools
            .iter()
            .map(|(name, pool)| (name.clone(), policy.apply(pool)))
            .collect(),
        sim: config.simulate.pools.clone(),
        start,
        jobs,
        horizon,
        seed: opts.seed,
    })
}

/// Replays `trace` under each policy, in order.
pub fn run(
    config: &Config,
    trace: &Trace,
    path: &Path,
    policies: &[Policy],
    opts: &Options,
) -> Result<Vec<Outcome>, SimError> {
    // A simulated provider's price, else the pool's own, billed by the
    // pool's rule (EC2: 60 s minimum), as the master bills its workers.
    let prices: Vec<Option<Priced>> = config
        .pools
        .iter()
        .map(|(name, pool)| {
            let price = config
                .simulate
                .pools
                .get(name)
                .and_then(|p| p.price_per_hour)
                .or(pool.price_per_hour)?;
            Some(Priced {
                price_per_hour: price,
                billing: pool.billing_rule(),
            })
        })
        .collect();
    policies
        .iter()
        .map(|policy| {
            let timeline = replay(&setup(config, trace, path, policy, opts)?)?;
            Ok(Outcome {
                report: report(&policy.name(), &timeline, &prices),
                timeline,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests;
