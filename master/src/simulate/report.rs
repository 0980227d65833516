//! What a replay's timeline adds up to: queue waits, instance time by
//! state, launches and cost, per pool and in total; shown as text or JSON.

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use super::run::{Timeline, WorkerSpan};
use crate::cost::Priced;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Which policy ran (`--compare anchors` runs several).
    pub policy: String,
    pub simulated_secs: f64,
    pub builds: usize,
    /// Builds still queued or running when the replay stopped.
    pub unfinished: usize,
    pub pools: Vec<Figures>,
    pub total: Figures,
    /// Caveats, e.g. pools without a price.
    pub notes: Vec<String>,
    /// The trace's jobs (0-based, in file order; a matrix job's builds
    /// share its index) in the order their builds started: what a real
    /// master replaying the trace is compared with.
    pub start_order: Vec<usize>,
}

/// One pool's figures, or every pool's together.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figures {
    pub name: String,
    pub builds: usize,
    /// From submit to the build's first step reaching a worker.
    pub wait_p50_secs: f64,
    pub wait_p95_secs: f64,
    pub wait_max_secs: f64,
    pub launches: u32,
    pub failed_launches: u32,
    /// Instance time running a step, connected without one, and from
    /// launch to hello.
    pub busy_secs: f64,
    pub idle_secs: f64,
    pub booting_secs: f64,
    /// Dollars: every instance-second (booting, idle, busy) at the pool's
    /// price.
    pub cost: f64,
    pub cost_per_build: f64,
}

/// Time by state of one worker, in milliseconds: booting, busy, idle.
fn split(w: &WorkerSpan) -> (u64, u64, u64) {
    let ms = |d: Duration| d.as_millis() as u64;
    let ended = ms(w.ended);
    let connected = w.connected.map_or(ended, |c| ms(c).min(ended));
    let booting = connected.saturating_sub(ms(w.launched));
    let busy: u64 = w
        .busy
        .iter()
        .map(|(a, b)| ms(*b).min(ended).saturating_sub(ms(*a)))
        .sum();
    let idle = ended.saturating_sub(connected).saturating_sub(busy);
    (booting, busy, idle)
}

