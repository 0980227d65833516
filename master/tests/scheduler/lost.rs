use std::time::Duration;

use burst_master::model::{AttemptState, BuildState};

use crate::harness::*;

#[tokio::test(start_paused = true)]
async fn worker_lost_mid_build_is_retried_on_a_new_worker() {
    let provider = FakeProvider::new(Duration::from_secs(2));
    provider.plan([
        Behaviour::DieOnFirstStep,
        Behaviour::Connect(Duration::from_secs(1)),
    ]);
    let h = Harness::start(pool(2), provider).await;
    let ids = h.submit(1, 1).await;
    let builds = h.wait_finished(&ids, Duration::from_secs(120)).await;
    let b = &builds[0];
    assert_eq!(b.state, BuildState::Succeeded, "{b:#?}");
    assert_eq!(b.attempts.len(), 2, "history shows both attempts");
    assert_eq!(b.attempts[0].state, AttemptState::WorkerLost);
    assert!(
        b.attempts[0]
            .reason
            .as_deref()
            .unwrap_or_default()
            .contains("heartbeats"),
        "{:?}",
        b.attempts[0]
    );
    assert_eq!(b.attempts[1].state, AttemptState::Succeeded);
    assert_ne!(b.attempts[0].worker_id, b.attempts[1].worker_id);
    assert!(
        h.provider.terminated().contains(&b.attempts[0].worker_id),
        "the lost worker is cleaned up"
    );
}

#[tokio::test(start_paused = true)]
async fn disconnect_mid_build_is_retried_at_once() {
    let provider = FakeProvider::new(Duration::from_secs(30));
    let h = Harness::start(pool(2), provider).await;
    let ids = h.submit(1, 1).await;
    let workers = h
        .wait_workers(Duration::from_secs(10), |w| {
            w.iter().any(|w| w.state == "busy")
        })
        .await;
    h.provider.crash(&workers[0].worker_id).await;
    let builds = h.wait_finished(&ids, Duration::from_secs(120)).await;
    let b = &builds[0];
    assert_eq!(b.state, BuildState::Succeeded, "{b:#?}");
    assert_eq!(b.attempts[0].state, AttemptState::WorkerLost);
    assert!(
        b.attempts[0]
            .reason
            .as_deref()
            .unwrap_or_default()
            .contains("disconnected"),
        "{:?}",
        b.attempts[0]
    );
}

#[tokio::test(start_paused = true)]
async fn retries_run_out() {
    let provider = FakeProvider::new(Duration::from_secs(2));
    provider.plan([
        Behaviour::DieOnFirstStep,
        Behaviour::DieOnFirstStep,
        Behaviour::DieOnFirstStep,
    ]);
    let h = Harness::start(pool(1), provider).await;
    let ids = h.submit(1, 1).await; // retries = 1
    let builds = h.wait_finished(&ids, Duration::from_secs(300)).await;
    assert_eq!(builds[0].state, BuildState::WorkerLost);
    assert_eq!(builds[0].attempts.len(), 2);
}
