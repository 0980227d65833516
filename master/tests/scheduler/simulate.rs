//! `burst simulate` replays traces through the same scheduler these tests
//! drive: on one small trace, the harness (fake provider, workers speaking
//! through the handle) and the simulator launch as many workers and start
//! the builds in the same order.

use std::collections::BTreeMap;
use std::time::Duration;

use burst_master::config::{BootTime, SimPoolConfig};
use burst_master::logs::StepRunId;
use burst_master::model::BuildId;
use burst_master::simulate::{replay, Setup, Timed};
use tokio::time::Instant;

use crate::harness::*;

const STEP: Duration = Duration::from_secs(300);

/// (submit second, builds): two workers at most, so builds queue.
const JOBS: [(u64, usize); 5] = [(0, 1), (10, 2), (20, 1), (400, 3), (2000, 1)];

fn cfg() -> burst_master::config::PoolConfig {
    let mut cfg = pool(2);
    cfg.start_timeout = Duration::from_secs(120).into();
    cfg
}

#[tokio::test(start_paused = true)]
async fn the_simulator_and_the_harness_agree_on_launches_and_start_order() {
    // The harness: the fake's workers say hello 1 s after their launch.
    let h = Harness::start(cfg(), FakeProvider::new(STEP)).await;
    let t0 = Instant::now();
    let mut ids = Vec::new();
    for (at, n) in JOBS {
        tokio::time::sleep_until(t0 + Duration::from_secs(at)).await;
        ids.extend(h.submit(n, 1).await);
    }
    let builds = h.wait_finished(&ids, Duration::from_secs(7200)).await;
    assert!(all_succeeded(&builds), "{builds:#?}");
    let harness_starts: Vec<BuildId> = h
        .received()
        .iter()
        .filter_map(|r| r.step_run_id.parse::<StepRunId>().ok())
        .map(|id| id.build)
        .collect();
    let harness_launches = h.provider.launches().len();

    // The simulator, on its own paused runtime (a thread of its own).
    let sim = std::thread::spawn(|| {
        let setup = Setup {
            pools: vec![("pool".into(), cfg())],
            sim: BTreeMap::from([(
                "pool".into(),
                SimPoolConfig {
                    boot: BootTime::fixed(Duration::from_secs(1)),
                    failure_rate: 0.0,
                    price_per_hour: None,
                },
            )]),
            start: burst_master::simulate::default_start(),
            jobs: JOBS
                .iter()
                .map(|&(at, n)| Timed {
                    line: 0,
                    at: Duration::from_secs(at),
                    labels: vec!["linux".into()],
                    duration: STEP,
                    matrix: n as u32,
                })
                .collect(),
            horizon: Duration::from_secs(3600),
            seed: 1,
        };
        replay(&setup).unwrap()
    })
    .join()
    .unwrap();
    let sim_starts: Vec<BuildId> = sim.starts.iter().map(|(b, _)| *b).collect();

    assert_eq!(sim_starts, harness_starts);
    assert_eq!(sim_starts.len(), 8);
    assert_eq!(sim.workers.len(), harness_launches);
    // w1 at 0, w2 at 10 (the cap); the rest queue for them until 1201;
    // both go 60 s after their last build, so the build at 2000 launches
    // a third.
    assert_eq!(harness_launches, 3);
}
