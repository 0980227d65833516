use std::time::Duration;

use burst_master::model::{AttemptState, BuildState};
use burst_proto::{master_message, worker_message, Heartbeat, StepFinished};
use tokio::sync::mpsc;

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

/// A worker whose session breaks gets the heartbeat window to come back;
/// one that does not is terminated and its build retried (after the
/// provider confirmed it gone).
#[tokio::test(start_paused = true)]
async fn disconnect_mid_build_is_retried_once_the_worker_did_not_come_back() {
    let provider = FakeProvider::new(Duration::from_secs(30));
    let h = Harness::start(pool(2), provider).await;
    let ids = h.submit(1, 1).await;
    let workers = h
        .wait_workers(Duration::from_secs(10), |w| {
            w.iter().any(|w| w.state == "busy")
        })
        .await;
    let crashed = tokio::time::Instant::now();
    h.provider.crash(&workers[0].worker_id).await;
    let workers = h
        .wait_workers(Duration::from_secs(5), |w| {
            w.iter().any(|w| w.state == "reconnecting")
        })
        .await;
    assert_eq!(
        workers[0].build,
        Some(ids[0]),
        "the build waits: {workers:?}"
    );
    let builds = h.wait_finished(&ids, Duration::from_secs(120)).await;
    assert!(
        crashed.elapsed() >= HEARTBEAT * 3,
        "retried only after the reconnect window"
    );
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

/// A worker whose session breaks and that comes back within the window
/// goes on with its build: the same attempt, the result from the new
/// session accepted, the one from the old session refused. Heartbeats get
/// a lease renewal.
#[tokio::test(start_paused = true)]
async fn a_worker_that_reconnects_keeps_its_build() {
    let provider = FakeProvider::new(Duration::from_secs(1));
    provider.plan([Behaviour::Silent]);
    let h = Harness::start(pool(1), provider).await;
    let ids = h.submit(1, 1).await;
    let worker = h
        .wait_workers(Duration::from_secs(5), |w| w.len() == 1)
        .await[0]
        .worker_id
        .clone();
    let (tx, mut rx) = mpsc::channel(16);
    let first = h
        .handle
        .hello(hello(&worker, &h.provider.token(&worker)), tx)
        .await
        .expect("admitted");
    let resume = match rx.recv().await.and_then(|m| m.msg) {
        Some(master_message::Msg::Welcome(w)) => w.resume_token,
        other => panic!("expected Welcome, got {other:?}"),
    };
    let step = loop {
        match rx.recv().await.and_then(|m| m.msg) {
            Some(master_message::Msg::Run(run)) => break run.step_run_id,
            Some(_) => continue,
            None => panic!("session closed"),
        }
    };
    h.handle
        .from_worker(
            &worker,
            first,
            worker_message::Msg::Heartbeat(Heartbeat::default()),
        )
        .await;
    let lease = loop {
        match rx.recv().await.and_then(|m| m.msg) {
            Some(master_message::Msg::Lease(l)) => break l,
            Some(_) => continue,
            None => panic!("session closed"),
        }
    };
    assert_eq!(lease.step_lease_ms, STEP_LEASE.as_millis() as u64);

    h.handle.disconnected(&worker, first).await;
    tokio::time::sleep(HEARTBEAT).await;
    let (tx, mut rx) = mpsc::channel(16);
    let mut back = hello(&worker, &resume);
    back.running_steps = vec![step.clone()];
    let second = h.handle.hello(back, tx).await.expect("back");
    match rx.recv().await.and_then(|m| m.msg) {
        Some(master_message::Msg::Welcome(w)) => {
            assert_eq!(w.resume_offsets.get(&step), Some(&0), "{w:?}")
        }
        other => panic!("expected Welcome, got {other:?}"),
    }
    let done = || {
        worker_message::Msg::Finished(StepFinished {
            step_run_id: step.clone(),
            exit_code: Some(0),
            ..Default::default()
        })
    };
    // The old session's result: refused (a stale session).
    h.handle.from_worker(&worker, first, done()).await;
    assert_eq!(h.build(ids[0]).await.state, BuildState::Running);
    h.handle.from_worker(&worker, second, done()).await;
    let b = &h.wait_finished(&ids, Duration::from_secs(30)).await[0];
    assert_eq!(b.state, BuildState::Succeeded, "{b:#?}");
    assert_eq!(b.attempts.len(), 1, "{b:#?}");
    // A second copy of the result (a replay) changes nothing.
    h.handle.from_worker(&worker, second, done()).await;
    let b = h.build(ids[0]).await;
    assert_eq!(b.attempts.len(), 1, "{b:#?}");
    assert_eq!(b.state, BuildState::Succeeded, "{b:#?}");
}

/// Fencing: the result of a worker declared lost is refused, even if it
/// arrives on its old session before the terminate.
#[tokio::test(start_paused = true)]
async fn a_result_from_a_worker_declared_lost_is_refused() {
    let provider = FakeProvider::new(Duration::from_secs(1));
    provider.plan([
        Behaviour::Silent,
        Behaviour::Connect(Duration::from_secs(1)),
    ]);
    let h = Harness::start(pool(2), provider).await;
    let ids = h.submit(1, 1).await;
    let worker = h
        .wait_workers(Duration::from_secs(5), |w| w.len() == 1)
        .await[0]
        .worker_id
        .clone();
    let (tx, mut rx) = mpsc::channel(64);
    let session = h
        .handle
        .hello(hello(&worker, &h.provider.token(&worker)), tx)
        .await
        .expect("admitted");
    let step = loop {
        match rx.recv().await.and_then(|m| m.msg) {
            Some(master_message::Msg::Run(run)) => break run.step_run_id,
            Some(_) => continue,
            None => panic!("session closed"),
        }
    };
    // Silence past the heartbeat window: declared lost, then it speaks.
    h.wait_workers(Duration::from_secs(60), |w| {
        w.iter()
            .all(|w| w.worker_id != worker || w.state == "terminating")
    })
    .await;
    h.handle
        .from_worker(
            &worker,
            session,
            worker_message::Msg::Finished(StepFinished {
                step_run_id: step,
                exit_code: Some(0),
                ..Default::default()
            }),
        )
        .await;
    let b = &h.wait_finished(&ids, Duration::from_secs(120)).await[0];
    assert_eq!(b.state, BuildState::Succeeded, "{b:#?}");
    assert_eq!(b.attempts.len(), 2, "{b:#?}");
    assert_eq!(b.attempts[0].state, AttemptState::WorkerLost, "{b:#?}");
    assert_ne!(b.attempts[1].worker_id, worker);
}

/// A worker that killed its step because its lease ran out (the master
/// could not renew it in time) reports so: the attempt ends interrupted,
/// uses no retry, and the build runs again.
#[tokio::test(start_paused = true)]
async fn a_step_killed_by_its_lease_runs_again_without_using_a_retry() {
    let provider = FakeProvider::new(Duration::from_secs(1));
    provider.plan([Behaviour::Silent]);
    let h = Harness::start(pool(1), provider).await;
    let ids = h.submit(1, 1).await;
    let worker = h
        .wait_workers(Duration::from_secs(5), |w| w.len() == 1)
        .await[0]
        .worker_id
        .clone();
    let (tx, mut rx) = mpsc::channel(16);
    let session = h
        .handle
        .hello(hello(&worker, &h.provider.token(&worker)), tx)
        .await
        .expect("admitted");
    let first = next_run(&mut rx).await;
    h.handle
        .from_worker(
            &worker,
            session,
            worker_message::Msg::Finished(StepFinished {
                step_run_id: first,
                lease_expired: true,
                error: "the worker killed the step".into(),
                ..Default::default()
            }),
        )
        .await;
    let second = next_run(&mut rx).await;
    assert!(second.ends_with(".2.0"), "attempt 2 runs: {second}");
    let b = h.build(ids[0]).await;
    assert_eq!(b.attempts[0].state, AttemptState::Interrupted, "{b:#?}");
    assert_eq!(b.retries, 1);
    assert!(
        b.attempts[0]
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("step lease")),
        "{b:#?}"
    );
}

/// The next step the master sends on a session.
async fn next_run(rx: &mut mpsc::Receiver<Box<burst_proto::MasterMessage>>) -> String {
    loop {
        match rx.recv().await.and_then(|m| m.msg) {
            Some(master_message::Msg::Run(run)) => break run.step_run_id,
            Some(_) => continue,
            None => panic!("session closed"),
        }
    }
}
