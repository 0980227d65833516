use std::time::Duration;

use crate::harness::*;

#[tokio::test(start_paused = true)]
async fn idle_worker_goes_after_idle_timeout_not_before() {
    let mut cfg = pool(2);
    cfg.idle_timeout = Duration::from_secs(30).into();
    let h = Harness::start(cfg, FakeProvider::new(Duration::from_secs(1))).await;
    let ids = h.submit(1, 1).await;
    h.wait_finished(&ids, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_secs(25)).await;
    assert_eq!(h.workers().await.len(), 1, "still within idle_timeout");
    assert!(h.provider.terminated().is_empty());
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(h.workers().await.is_empty(), "gone after idle_timeout");
    assert_eq!(h.provider.terminated().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn busy_worker_is_never_torn_down_for_idleness() {
    let mut cfg = pool(1);
    cfg.idle_timeout = Duration::from_secs(5).into();
    // One step that runs far longer than idle_timeout.
    let h = Harness::start(cfg, FakeProvider::new(Duration::from_secs(120))).await;
    let ids = h.submit(1, 1).await;
    let builds = h.wait_finished(&ids, Duration::from_secs(300)).await;
    assert!(all_succeeded(&builds), "{builds:#?}");
    assert_eq!(builds[0].attempts.len(), 1);
    assert_eq!(h.provider.launches().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn max_builds_one_gives_a_fresh_worker_per_build() {
    let mut cfg = pool(1);
    cfg.max_builds = 1;
    let h = Harness::start(cfg, FakeProvider::new(Duration::from_secs(1))).await;
    let ids = h.submit(3, 1).await;
    let builds = h.wait_finished(&ids, Duration::from_secs(120)).await;
    assert!(all_succeeded(&builds));
    let workers: Vec<_> = builds
        .iter()
        .map(|b| b.attempts[0].worker_id.clone())
        .collect();
    let mut distinct = workers.clone();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        3,
        "each build on its own worker: {workers:?}"
    );
    h.wait_workers(Duration::from_secs(10), |w| w.is_empty())
        .await;
    assert_eq!(
        h.provider.terminated().len(),
        3,
        "each recycled right after its build"
    );
}
