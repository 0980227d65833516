//! Each build's cost: its own run time, plus a fair share of the boot and
//! idle time of the workers that served it.
//!
//! The rule, per worker (one ledger row, billed from launch to terminated by
//! its recorded price and billing rule, see `billing.rs`):
//! - **run**: each attempt pays for the time it ran on the worker;
//! - **boot** (launch to the worker's first hello) goes to the build of the
//!   worker's first attempt: the one it was launched for, or the first to
//!   take a spare;
//! - **idle** is everything else the worker was billed for (time between
//!   builds, idle time before teardown, and what the billing minimum or
//!   increment rounds up), split evenly among the attempts it ran;
//! - a worker that ran no attempt (a warm spare that was never used) is
//!   **unattributed**: its whole cost is reported per pool.
//!
//! So the builds' costs plus the pools' unattributed cost add up to what the
//! workers were billed.

use std::collections::{BTreeMap, HashMap};

use super::billing::Priced;
use crate::model::{BuildId, Instance, Millis};

/// One attempt of a build on a worker, as the cost report reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerAttempt {
    pub build: BuildId,
    pub builder: String,
    pub labels: Vec<String>,
    pub worker_id: String,
    pub started_at: Millis,
    /// None while it runs: counted up to `now`.
    pub finished_at: Option<Millis>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BuildCost {
    pub run: f64,
    pub boot: f64,
    pub idle: f64,
}

impl BuildCost {
    pub fn total(&self) -> f64 {
        self.run + self.boot + self.idle
    }

    fn add(&mut self, other: &BuildCost) {
        self.run += other.run;
        self.boot += other.boot;
        self.idle += other.idle;
    }
}

/// What a pool's workers were billed, and how it splits.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PoolCost {
    pub spend: f64,
    pub run: f64,
    pub boot: f64,
    pub idle: f64,
    /// Boot and idle of workers that served no build.
    pub unattributed: f64,
    /// Billed instance time, in hours.
    pub instance_hours: f64,
    pub workers: u32,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Attribution {
    pub builds: BTreeMap<BuildId, BuildCost>,
    pub pools: BTreeMap<String, PoolCost>,
}

/// Splits the billed cost of `instances` over the `attempts` that ran on
/// them. Rows without a recorded price cost nothing and are left out;
/// attempts on workers not among `instances` are ignored.
pub fn attribute(instances: &[Instance], attempts: &[WorkerAttempt], now: Millis) -> Attribution {
    let mut on_worker: HashMap<&str, Vec<&WorkerAttempt>> = HashMap::new();
    for a in attempts {
        on_worker.entry(a.worker_id.as_str()).or_default().push(a);
    }
    let mut out = Attribution::default();
    for row in instances {
        let Some(priced) = Priced::of(row) else {
            continue;
        };
        let (from, to) = priced.billed_span(row, now);
        let pool = out.pools.entry(row.pool.clone()).or_default();
        let spend = priced.dollars(to - from);
        pool.spend += spend;
        pool.instance_hours += (to - from) as f64 / super::billing::MILLIS_PER_HOUR;
        pool.workers += 1;
        let mut ran = on_worker.remove(row.worker_id.as_str()).unwrap_or_default();
        if ran.is_empty() {
            pool.unattributed += spend;
            continue;
        }
        ran.sort_by_key(|a| (a.started_at, a.build));
        // Run time, clipped to the billed span (clocks of a build and of
        // its worker's row may disagree by a little).
        let life_end = row.terminated_at.unwrap_or(now).max(row.launched_at);
        let runs: Vec<f64> = ran
            .iter()
            .map(|a| {
                let start = a.started_at.max(from);
                let end = a.finished_at.unwrap_or(now).min(life_end);
                priced.dollars(end - start)
            })
            .collect();
        let run_total: f64 = runs.iter().sum();
        let boot_end = row
            .connected_at
            .unwrap_or(ran[0].started_at)
            .clamp(row.launched_at, ran[0].started_at.max(row.launched_at));
        let boot = priced
            .dollars(boot_end - row.launched_at)
            .min(spend - run_total)
            .max(0.0);
        let idle = (spend - run_total - boot).max(0.0);
        let idle_share = idle / ran.len() as f64;
        for (i, (a, run)) in ran.iter().zip(runs).enumerate() {
            let share = BuildCost {
                run,
                boot: if i == 0 { boot } else { 0.0 },
                idle: idle_share,
            };
            out.builds.entry(a.build).or_default().add(&share);
        }
        pool.run += run_total;
        pool.boot += boot;
        pool.idle += idle;
    }
    out
}

#[cfg(test)]
mod tests;
