//! Warm periods and demand-driven spares: the `min_idle` and `max_workers`
//! a pool has at a given wall-clock time. Pure, so `decide` stays pure; the
//! wall clock comes from [`WallClock`], which tests pin to a date.

use chrono::{DateTime, Duration as ChronoDuration, Timelike, Utc};
use tokio::time::Instant;

use crate::config::{PoolConfig, WarmPeriod};

/// Maps the scheduler's monotonic instants to wall-clock time, which cron
/// periods are written in.
#[derive(Debug, Clone, Copy)]
pub enum WallClock {
    /// The system clock, read afresh each time (it may be stepped).
    System,
    /// `utc` at `instant`, moving with the (possibly paused) tokio clock.
    Pinned {
        instant: Instant,
        utc: DateTime<Utc>,
    },
}

impl WallClock {
    /// A clock that reads `utc` now and moves with tokio's time.
    pub fn pinned(utc: DateTime<Utc>) -> Self {
        Self::Pinned {
            instant: Instant::now(),
            utc,
        }
    }

    /// `now` in epoch milliseconds, as the ledger records times.
    pub fn millis(&self, now: Instant) -> crate::model::Millis {
        self.at(now).timestamp_millis()
    }

    pub fn at(&self, now: Instant) -> DateTime<Utc> {
        match *self {
            Self::System => {
                let behind = Instant::now().saturating_duration_since(now);
                Utc::now() - chrono_duration(behind)
            }
            Self::Pinned { instant, utc } => {
                if now >= instant {
                    utc + chrono_duration(now - instant)
                } else {
                    utc - chrono_duration(instant - now)
                }
            }
        }
    }
}

fn chrono_duration(d: std::time::Duration) -> ChronoDuration {
    ChronoDuration::from_std(d).unwrap_or(ChronoDuration::MAX)
}

/// What a pool keeps at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WarmTarget {
    pub min_idle: u32,
    pub max_workers: u32,
    /// The index of the `schedule` entry in force, if any.
    pub period: Option<usize>,
}

/// Whether `t` (floored to its minute) falls in the entry, or falls
/// `warmup` before it.
fn in_force(w: &WarmPeriod, t: DateTime<Utc>) -> bool {
    matches(w, t) || (!w.warmup.is_zero() && matches(w, t + chrono_duration(w.warmup)))
}

fn matches(w: &WarmPeriod, t: DateTime<Utc>) -> bool {
    let Ok(tz) = w.timezone else { return false };
    let Some(minute) = t.with_second(0).and_then(|t| t.with_nanosecond(0)) else {
        return false;
    };
    let local = minute.with_timezone(&tz);
    w.periods.iter().any(|p| {
        p.cron
            .as_ref()
            .is_ok_and(|c| c.is_time_matching(&local).unwrap_or(false))
    })
}

/// The pool's target at `t` with `busy` workers busy: the last schedule
/// entry in force (else the pool's own values), then `idle_scale_factor`
/// spares on top, never above `max_workers`.
pub fn target(cfg: &PoolConfig, t: DateTime<Utc>, busy: u32) -> WarmTarget {
    let max = cfg.max_workers.get();
    let period = cfg.schedule.iter().rposition(|w| in_force(w, t));
    let (min_idle, max_workers) = match period {
        Some(i) => {
            let w = &cfg.schedule[i];
            (w.min_idle, w.max_workers.unwrap_or(max))
        }
        None => (cfg.min_idle, max),
    };
    let scaled = if cfg.idle_scale_factor > 0.0 {
        let limit = cfg.idle_scale_limit.unwrap_or(max);
        ((cfg.idle_scale_factor * f64::from(busy)).ceil() as u32).min(limit)
    } else {
        0
    };
    WarmTarget {
        min_idle: min_idle.max(scaled).min(max_workers),
        max_workers,
        period,
    }
}

