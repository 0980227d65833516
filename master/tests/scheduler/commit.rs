//! Group commit: what one turn changed is saved in one store transaction,
//! and what depends on it (a reply, a result's acknowledgement) goes out
//! only once it is saved.

use std::time::Duration;

use burst_master::model::BuildState;
use burst_master::store::Store;
use burst_proto::{master_message, worker_message, MasterMessage, StepFinished};
use tokio::sync::mpsc;

use crate::harness::*;

#[tokio::test(start_paused = true)]
async fn cancels_queued_together_are_saved_in_one_transaction_before_any_reply() {
    // The only worker never connects: the builds stay queued.
    let provider = FakeProvider::new(Duration::from_secs(1));
    provider.plan([Behaviour::Silent]);
    let h = Harness::start(pool(1), provider).await;
    let ids = h.submit(10, 1).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = h.store.saved_batches().len();

    // All ten are on the actor's channel before it next runs.
    let cancels = ids.iter().map(|id| h.handle.cancel(*id));
    let replies = futures::future::join_all(cancels).await;
    for reply in replies {
        assert_eq!(reply.unwrap(), BuildState::Cancelled);
    }
    // Replied only once saved: the store has every cancel already.
    for id in &ids {
        let stored = h.store.get_build(*id).await.unwrap().unwrap();
        assert_eq!(stored.state, BuildState::Cancelled, "{stored:#?}");
    }
    let batches = h.store.saved_batches();
    let after: Vec<_> = batches[before..].to_vec();
    assert!(
        after.iter().any(|b| ids
            .iter()
            .all(|id| b.contains(&(*id, BuildState::Cancelled)))),
        "the ten cancels were not saved together: {after:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_plans_starts_are_saved_in_one_transaction() {
    let provider = FakeProvider::new(Duration::from_secs(1));
    let mut cfg = pool(4);
    cfg.min_idle = 4;
    let h = Harness::start(cfg, provider).await;
    h.wait_workers(Duration::from_secs(10), |w| {
        w.len() == 4 && w.iter().all(|w| w.state == "idle")
    })
    .await;
    let ids = h.submit(4, 1).await;
    let builds = h.wait_finished(&ids, Duration::from_secs(60)).await;
    assert!(all_succeeded(&builds), "{builds:#?}");
    let batches = h.store.saved_batches();
    assert!(
        batches
            .iter()
            .any(|b| ids.iter().all(|id| b.contains(&(*id, BuildState::Running)))),
        "the four attempts were not saved together: {batches:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_result_is_acknowledged_only_once_it_is_saved() {
    let provider = FakeProvider::new(Duration::from_secs(1));
    provider.plan([Behaviour::Silent]);
    let mut cfg = pool(1);
    cfg.min_idle = 1;
    let h = Harness::start(cfg, provider).await;
    let workers = h
        .wait_workers(Duration::from_secs(5), |w| w.len() == 1)
        .await;
    let worker = &workers[0].worker_id;
    let (tx, mut rx) = mpsc::channel::<Box<MasterMessage>>(16);
    let token = h.provider.token(worker);
    let session = h.handle.hello(hello(worker, &token), tx).await.unwrap();
    let id = h.submit(1, 1).await[0];

    let step = loop {
        let msg = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .expect("a RunStep in time")
            .expect("the session stays open");
        if let Some(master_message::Msg::Run(run)) = msg.msg {
            break run.step_run_id;
        }
    };
    // Sent only once the attempt was saved.
    let stored = h.build(id).await;
    assert_eq!(stored.state, BuildState::Running, "{stored:#?}");

    let result = worker_message::Msg::Finished(StepFinished {
        step_run_id: step.clone(),
        exit_code: Some(0),
        ..Default::default()
    });
    h.handle.from_worker(worker, session, result).await;
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .expect("an acknowledgement in time")
            .expect("the session stays open");
        if let Some(master_message::Msg::ResultAck(ack)) = msg.msg {
            assert_eq!(ack.step_run_id, step);
            break;
        }
    }
    // The worker may forget the result now: the store must have it.
    let stored = h.build(id).await;
    assert_eq!(stored.state, BuildState::Succeeded, "{stored:#?}");
}
