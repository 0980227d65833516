//! Warm periods (`[[pools.NAME.schedule]]`) on virtual time: spares come
//! `warmup` ahead of a period, follow the zone's wall clock across daylight
//! saving, and go when it ends, busy workers excepted.

use std::time::Duration;

use burst_master::config::{Pattern, WarmPeriod};
use chrono::{DateTime, TimeZone, Utc};
use tokio::time::Instant;

use crate::harness::*;

fn period(pattern: &str, tz: chrono_tz::Tz, min_idle: u32, warmup: Duration) -> WarmPeriod {
    WarmPeriod {
        periods: vec![Pattern::new(pattern)],
        timezone: Ok(tz),
        min_idle,
        max_workers: None,
        warmup,
    }
}

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
}

/// The harness's wall clock, read off the tokio clock it moves with.
struct Clock {
    instant: Instant,
    utc: DateTime<Utc>,
}

impl Clock {
    fn new(utc: DateTime<Utc>) -> Self {
        Self {
            instant: Instant::now(),
            utc,
        }
    }

    /// Sleeps (virtually) until the wall clock reads `t`.
    async fn until(&self, t: DateTime<Utc>) {
        let at = self.instant + (t - self.utc).to_std().expect("a time after the start");
        tokio::time::sleep_until(at).await;
    }
}

async fn idle_count(h: &Harness) -> usize {
    h.workers()
        .await
        .iter()
        .filter(|w| w.state == "idle")
        .count()
}

#[tokio::test(start_paused = true)]
async fn a_warm_period_launches_its_spares_ahead_and_they_go_when_it_ends() {
    let mut cfg = pool(4);
    cfg.schedule = vec![period(
        "* 9-17 * * *",
        chrono_tz::UTC,
        2,
        Duration::from_secs(300),
    )];
    let start = utc(2026, 12, 1, 8, 50, 0);
    let h = Harness::start_at(cfg, FakeProvider::new(Duration::from_secs(1)), start).await;
    let clock = Clock::new(start);
    clock.until(utc(2026, 12, 1, 8, 54, 50)).await;
    assert!(h.workers().await.is_empty(), "no spares before the warm-up");
    assert!(h.provider.launches().is_empty());
    let view = &h.handle.pools().await.unwrap()[0];
    assert_eq!((view.min_idle, view.warm_period), (0, None), "{view:#?}");
    clock.until(utc(2026, 12, 1, 8, 56, 0)).await;
    assert_eq!(idle_count(&h).await, 2, "{:#?}", h.workers().await);
    let view = &h.handle.pools().await.unwrap()[0];
    assert_eq!((view.min_idle, view.warm_period), (2, Some(0)), "{view:#?}");
    clock.until(utc(2026, 12, 1, 17, 59, 30)).await;
    assert_eq!(
        idle_count(&h).await,
        2,
        "kept all period, past idle_timeout"
    );
    assert_eq!(h.provider.launches().len(), 2, "no churn during the period");
    clock.until(utc(2026, 12, 1, 18, 0, 30)).await;
    assert!(h.workers().await.is_empty(), "{:#?}", h.workers().await);
    assert_eq!(h.provider.terminated().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_period_that_ends_tears_down_idle_spares_and_never_a_busy_worker() {
    let mut cfg = pool(4);
    cfg.schedule = vec![period("* 9 * * *", chrono_tz::UTC, 2, Duration::ZERO)];
    let start = utc(2026, 12, 1, 9, 0, 0);
    // Each step runs 10 minutes: past the period's end at 10:00.
    let h = Harness::start_at(cfg, FakeProvider::new(Duration::from_secs(600)), start).await;
    let clock = Clock::new(start);
    clock.until(utc(2026, 12, 1, 9, 1, 0)).await;
    assert_eq!(idle_count(&h).await, 2);
    clock.until(utc(2026, 12, 1, 9, 55, 0)).await;
    let ids = h.submit(1, 1).await;
    clock.until(utc(2026, 12, 1, 10, 0, 30)).await;
    let workers = h.workers().await;
    assert_eq!(workers.len(), 1, "the idle spare went: {workers:#?}");
    assert_eq!(workers[0].state, "busy", "{workers:#?}");
    let builds = h.wait_finished(&ids, Duration::from_secs(900)).await;
    assert!(all_succeeded(&builds), "{builds:#?}");
    assert_eq!(
        builds[0].attempts.len(),
        1,
        "the busy worker was not torn down"
    );
}

#[tokio::test(start_paused = true)]
async fn warm_periods_follow_the_zones_wall_clock_across_daylight_saving() {
    // 08:00–17:59 in Berlin: 07:00–16:59 UTC on 28 March 2026 (CET), and
    // 06:00–15:59 UTC on the 29th, after the clocks went forward.
    let mut cfg = pool(4);
    cfg.schedule = vec![period(
        "* 8-17 * * *",
        chrono_tz::Europe::Berlin,
        1,
        Duration::ZERO,
    )];
    let start = utc(2026, 3, 28, 6, 50, 0);
    let h = Harness::start_at(cfg, FakeProvider::new(Duration::from_secs(1)), start).await;
    let clock = Clock::new(start);
    clock.until(utc(2026, 3, 28, 6, 59, 30)).await;
    assert_eq!(idle_count(&h).await, 0, "07:59 CET");
    clock.until(utc(2026, 3, 28, 7, 0, 30)).await;
    assert_eq!(idle_count(&h).await, 1, "08:00 CET");
    clock.until(utc(2026, 3, 28, 17, 0, 30)).await;
    assert_eq!(idle_count(&h).await, 0, "18:00 CET");
    clock.until(utc(2026, 3, 29, 5, 59, 30)).await;
    assert_eq!(idle_count(&h).await, 0, "07:59 CEST");
    clock.until(utc(2026, 3, 29, 6, 0, 30)).await;
    assert_eq!(
        idle_count(&h).await,
        1,
        "08:00 CEST: an hour earlier in UTC"
    );
    clock.until(utc(2026, 3, 29, 16, 0, 30)).await;
    assert_eq!(idle_count(&h).await, 0, "18:00 CEST");
    assert_eq!(h.provider.launches().len(), 2, "one spare a day");
}

#[tokio::test(start_paused = true)]
async fn idle_scale_factor_keeps_spares_in_step_with_busy_workers() {
    let mut cfg = pool(8);
    cfg.idle_scale_factor = 0.5;
    cfg.idle_scale_limit = Some(2);
    let start = utc(2026, 12, 1, 9, 0, 0);
    let h = Harness::start_at(cfg, FakeProvider::new(Duration::from_secs(600)), start).await;
    let ids = h.submit(4, 1).await;
    // Four busy workers: half as many spares, capped at two.
    let workers = h
        .wait_workers(Duration::from_secs(60), |w| {
            w.iter().filter(|w| w.state == "busy").count() == 4
                && w.iter().filter(|w| w.state == "idle").count() == 2
        })
        .await;
    assert_eq!(workers.len(), 6, "{workers:#?}");
    let builds = h.wait_finished(&ids, Duration::from_secs(900)).await;
    assert!(all_succeeded(&builds), "{builds:#?}");
    // No busy workers: the spares go after idle_timeout like any idle worker.
    h.wait_workers(Duration::from_secs(300), |w| w.is_empty())
        .await;
}