/// When a pool with a schedule must be looked at again: the next minute
/// boundary, where a period (or its warm-up) can begin or end.
pub fn next_change(cfg: &PoolConfig, now: Instant, wall: DateTime<Utc>) -> Option<Instant> {
    if cfg.schedule.is_empty() {
        return None;
    }
    let into_minute = u64::from(wall.second()) * 1_000 + u64::from(wall.timestamp_subsec_millis());
    Some(now + std::time::Duration::from_millis(60_000 - into_minute.min(59_999)))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::config::{Pattern, WarmPeriod};
    use burst_providers::local::LocalPoolConfig;
    use burst_providers::ProviderSection;

    fn period(pattern: &str, tz: chrono_tz::Tz, min_idle: u32, warmup_min: u64) -> WarmPeriod {
        WarmPeriod {
            periods: vec![Pattern::new(pattern)],
            timezone: Ok(tz),
            min_idle,
            max_workers: None,
            warmup: std::time::Duration::from_secs(60 * warmup_min),
        }
    }

    fn cfg(schedule: Vec<WarmPeriod>) -> PoolConfig {
        let mut cfg = PoolConfig::new(ProviderSection::new(LocalPoolConfig::default()));
        cfg.max_workers = 10.into();
        cfg.min_idle = 1;
        cfg.schedule = schedule;
        cfg
    }

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    #[test]
    fn the_last_entry_in_force_wins_and_outside_all_the_pool_values_apply() {
        let c = cfg(vec![
            period("* 8-17 * * mon-fri", chrono_tz::UTC, 3, 0),
            period("* 12 * * mon-fri", chrono_tz::UTC, 0, 0),
        ]);
        // Tuesday 2026-12-01.
        assert_eq!(target(&c, utc(2026, 12, 1, 9, 30), 0).min_idle, 3);
        assert_eq!(target(&c, utc(2026, 12, 1, 12, 10), 0).min_idle, 0);
        assert_eq!(target(&c, utc(2026, 12, 1, 12, 10), 0).period, Some(1));
        assert_eq!(target(&c, utc(2026, 12, 1, 18, 0), 0).min_idle, 1);
        assert_eq!(target(&c, utc(2026, 12, 1, 18, 0), 0).period, None);
        // Saturday.
        assert_eq!(target(&c, utc(2026, 12, 5, 9, 30), 0).min_idle, 1);
    }

    #[test]
    fn warmup_starts_a_period_early_and_ends_it_on_time() {
        let c = cfg(vec![period("* 8-17 * * *", chrono_tz::UTC, 4, 5)]);
        assert_eq!(target(&c, utc(2026, 12, 1, 7, 54), 0).min_idle, 1);
        assert_eq!(target(&c, utc(2026, 12, 1, 7, 55), 0).min_idle, 4);
        assert_eq!(target(&c, utc(2026, 12, 1, 17, 59), 0).min_idle, 4);
        assert_eq!(target(&c, utc(2026, 12, 1, 18, 0), 0).min_idle, 1);
    }

    #[test]
    fn periods_follow_the_zones_wall_clock_across_daylight_saving() {
        // 08:00 in Berlin is 07:00 UTC in winter and 06:00 UTC in summer;
        // the clocks went forward on 2026-03-29.
        let c = cfg(vec![period(
            "* 8-17 * * *",
            chrono_tz::Europe::Berlin,
            2,
            0,
        )]);
        assert_eq!(target(&c, utc(2026, 3, 28, 6, 30), 0).min_idle, 1);
        assert_eq!(target(&c, utc(2026, 3, 28, 7, 0), 0).min_idle, 2);
        assert_eq!(target(&c, utc(2026, 3, 29, 6, 0), 0).min_idle, 2);
        assert_eq!(target(&c, utc(2026, 3, 29, 5, 59), 0).min_idle, 1);
    }

    #[test]
    fn idle_scale_factor_adds_spares_for_busy_workers_within_its_limit() {
        let mut c = cfg(Vec::new());
        c.idle_scale_factor = 0.5;
        c.idle_scale_limit = Some(3);
        assert_eq!(target(&c, utc(2026, 12, 1, 9, 0), 0).min_idle, 1);
        assert_eq!(target(&c, utc(2026, 12, 1, 9, 0), 3).min_idle, 2);
        assert_eq!(target(&c, utc(2026, 12, 1, 9, 0), 20).min_idle, 3);
    }

    #[test]
    fn a_periods_max_workers_caps_its_spares() {
        let mut w = period("* * * * *", chrono_tz::UTC, 8, 0);
        w.max_workers = Some(5);
        let t = target(&cfg(vec![w]), utc(2026, 12, 1, 9, 0), 0);
        assert_eq!((t.min_idle, t.max_workers), (5, 5));
    }

    #[tokio::test(start_paused = true)]
    async fn a_pinned_clock_moves_with_tokio_time() {
        let clock = WallClock::pinned(utc(2026, 12, 1, 9, 0));
        let start = Instant::now();
        tokio::time::advance(std::time::Duration::from_secs(90)).await;
        assert_eq!(
            clock.at(Instant::now()),
            utc(2026, 12, 1, 9, 1) + ChronoDuration::seconds(30)
        );
        assert_eq!(clock.at(start), utc(2026, 12, 1, 9, 0));
        let c = cfg(vec![period("* * * * *", chrono_tz::UTC, 1, 0)]);
        let next = next_change(&c, Instant::now(), clock.at(Instant::now())).unwrap();
        assert_eq!(next - Instant::now(), std::time::Duration::from_secs(30));
    }
}
