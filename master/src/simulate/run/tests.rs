use std::time::Duration;

use burst_providers::local::LocalPoolConfig;
use burst_providers::ProviderSection;

use super::*;
use crate::config::BootTime;
use crate::simulate::{generate, report, Kind};

fn setup(seed: u64) -> Setup {
    let mut pool = PoolConfig::new(ProviderSection::new(LocalPoolConfig::default()));
    pool.labels = vec!["linux".into()];
    pool.max_workers = 12.into();
    pool.idle_timeout = Duration::from_secs(300).into();
    pool.idle_scale_factor = 0.25;
    let sim = SimPoolConfig {
        boot: BootTime {
            min: Duration::from_secs(30),
            max: Duration::from_secs(90),
        },
        // Failures put the pool into its (jittered) backoff.
        failure_rate: 0.2,
        price_per_hour: Some(0.1),
    };
    // Monday of the bursty trace: its morning spike and merge trains.
    let day = Duration::from_secs(24 * 3600);
    let jobs = generate(Kind::Bursty, 7)
        .into_iter()
        .filter(|j| j.at < day)
        .collect();
    Setup {
        pools: vec![("linux".into(), pool)],
        sim: BTreeMap::from([("linux".into(), sim)]),
        start: crate::simulate::default_start(),
        jobs,
        horizon: day,
        seed,
    }
}

#[test]
fn a_fixed_seed_and_trace_replay_identically() {
    let first = replay(&setup(5)).unwrap();
    let second = replay(&setup(5)).unwrap();
    assert!(first.builds.len() > 100, "{} builds", first.builds.len());
    assert!(first.failed_launches[0] > 0, "failures were drawn");
    assert_eq!(first, second, "the same timeline, worker ids included");
    let prices = [Some(crate::cost::Priced {
        price_per_hour: 0.1,
        billing: crate::cost::Billing::PER_SECOND,
    })];
    assert_eq!(report("p", &first, &prices), report("p", &second, &prices));
    assert!(first.builds.iter().all(|b| b.finished.is_some()));
}

#[test]
fn another_seed_draws_other_boot_times() {
    let a = replay(&setup(5)).unwrap();
    let b = replay(&setup(6)).unwrap();
    assert_ne!(a.workers, b.workers);
}

#[test]
fn a_job_no_pool_serves_is_refused_with_its_line() {
    let mut s = setup(1);
    s.jobs.truncate(1);
    s.jobs[0].labels = vec!["windows".into()];
    s.jobs[0].line = 7;
    let err = replay(&s).unwrap_err().to_string();
    assert_eq!(err, "trace line 7: no pool serves the labels [\"windows\"]");
    // A pool's own label names it, as in the master.
    s.jobs[0].labels = vec!["burst:pool=linux".into()];
    s.horizon = Duration::from_secs(3600);
    assert_eq!(replay(&s).unwrap().builds.len(), 1);
}

#[test]
fn matrix_jobs_submit_one_build_per_cell() {
    let mut s = setup(1);
    s.jobs.truncate(1);
    s.jobs[0].matrix = 3;
    s.horizon = Duration::from_secs(3600);
    let t = replay(&s).unwrap();
    assert_eq!(t.builds.len(), 3);
    assert!(t.builds.iter().all(|b| b.job == 0 && b.finished.is_some()));
}
