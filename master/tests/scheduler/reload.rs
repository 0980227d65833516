//! A config reload's pools (`Scheduler::reconfigure`): added pools serve at
//! once, removed ones drain, changed caps apply, and running builds go on.

use std::sync::Arc;
use std::time::Duration;

use burst_master::model::{BuildState, NewBuild};
use burst_master::scheduler::{PoolChanges, PoolSpec};
use burst_providers::Provider;

use crate::harness::*;

fn spec(
    name: &str,
    cfg: burst_master::config::PoolConfig,
    provider: Arc<FakeProvider>,
) -> PoolSpec {
    let provider: Arc<dyn Provider> = provider;
    PoolSpec {
        name: name.into(),
        config: cfg,
        provider,
    }
}

fn labelled(labels: &[&str]) -> NewBuild {
    let mut b = new_build(1);
    b.labels = labels.iter().map(|l| (*l).to_owned()).collect();
    b
}

fn gpu_pool() -> burst_master::config::PoolConfig {
    let mut cfg = pool(1);
    cfg.labels = vec!["gpu".into()];
    cfg
}

#[tokio::test(start_paused = true)]
async fn an_added_pool_serves_at_once_while_a_running_build_goes_on() {
    let h = Harness::start(pool(1), FakeProvider::new(Duration::from_secs(100))).await;
    let running = h.submit(1, 1).await[0];
    h.wait_build(running, Duration::from_secs(30), |b| {
        b.state == BuildState::Running
    })
    .await;
    // Before the reload no pool serves `gpu`: such a submit fails at once.
    let gpu = h.fake(Duration::from_secs(1));
    let changes = h
        .handle
        .reconfigure(vec![
            spec("pool", pool(1), h.provider.clone()),
            spec("gpu", gpu_pool(), gpu.clone()),
        ])
        .await
        .unwrap();
    assert_eq!(
        changes,
        PoolChanges {
            added: vec!["gpu".into()],
            ..Default::default()
        }
    );
    let added = h.handle.submit(vec![labelled(&["gpu"])]).await.unwrap()[0];
    let done = h.wait_finished(&[added], Duration::from_secs(30)).await;
    assert_eq!(done[0].state, BuildState::Succeeded, "{done:#?}");
    assert_eq!(gpu.launches().len(), 1);
    let still = h.build(running).await;
    assert_eq!(still.state, BuildState::Running, "{still:#?}");

    let done = h.wait_finished(&[running], Duration::from_secs(200)).await;
    assert_eq!(done[0].state, BuildState::Succeeded, "{done:#?}");
    assert_eq!(done[0].attempts.len(), 1, "went on, not retried");
    assert_eq!(h.provider.launches().len(), 1);
    assert!(h.provider.terminated().is_empty(), "its worker was kept");
}

#[tokio::test(start_paused = true)]
async fn a_removed_pool_drains_its_busy_worker_then_stops_it() {
    let h = Harness::start(pool(2), FakeProvider::new(Duration::from_secs(60))).await;
    let running = h.submit(1, 2).await[0];
    h.wait_build(running, Duration::from_secs(30), |b| {
        b.state == BuildState::Running
    })
    .await;
    let other = h.fake(Duration::from_secs(1));
    let mut other_cfg = pool(1);
    other_cfg.labels = vec!["linux".into()];
    let changes = h
        .handle
        .reconfigure(vec![spec("other", other_cfg, other.clone())])
        .await
        .unwrap();
    assert_eq!(changes.added, ["other"]);
    assert_eq!(changes.removed, ["pool"]);

    // A new build goes to the new pool, never to the draining worker.
    let next = h.submit(1, 1).await[0];
    let done = h.wait_finished(&[next], Duration::from_secs(30)).await;
    assert_eq!(done[0].state, BuildState::Succeeded, "{done:#?}");
    assert!(
        done[0].attempts[0].worker_id.starts_with("other-"),
        "{done:#?}"
    );
    assert_eq!(
        h.provider.launches().len(),
        1,
        "the removed pool launches nothing"
    );
    assert!(h.provider.terminated().is_empty(), "busy: not stopped");

    // Both steps of the running build ran on its worker, as one attempt.
    let done = h.wait_finished(&[running], Duration::from_secs(300)).await;
    assert_eq!(done[0].state, BuildState::Succeeded, "{done:#?}");
    assert_eq!(done[0].attempts.len(), 1);
    assert!(done[0].attempts[0].worker_id.starts_with("pool-"));
    // Then its own provider stops it.
    let workers = h
        .wait_workers(Duration::from_secs(30), |w| {
            w.iter().all(|w| w.pool != "pool")
        })
        .await;
    assert!(workers.iter().all(|w| w.pool == "other"), "{workers:#?}");
    assert_eq!(h.provider.terminated().len(), 1);

    // Drained, the retired pool is dropped by the next reload.
    let pools: Vec<String> = h
        .handle
        .pools()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.pool)
        .collect();
    assert_eq!(pools, ["other", "pool"], "retired until the next reload");
    let mut cfg = pool(1);
    cfg.labels = vec!["linux".into()];
    let changes = h
        .handle
        .reconfigure(vec![spec("other", cfg, other.clone())])
        .await
        .unwrap();
    assert_eq!(changes, PoolChanges::default());
    let pools: Vec<String> = h
        .handle
        .pools()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.pool)
        .collect();
    assert_eq!(pools, ["other"]);
}

#[tokio::test(start_paused = true)]
async fn raised_caps_apply_at_once() {
    let h = Harness::start(pool(1), FakeProvider::new(Duration::from_secs(100))).await;
    let ids = h.submit(3, 1).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(h.provider.launches().len(), 1, "capped at one worker");
    let changes = h
        .handle
        .reconfigure(vec![spec("pool", pool(3), h.provider.clone())])
        .await
        .unwrap();
    assert_eq!(changes.changed, ["pool"]);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(h.provider.launches().len(), 3, "the new cap applies");
    let done = h.wait_finished(&ids, Duration::from_secs(300)).await;
    assert!(all_succeeded(&done), "{done:#?}");
    assert!(done.iter().all(|b| b.attempts.len() == 1));
}
