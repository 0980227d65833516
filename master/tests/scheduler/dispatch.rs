//! Persist, then act: an attempt is in the store before any of its steps
//! reaches a worker, and an attempt the store refuses is never sent.

use std::time::Duration;

use burst_master::logs::StepRunId;
use burst_master::model::{AttemptState, BuildState};

use crate::harness::*;

#[tokio::test(start_paused = true)]
async fn every_step_arrives_after_its_attempt_is_saved() {
    let provider = FakeProvider::new(Duration::from_secs(1));
    let h = Harness::start(pool(2), provider).await;
    let ids = h.submit(3, 2).await;
    let builds = h.wait_finished(&ids, Duration::from_secs(120)).await;
    assert!(all_succeeded(&builds), "{builds:#?}");
    let received = h.received();
    assert_eq!(
        received.len(),
        6,
        "two steps of three builds: {received:#?}"
    );
    for step in &received {
        assert!(
            step.attempt_saved,
            "sent before its attempt was saved: {step:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn an_attempt_the_store_refuses_is_not_sent_and_runs_once_it_works() {
    // The worker connects after 5 s; the store fails once its launch is
    // recorded, before it connects.
    let provider = FakeProvider::new(Duration::from_secs(1));
    provider.plan([Behaviour::Connect(Duration::from_secs(5))]);
    let h = Harness::start(pool(1), provider).await;
    let ids = h.submit(1, 1).await;
    h.wait_workers(Duration::from_secs(5), |w| !w.is_empty())
        .await;
    assert!(h.received().is_empty());
    h.store.fail_writes(true);
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(
        h.workers().await.iter().any(|w| w.state == "idle"),
        "a worker is ready to take the build: {:#?}",
        h.workers().await
    );
    assert!(
        h.received().is_empty(),
        "a step left while its attempt could not be saved: {:#?}",
        h.received()
    );
    let stored = h.build(ids[0]).await;
    assert_eq!(stored.state, BuildState::Queued, "{stored:#?}");
    assert!(stored.attempts.is_empty(), "{stored:#?}");

    h.store.fail_writes(false);
    let builds = h.wait_finished(&ids, Duration::from_secs(60)).await;
    assert!(all_succeeded(&builds), "{builds:#?}");
    assert_eq!(builds[0].attempts.len(), 1, "{builds:#?}");
    assert_eq!(builds[0].attempts[0].state, AttemptState::Succeeded);
    let received = h.received();
    assert_eq!(received.len(), 1, "{received:#?}");
    let first = StepRunId {
        build: ids[0],
        attempt: 1,
        index: 0,
    };
    assert_eq!(received[0].step_run_id, first.to_string());
    assert!(received[0].attempt_saved, "{received:?}");
}
