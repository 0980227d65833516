use std::time::Duration;

use crate::harness::*;

#[tokio::test(start_paused = true)]
async fn scales_from_zero_and_back() {
    let h = Harness::start(pool(4), FakeProvider::new(Duration::from_secs(2))).await;
    assert!(h.workers().await.is_empty(), "no worker before any build");
    let ids = h.submit(1, 2).await;
    let builds = h.wait_finished(&ids, Duration::from_secs(60)).await;
    assert!(all_succeeded(&builds));
    assert_eq!(h.provider.launches().len(), 1);
    // idle_timeout is 60s: the pool scales back to zero.
    h.wait_workers(Duration::from_secs(120), |w| w.is_empty())
        .await;
    assert_eq!(h.provider.live(), 0);
}

#[tokio::test(start_paused = true)]
async fn ten_builds_never_exceed_max_workers() {
    let h = Harness::start(pool(3), FakeProvider::new(Duration::from_secs(5))).await;
    let ids = h.submit(10, 1).await;
    let builds = h.wait_finished(&ids, Duration::from_secs(600)).await;
    assert!(all_succeeded(&builds), "{builds:#?}");
    assert_eq!(
        h.provider.max_live(),
        3,
        "the cap is reached and never exceeded"
    );
    assert_eq!(
        h.provider.launches().len(),
        3,
        "workers are reused, not relaunched"
    );
}

#[tokio::test(start_paused = true)]
async fn max_starting_limits_parallel_launches() {
    let mut cfg = pool(8);
    cfg.max_starting = 2.into();
    let provider = FakeProvider::new(Duration::from_secs(100));
    provider.plan((0..8).map(|_| Behaviour::Connect(Duration::from_secs(10))));
    let h = Harness::start(cfg, provider).await;
    h.submit(8, 1).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        h.provider.launches().len(),
        2,
        "only max_starting launches in flight"
    );
    let workers = h.workers().await;
    assert!(
        workers.iter().all(|w| w.state == "connecting"),
        "{workers:#?}"
    );
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(
        h.provider.launches().len(),
        4,
        "the next two go once the first two connected"
    );
}

#[tokio::test(start_paused = true)]
async fn min_idle_is_kept_warm() {
    let mut cfg = pool(4);
    cfg.min_idle = 2;
    cfg.idle_timeout = Duration::from_secs(10).into();
    let h = Harness::start(cfg, FakeProvider::new(Duration::from_secs(1))).await;
    let idle =
        |w: &[burst_master::model::WorkerView]| w.iter().filter(|w| w.state == "idle").count();
    h.wait_workers(Duration::from_secs(30), |w| idle(w) == 2)
        .await;
    // Long past idle_timeout the spares are still there.
    tokio::time::sleep(Duration::from_secs(300)).await;
    let workers = h.workers().await;
    assert_eq!(idle(&workers), 2, "{workers:#?}");
    assert_eq!(h.provider.launches().len(), 2);
    // A build takes one; a replacement keeps two idle while it runs.
    let ids = h.submit(1, 1).await;
    h.wait_finished(&ids, Duration::from_secs(60)).await;
    h.wait_workers(Duration::from_secs(60), |w| idle(w) >= 2)
        .await;
}
