use std::time::Duration;

use tokio::sync::mpsc;

use crate::harness::*;

/// A launch whose worker never connects on its own, so the test can present
/// tokens itself.
async fn silent_worker() -> (Harness, String) {
    let provider = FakeProvider::new(Duration::from_secs(1));
    provider.plan([Behaviour::Silent]);
    let h = Harness::start(pool(1), provider).await;
    h.submit(1, 1).await;
    let workers = h
        .wait_workers(Duration::from_secs(5), |w| w.len() == 1)
        .await;
    (h, workers[0].worker_id.clone())
}

#[tokio::test(start_paused = true)]
async fn wrong_token_unknown_worker_and_old_protocol_are_refused() {
    let (h, id) = silent_worker().await;
    let (tx, _rx) = mpsc::channel(8);
    let refused = h
        .handle
        .hello(hello(&id, "not-the-token"), tx.clone())
        .await
        .unwrap_err();
    assert!(
        refused.fatal && refused.reason.contains("wrong launch token"),
        "{refused:?}"
    );

    let refused = h
        .handle
        .hello(hello("nobody", "x"), tx.clone())
        .await
        .unwrap_err();
    assert!(refused.reason.contains("unknown worker id"), "{refused:?}");

    let mut old = hello(&id, "x");
    old.protocol_version = burst_proto::PROTOCOL_VERSION + 1;
    let refused = h.handle.hello(old, tx).await.unwrap_err();
    assert!(
        refused.reason.contains("incompatible protocol version"),
        "{refused:?}"
    );
    // None of that made the worker usable.
    assert_eq!(h.workers().await[0].state, "connecting");
}

#[tokio::test(start_paused = true)]
async fn a_spent_launch_token_cannot_be_reused() {
    let mut cfg = pool(1);
    cfg.min_idle = 1;
    let h = Harness::start(cfg, FakeProvider::new(Duration::from_secs(1))).await;
    let workers = h
        .wait_workers(Duration::from_secs(10), |w| {
            w.iter().any(|w| w.state == "idle")
        })
        .await;
    let worker = workers[0].worker_id.clone();
    let (tx, _rx) = mpsc::channel(8);
    // While connected, no second session is admitted.
    let refused = h
        .handle
        .hello(hello(&worker, &h.provider.token(&worker)), tx.clone())
        .await
        .unwrap_err();
    assert!(
        refused.fatal && refused.reason.contains("takes no new session"),
        "{refused:?}"
    );
    // After its session broke, the worker may come back, but only with the
    // resume token: the launch token is spent.
    h.provider.crash(&worker).await;
    h.wait_workers(Duration::from_secs(5), |w| {
        w.iter().any(|w| w.state == "reconnecting")
    })
    .await;
    let refused = h
        .handle
        .hello(hello(&worker, &h.provider.token(&worker)), tx)
        .await
        .unwrap_err();
    assert!(
        refused.fatal && refused.reason.contains("launch token already used"),
        "{refused:?}"
    );
}