/// The nearest-rank percentile of sorted values (0 when there are none).
fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn secs(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

/// Rounded to the cent's hundredth, so reports compare exactly.
fn dollars(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

fn figures(name: &str, t: &Timeline, pools: &[usize], prices: &[Option<Priced>]) -> Figures {
    let in_pool = |p: usize| pools.contains(&p);
    let mut waits: Vec<u64> = t
        .builds
        .iter()
        .filter_map(|b| {
            let (p, at) = b.started?;
            in_pool(p).then(|| at.saturating_sub(b.submitted).as_millis() as u64)
        })
        .collect();
    waits.sort_unstable();
    let (mut booting, mut busy, mut idle, mut cost) = (0u64, 0u64, 0u64, 0.0);
    let mut launches = 0u32;
    for w in t.workers.iter().filter(|w| in_pool(w.pool)) {
        let (b, u, i) = split(w);
        booting += b;
        busy += u;
        idle += i;
        launches += 1;
        if let Some(p) = &prices[w.pool] {
            cost += p.dollars(p.billing.billed_millis((b + u + i) as i64));
        }
    }
    let builds = waits.len();
    Figures {
        name: name.to_owned(),
        builds,
        wait_p50_secs: secs(percentile(&waits, 0.50)),
        wait_p95_secs: secs(percentile(&waits, 0.95)),
        wait_max_secs: secs(waits.last().copied().unwrap_or(0)),
        launches,
        failed_launches: pools.iter().map(|&p| t.failed_launches[p]).sum(),
        busy_secs: secs(busy),
        idle_secs: secs(idle),
        booting_secs: secs(booting),
        cost: dollars(cost),
        cost_per_build: if builds == 0 {
            0.0
        } else {
            dollars(cost / builds as f64)
        },
    }
}

/// `prices`: each pool's price per hour and billing rule, `None` where no
/// price is known. A worker costs its billed time (`crate::cost::Billing`).
pub fn report(policy: &str, t: &Timeline, prices: &[Option<Priced>]) -> Report {
    let pools: Vec<Figures> = t
        .pools
        .iter()
        .enumerate()
        .map(|(i, name)| figures(name, t, &[i], prices))
        .collect();
    let all: Vec<usize> = (0..t.pools.len()).collect();
    let notes = t
        .pools
        .iter()
        .zip(prices)
        .filter(|(_, p)| p.is_none())
        .map(|(name, _)| {
            format!("pool {name:?} has no price_per_hour (in the pool or [simulate.pools.{name}]): its cost counts as $0")
        })
        .collect();
    Report {
        policy: policy.to_owned(),
        simulated_secs: secs(t.end.as_millis() as u64),
        builds: t.builds.len(),
        unfinished: t.builds.iter().filter(|b| b.finished.is_none()).count(),
        pools,
        total: figures("total", t, &all, prices),
        notes,
        start_order: {
            let job_of: std::collections::HashMap<_, _> =
                t.builds.iter().map(|b| (b.id, b.job)).collect();
            t.starts
                .iter()
                .filter_map(|(id, _)| job_of.get(id).copied())
                .collect()
        },
    }
}

const HEADER: &str =
    "wait p50  wait p95  wait max  launches  busy h  idle h  boot h      cost  $/build";

fn row(out: &mut String, first: &str, width: usize, f: &Figures) {
    let _ = writeln!(
        out,
        "{first:<width$}  {:>6}  {:>8.1}  {:>8.1}  {:>8.1}  {:>8}  {:>6.1}  {:>6.1}  {:>6.1}  {:>8.2}  {:>7.4}",
        f.builds,
        f.wait_p50_secs,
        f.wait_p95_secs,
        f.wait_max_secs,
        f.launches,
        f.busy_secs / 3600.0,
        f.idle_secs / 3600.0,
        f.booting_secs / 3600.0,
        f.cost,
        f.cost_per_build,
    );
}

/// One policy's report, pool by pool.
pub fn text(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "policy: {}\nsimulated {:.1} h; {} builds ({} unfinished); waits in seconds\n",
        r.policy,
        r.simulated_secs / 3600.0,
        r.builds,
        r.unfinished
    );
    let width = r
        .pools
        .iter()
        .map(|p| p.name.len())
        .max()
        .unwrap_or(4)
        .max(5);
    let _ = writeln!(out, "{:<width$}  builds  {HEADER}", "pool");
    for p in &r.pools {
        row(&mut out, &p.name, width, p);
    }
    if r.pools.len() > 1 {
        row(&mut out, "total", width, &r.total);
    }
    for note in &r.notes {
        let _ = writeln!(out, "note: {note}");
    }
    out
}

/// Several policies' totals in one table.
pub fn compare_text(reports: &[Report]) -> String {
    let mut out = String::new();
    let width = reports.iter().map(|r| r.policy.len()).max().unwrap_or(6);
    if let Some(first) = reports.first() {
        let _ = writeln!(
            out,
            "simulated {:.1} h; {} builds; waits in seconds; all pools together\n",
            first.simulated_secs / 3600.0,
            first.builds
        );
    }
    let _ = writeln!(out, "{:<width$}  builds  {HEADER}", "policy");
    for r in reports {
        row(&mut out, &r.policy, width, &r.total);
    }
    // Every policy runs the same pools, so the same notes.
    for note in reports.first().map_or(&[][..], |r| &r.notes) {
        let _ = writeln!(out, "note: {note}");
    }
    for r in reports.iter().filter(|r| r.unfinished > 0) {
        let _ = writeln!(
            out,
            "note: {}: {} builds unfinished",
            r.policy, r.unfinished
        );
    }
    out
}

#[cfg(test)]
mod tests;
