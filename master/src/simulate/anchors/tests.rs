//! Each emulation on a trace small enough to work out by hand. Boot is a
//! fixed 60 s; builds: A at 100 s (300 s long), B at 1100 s (300 s), C at
//! 1300 s (60 s); the replay lasts 4000 s. The figures below are derived
//! step by step in the comments and asserted exactly.

use std::collections::BTreeMap;
use std::time::Duration;

use burst_providers::local::LocalPoolConfig;
use burst_providers::ProviderSection;

use super::*;
use crate::config::{BootTime, SimPoolConfig};
use crate::simulate::{replay, report, Report, Setup, Timed};

fn s(secs: u64) -> Duration {
    Duration::from_secs(secs)
}

fn pool() -> PoolConfig {
    let mut p = PoolConfig::new(ProviderSection::new(LocalPoolConfig::default()));
    p.labels = vec!["linux".into()];
    p.max_workers = 4.into();
    p.max_starting = 4.into();
    p
}

fn job(at: u64, length: u64) -> Timed {
    Timed {
        line: 0,
        at: s(at),
        labels: vec!["linux".into()],
        duration: s(length),
        matrix: 1,
    }
}

fn run(policy: Policy) -> Report {
    let sim = SimPoolConfig {
        boot: BootTime::fixed(s(60)),
        failure_rate: 0.0,
        price_per_hour: Some(3.6),
    };
    let setup = Setup {
        pools: vec![("linux".into(), policy.apply(&pool()))],
        sim: BTreeMap::from([("linux".into(), sim)]),
        start: crate::simulate::default_start(),
        jobs: vec![job(100, 300), job(1100, 300), job(1300, 60)],
        horizon: s(4000),
        seed: 1,
    };
    let timeline = replay(&setup).unwrap();
    report(&policy.name(), &timeline, &[Some(per_second(3.6))])
}

/// (launches, booting, busy, idle seconds, waits p50/p95/max, cost).
fn figures(r: &Report) -> (u32, f64, f64, f64, [f64; 3], f64) {
    let t = &r.total;
    (
        t.launches,
        t.booting_secs,
        t.busy_secs,
        t.idle_secs,
        [t.wait_p50_secs, t.wait_p95_secs, t.wait_max_secs],
        t.cost,
    )
}

// Every build's 660 s of work is the same under each policy.
const BUSY: f64 = 660.0;

#[test]
fn buildbot_wait_0_starts_a_worker_per_build_and_keeps_none_idle() {
    // A: launch at 100, hello at 160, runs to 460, stopped then; B: 1100,
    // 1160 to 1460; C: 1300, 1360 to 1420. Each waits its boot.
    let r = run(Policy::BuildbotWait(Duration::ZERO));
    // $3.6/h is $0.001 a second: 180 + 660 instance-seconds.
    assert_eq!(figures(&r), (3, 180.0, BUSY, 0.0, [60.0; 3], 0.84));
    assert_eq!(r.unfinished, 0);
    assert_eq!(r.total.cost_per_build, 0.28);
}

#[test]
fn buildbot_wait_600_keeps_each_worker_600_s_after_its_last_build() {
    // w1: boot 100-160, A 160-460, idle to 1060 (600 s), stopped.
    // w2: B arrives after w1 went: boot 1100-1160, B 1160-1460, idle to 2060.
    // w3: C arrives while w2 is busy: boot 1300-1360, C 1360-1420, idle to 2020.
    let r = run(Policy::BuildbotWait(s(600)));
    assert_eq!(figures(&r), (3, 180.0, BUSY, 1800.0, [60.0; 3], 2.64));
}

#[test]
fn taskscaler_idle_count_keeps_a_spare_and_replaces_it_when_taken() {
    // s1 launched at 0 (idle_count 1), idle 60-100, takes A (no wait);
    // s2 launched at 100 as the new spare, idle 160-760, then past
    // idle_time with s1 idle again since 400 (one spare is enough).
    // B takes s1 at 1100 (s1 idle 400-1100); s3 launched, idle 1160-1300;
    // C takes s3, s4 launched; at 1360 s3 and s4 are idle, s1 from 1400:
    // the two idle since 1360 go at 1960, s1 stays to the end (1400-4000).
    let r = run(Policy::Taskscaler {
        idle_count: 1,
        idle_time: s(600),
        scale_factor: 0.0,
        scale_factor_limit: None,
    });
    let idle = (40 + 700 + 2600) + 600 + (140 + 600) + 600;
    assert_eq!(
        figures(&r),
        (4, 240.0, BUSY, f64::from(idle), [0.0; 3], 6.18)
    );
}

#[test]
fn ephemeral_runners_with_an_idle_pool_run_one_build_each() {
    // e1 launched at 0 for the pool, takes A at 100 (idle 60-100), goes at
    // 400; e2 launched at 100, idle 160-1100, takes B, goes at 1400; e3
    // launched at 1100, idle 1160-1300, takes C, goes at 1360; e4 launched
    // at 1300, idle 1360-4000.
    let r = run(Policy::Ephemeral {
        idle_count: 1,
        cron: "* * * * *",
        min_running: s(300),
    });
    let idle = 40 + 940 + 140 + 2640;
    assert_eq!(
        figures(&r),
        (4, 240.0, BUSY, f64::from(idle), [0.0; 3], 4.66)
    );
}

#[test]
fn emulations_drop_burst_only_settings_and_keep_the_caps() {
    let mut mine = pool();
    mine.min_idle = 3;
    mine.idle_scale_factor = 0.5;
    mine.max_starting = 2.into();
    let bb = Policy::BuildbotWait(Duration::ZERO).apply(&mine);
    assert_eq!(
        (bb.min_idle, bb.idle_scale_factor, bb.max_builds),
        (0, 0.0, 1)
    );
    assert_eq!((bb.max_workers, bb.max_starting), (4.into(), 4.into()));
    let eph = anchors()
        .into_iter()
        .find(|p| matches!(p, Policy::Ephemeral { .. }))
        .unwrap()
        .apply(&mine);
    assert_eq!(
        (eph.max_builds, eph.min_idle, eph.schedule.len()),
        (1, 0, 1)
    );
    assert_eq!(eph.schedule[0].min_idle, 2);
    assert_eq!(Policy::AsConfigured.apply(&mine), mine);
}

/// A price billed per second, as a pool of one's own machines is.
fn per_second(price_per_hour: f64) -> crate::cost::Priced {
    crate::cost::Priced {
        price_per_hour,
        billing: crate::cost::Billing::PER_SECOND,
    }
}
