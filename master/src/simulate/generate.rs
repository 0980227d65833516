//! `burst simulate --generate KIND --seed N`: synthetic week-long traces
//! (Monday 00:00 to Sunday 24:00 UTC), the same for the same seed. The
//! bundled ones in examples/traces/ are made with seed 1.
//!
//! Arrivals are Poisson with a rate that changes by the hour; build times
//! are log-normal, clamped to 1 to 120 minutes; bursts are jobs submitted
//! within a couple of minutes of each other.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::trace::Timed;

const DAY: u64 = 24 * 3600;
const WEEK: u64 = 7 * DAY;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// Weekdays: a morning spike at 9, a lunch lull, and merge-train
    /// bursts in the afternoon; quiet nights and weekends.
    Bursty,
    /// Light days and a heavy nightly batch at 02:00 (big matrices).
    Nightly,
    /// The same rate around the clock, every day.
    Steady,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Bursty => "bursty",
            Kind::Nightly => "nightly",
            Kind::Steady => "steady",
        }
    }
}

struct Gen {
    rng: StdRng,
    jobs: Vec<Timed>,
}

impl Gen {
    /// A standard normal draw (Box–Muller).
    fn normal(&mut self) -> f64 {
        let u1: f64 = self.rng.random::<f64>().max(f64::MIN_POSITIVE);
        let u2: f64 = self.rng.random();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Log-normal minutes around `median`, clamped to 1..=120 minutes.
    fn minutes(&mut self, median: f64, spread: f64) -> Duration {
        let m = (median.ln() + spread * self.normal())
            .exp()
            .clamp(1.0, 120.0);
        Duration::from_secs((m * 60.0).round() as u64)
    }

    /// Arrivals per hour `rate` from `from` for `secs` seconds.
    fn poisson(&mut self, from: u64, secs: u64, rate: f64, job: impl Fn(&mut Self) -> (f64, u32)) {
        if rate <= 0.0 {
            return;
        }
        let mut t = from as f64;
        let end = (from + secs) as f64;
        loop {
            let u: f64 = self.rng.random::<f64>().max(f64::MIN_POSITIVE);
            t += -u.ln() * 3600.0 / rate;
            if t >= end {
                return;
            }
            let (median, matrix) = job(self);
            let duration = self.minutes(median, 0.5);
            self.push(t as u64, duration, matrix);
        }
    }

    fn push(&mut self, at: u64, duration: Duration, matrix: u32) {
        self.jobs.push(Timed {
            line: 0,
            at: Duration::from_secs(at),
            labels: vec!["linux".into()],
            duration,
            matrix,
        });
    }

    /// Mostly single builds, some small matrices.
    fn everyday(&mut self) -> (f64, u32) {
        let matrix = if self.rng.random::<f64>() < 0.15 {
            3
        } else {
            1
        };
        (8.0, matrix)
    }
}

/// The trace of `kind` for `seed`, sorted by submit time.
pub fn generate(kind: Kind, seed: u64) -> Vec<Timed> {
    let mut g = Gen {
        rng: StdRng::seed_from_u64(seed),
        jobs: Vec::new(),
    };
    for day in 0..7 {
        let d = day * DAY;
        let weekday = day < 5;
        let h = |hour: f64| d + (hour * 3600.0) as u64;
        match kind {
            Kind::Steady => g.poisson(d, DAY, 12.0, Gen::everyday),
            Kind::Nightly => {
                let day_rate = if weekday { 6.0 } else { 1.0 };
                g.poisson(h(0.0), 2 * 3600, 0.5, Gen::everyday);
                g.poisson(h(8.0), 10 * 3600, day_rate, Gen::everyday);
                g.poisson(h(18.0), 6 * 3600, 1.0, Gen::everyday);
                // The nightly batch: 30 to 50 jobs in five minutes.
                let n = g.rng.random_range(30..=50);
                for _ in 0..n {
                    let at = h(2.0) + g.rng.random_range(0..300);
                    let matrix = g.rng.random_range(2..=6);
                    let duration = g.minutes(25.0, 0.4);
                    g.push(at, duration, matrix);
                }
                g.poisson(h(2.0) + 300, 6 * 3600 - 300, 0.5, Gen::everyday);
            }
            Kind::Bursty if !weekday => g.poisson(d, DAY, 1.0, Gen::everyday),
            Kind::Bursty => {
                g.poisson(h(0.0), 8 * 3600, 0.5, Gen::everyday);
                g.poisson(h(8.0), 3600, 10.0, Gen::everyday);
                // The morning spike: everyone pushes what they did last night.
                g.poisson(h(9.0), 5400, 60.0, Gen::everyday);
                g.poisson(h(10.5), 5400, 20.0, Gen::everyday);
                g.poisson(h(12.0), 5400, 3.0, Gen::everyday);
                g.poisson(h(13.5), 4 * 3600, 18.0, Gen::everyday);
                g.poisson(h(17.5), 23_400, 3.0, Gen::everyday);
                // Merge trains: three to five in the afternoon, each 8 to 16
                // jobs (matrix 2 to 4) in two minutes.
                for _ in 0..g.rng.random_range(3..=5) {
                    let start = h(13.5) + g.rng.random_range(0..4 * 3600);
                    for _ in 0..g.rng.random_range(8..=16) {
                        let at = start + g.rng.random_range(0..120);
                        let matrix = g.rng.random_range(2..=4);
                        let duration = g.minutes(12.0, 0.4);
                        g.push(at, duration, matrix);
                    }
                }
            }
        }
    }
    g.jobs.retain(|j| j.at.as_secs() < WEEK);
    g.jobs.sort_by_key(|j| j.at);
    g.jobs
}

/// The length of a generated trace.
pub const TRACE_SPAN: Duration = Duration::from_secs(WEEK);

#[cfg(test)]
mod tests;
