use std::time::Duration;

use burst_master::model::BuildState;
use burst_master::scheduler::SchedError;

use crate::harness::*;

#[tokio::test(start_paused = true)]
async fn shutdown_lets_builds_finish_then_terminates_everything() {
    let mut cfg = pool(3);
    cfg.min_idle = 1;
    let h = Harness::start(cfg, FakeProvider::new(Duration::from_secs(10))).await;
    let ids = h.submit(2, 1).await;
    h.wait_workers(Duration::from_secs(10), |w| {
        w.iter().filter(|w| w.state == "busy").count() == 2
    })
    .await;
    h.handle.shutdown().await.unwrap();
    let builds = h.wait_finished(&ids, Duration::from_secs(1)).await;
    assert!(
        all_succeeded(&builds),
        "builds finish within the grace period: {builds:#?}"
    );
    assert_eq!(h.provider.live(), 0, "every worker terminated");
    assert!(
        h.task.is_finished() || {
            tokio::time::sleep(Duration::from_millis(10)).await;
            h.task.is_finished()
        }
    );
}

#[tokio::test(start_paused = true)]
async fn shutdown_cancels_what_outlives_the_grace_and_keeps_the_queue() {
    let h = Harness::start(pool(1), FakeProvider::new(Duration::from_secs(3600))).await;
    let ids = h.submit(2, 1).await;
    h.wait_workers(Duration::from_secs(10), |w| {
        w.iter().any(|w| w.state == "busy")
    })
    .await;
    let handle = h.handle.clone();
    let stopping = tokio::spawn(async move { handle.shutdown().await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(matches!(
        h.handle.submit(vec![new_build(1)]).await,
        Err(SchedError::ShuttingDown)
    ));
    stopping.await.unwrap().unwrap();
    let running = h.build(ids[0]).await;
    assert_eq!(running.state, BuildState::Cancelled, "{running:#?}");
    assert!(running.reason.unwrap_or_default().contains("shut down"));
    assert_eq!(
        h.build(ids[1]).await.state,
        BuildState::Queued,
        "queued builds stay queued"
    );
    assert_eq!(h.provider.live(), 0);
}
