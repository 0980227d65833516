use std::sync::Arc;
use std::time::Duration;

use burst_master::logs::StepRunId;
use burst_master::model::{
    now_millis, Attempt, AttemptState, BuildId, BuildState, Instance, InstanceState, StepRun,
    StepState,
};
use burst_master::store::{MemoryStore, Store};
use burst_proto::{master_message, worker_message, StepFinished};
use tokio::sync::mpsc;

use crate::harness::*;

#[tokio::test(start_paused = true)]
async fn startup_terminates_orphans_and_resumes_queued_builds() {
    let store = Arc::new(MemoryStore::new());
    // A previous run: a ledger row still live, and a queued build.
    store
        .save_instance(&Instance {
            worker_id: "pool-old1".into(),
            pool: "pool".into(),
            provider: "fake".into(),
            provider_id: Some("p-pool-old1".into()),
            state: InstanceState::Connected,
            details: serde_json::Value::Null,
            error: None,
            launched_at: now_millis(),
            connected_at: None,
            terminated_at: None,
            ended_by: None,
            resume_hash: None,
            resume_prev_hash: None,
        })
        .await
        .unwrap();
    let queued = store.insert_builds(vec![new_build(1)]).await.unwrap();
    let provider = FakeProvider::new(Duration::from_secs(1));
    // One the ledger knows, one it never recorded.
    provider.add_orphan("pool-old1");
    provider.add_orphan("pool-stray");
    let h = Harness::start_with_store(pool(2), provider, store.clone()).await;
    let builds = h
        .wait_finished(&[queued[0].id], Duration::from_secs(60))
        .await;
    assert!(
        all_succeeded(&builds),
        "the queued build survived the restart"
    );
    let mut terminated = h.provider.terminated();
    terminated.sort();
    assert!(
        terminated.starts_with(&["pool-old1".to_string(), "pool-stray".to_string()]),
        "{terminated:?}"
    );
    let live: Vec<_> = store
        .live_instances()
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.worker_id)
        .collect();
    assert!(
        !live.contains(&"pool-old1".to_string()) && !live.contains(&"pool-stray".to_string()),
        "{live:?}"
    );
}

/// The master died while a launch was in flight (no provider handle in the
/// ledger) but the worker did start: the provider lists it, startup
/// terminates it, and its row ends `gone` with who reaped it, not `failed`.
#[tokio::test(start_paused = true)]
async fn a_reaped_orphan_ends_gone_with_who_reaped_it() {
    let store = Arc::new(MemoryStore::new());
    let row = |worker_id: &str| Instance {
        worker_id: worker_id.into(),
        pool: "pool".into(),
        provider: "fake".into(),
        provider_id: None,
        state: InstanceState::Launching,
        details: serde_json::Value::Null,
        error: None,
        launched_at: now_millis(),
        connected_at: None,
        terminated_at: None,
        ended_by: None,
        resume_hash: None,
        resume_prev_hash: None,
    };
    store.save_instance(&row("pool-inflight")).await.unwrap();
    store.save_instance(&row("pool-never")).await.unwrap();
    let provider = FakeProvider::new(Duration::from_secs(1));
    provider.add_orphan("pool-inflight");
    let h = Harness::start_with_store(pool(1), provider, store.clone()).await;
    h.wait_workers(Duration::from_secs(10), |_| true).await;

    assert_eq!(h.provider.terminated(), ["pool-inflight".to_string()]);
    let reaped = store.get_instance("pool-inflight").await.unwrap().unwrap();
    assert_eq!(reaped.state, InstanceState::Gone, "{reaped:#?}");
    assert_eq!(
        reaped.ended_by.as_deref(),
        Some("reaped at start by master m-test"),
        "{reaped:#?}"
    );
    assert_eq!(reaped.provider_id.as_deref(), Some("p-pool-inflight"));
    assert!(reaped.terminated_at.is_some());
    assert_eq!(reaped.error, None, "{reaped:#?}");

    // Never listed: the launch never got anywhere.
    let never = store.get_instance("pool-never").await.unwrap().unwrap();
    assert_eq!(never.state, InstanceState::Failed, "{never:#?}");
    assert!(never.terminated_at.is_some());
    assert!(
        never
            .ended_by
            .as_deref()
            .is_some_and(|b| b.contains("m-test")),
        "{never:#?}"
    );
}

/// Two restarts of the master while a build runs, with one retry allowed:
/// each restart requeues the build as interrupted, none uses the retry, and
/// the build still runs and succeeds.
#[tokio::test(start_paused = true)]
async fn master_restarts_never_use_up_a_retry() {
    let store = Arc::new(MemoryStore::new());
    let id = store.insert_builds(vec![new_build(1)]).await.unwrap()[0].id;
    for restart in 1..=2u32 {
        // A step that outlasts this run of the master.
        let h = Harness::start_with_store(
            pool(1),
            FakeProvider::new(Duration::from_secs(3600)),
            store.clone(),
        )
        .await;
        // Its worker never comes back (the fake's tasks die with the
        // scheduler): it is given up once its step lease surely ran out.
        h.wait_build(id, Duration::from_secs(600), |b| {
            b.attempts.len() == restart as usize
                && b.attempts.last().unwrap().state == AttemptState::Running
        })
        .await;
        // The master dies: its task stops where it is.
        h.task.abort();
    }
    let h =
        Harness::start_with_store(pool(1), FakeProvider::new(Duration::from_secs(1)), store).await;
    let b = &h.wait_finished(&[id], Duration::from_secs(600)).await[0];
    assert_eq!(b.state, BuildState::Succeeded, "{b:#?}");
    assert_eq!(b.retries, 1);
    assert_eq!(b.attempts.len(), 3, "{b:#?}");
    for a in &b.attempts[..2] {
        assert_eq!(a.state, AttemptState::Interrupted, "{b:#?}");
        assert_eq!(
            a.reason.as_deref(),
            Some("the master restarted while the build ran")
        );
    }
    assert_eq!(b.attempts[2].state, AttemptState::Succeeded);
}

/// A previous run left a worker busy with a build, its resume credential
/// (hashed) in the ledger. The restarted master does not terminate it: it
/// waits for it, takes it back with that credential, tells it where to
/// resume its output, and the build finishes as the same attempt.
#[tokio::test(start_paused = true)]
async fn a_worker_of_the_previous_run_is_taken_back_and_its_build_goes_on() {
    let (store, id, step) = previous_run_with_a_busy_worker().await;
    let provider = FakeProvider::new(Duration::from_secs(1));
    provider.add_orphan("pool-old1");
    let h = Harness::start_with_store(pool(1), provider, store.clone()).await;
    let workers = h
        .wait_workers(Duration::from_secs(5), |w| {
            w.iter().any(|w| w.worker_id == "pool-old1")
        })
        .await;
    assert_eq!(workers[0].state, "reconnecting", "{workers:?}");
    assert_eq!(workers[0].build, Some(id), "{workers:?}");

    let (tx, mut rx) = mpsc::channel(16);
    let mut back = hello("pool-old1", "resume-old");
    back.running_steps = vec![step.clone()];
    let session = h.handle.hello(back, tx).await.expect("taken back");
    let welcome = match rx.recv().await.and_then(|m| m.msg) {
        Some(master_message::Msg::Welcome(w)) => w,
        other => panic!("expected Welcome, got {other:?}"),
    };
    assert_eq!(welcome.resume_offsets.get(&step), Some(&0), "{welcome:?}");
    assert_eq!(welcome.step_lease_ms, STEP_LEASE.as_millis() as u64);
    // The new credential replaced the old one in the ledger, hashed.
    let row = store.get_instance("pool-old1").await.unwrap().unwrap();
    assert_ne!(
        row.resume_hash.as_deref(),
        Some(sha_hex("resume-old").as_str())
    );
    assert_eq!(row.resume_hash, Some(sha_hex(&welcome.resume_token)));

    h.handle
        .from_worker(
            "pool-old1",
            session,
            worker_message::Msg::Finished(StepFinished {
                step_run_id: step.clone(),
                exit_code: Some(0),
                ..Default::default()
            }),
        )
        .await;
    let b = &h.wait_finished(&[id], Duration::from_secs(60)).await[0];
    assert_eq!(b.state, BuildState::Succeeded, "{b:#?}");
    assert_eq!(b.attempts.len(), 1, "the same attempt: {b:#?}");
    assert_eq!(b.attempts[0].state, AttemptState::Succeeded, "{b:#?}");
    // Acknowledged, so the worker forgets it; and never terminated.
    let acked = loop {
        match rx.recv().await.and_then(|m| m.msg) {
            Some(master_message::Msg::ResultAck(a)) => break a,
            Some(_) => continue,
            None => panic!("session closed before the ack"),
        }
    };
    assert_eq!(acked.step_run_id, step);
    assert!(!h.provider.terminated().contains(&"pool-old1".to_string()));
}

/// The same, but the worker never comes back: once its lease surely ran
/// out it is terminated, and the build runs again with its first attempt
/// ended interrupted (the restart's doing: no retry used).
#[tokio::test(start_paused = true)]
async fn a_worker_that_does_not_come_back_is_reaped_at_its_lease_end() {
    let (store, id, _step) = previous_run_with_a_busy_worker().await;
    let provider = FakeProvider::new(Duration::from_secs(1));
    provider.add_orphan("pool-old1");
    let started = tokio::time::Instant::now();
    let h = Harness::start_with_store(pool(2), provider, store.clone()).await;
    let b = &h.wait_finished(&[id], Duration::from_secs(600)).await[0];
    assert_eq!(b.state, BuildState::Succeeded, "{b:#?}");
    assert_eq!(b.attempts.len(), 2, "{b:#?}");
    assert_eq!(b.attempts[0].state, AttemptState::Interrupted, "{b:#?}");
    assert!(
        started.elapsed() >= STEP_LEASE,
        "not retried before the lease ran out"
    );
    assert!(h.provider.terminated().contains(&"pool-old1".to_string()));
    let row = store.get_instance("pool-old1").await.unwrap().unwrap();
    assert!(!row.state.is_live(), "{row:#?}");
}

fn sha_hex(token: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A store as a killed master leaves it: worker `pool-old1` connected (its
/// resume token is "resume-old"), running step 0 of build 1, attempt 1.
async fn previous_run_with_a_busy_worker() -> (Arc<MemoryStore>, BuildId, String) {
    previous_run(1).await
}

/// The same with a build of `steps` steps, the first running (the others
/// pending).
async fn previous_run(steps: usize) -> (Arc<MemoryStore>, BuildId, String) {
    let store = Arc::new(MemoryStore::new());
    store
        .save_instance(&Instance {
            worker_id: "pool-old1".into(),
            pool: "pool".into(),
            provider: "fake".into(),
            provider_id: Some("p-pool-old1".into()),
            state: InstanceState::Connected,
            details: serde_json::Value::Null,
            error: None,
            launched_at: now_millis(),
            connected_at: Some(now_millis()),
            terminated_at: None,
            ended_by: None,
            resume_hash: Some(sha_hex("resume-old")),
            resume_prev_hash: None,
        })
        .await
        .unwrap();
    let mut build = store
        .insert_builds(vec![new_build(steps)])
        .await
        .unwrap()
        .remove(0);
    build.state = BuildState::Running;
    build.started_at = Some(now_millis());
    build.attempts.push(Attempt {
        number: 1,
        worker_id: "pool-old1".into(),
        pool: "pool".into(),
        state: AttemptState::Running,
        reason: None,
        started_at: now_millis(),
        finished_at: None,
        steps: build
            .steps
            .iter()
            .enumerate()
            .map(|(i, spec)| StepRun {
                index: i as u32,
                name: spec.name.clone(),
                state: if i == 0 {
                    StepState::Running
                } else {
                    StepState::Pending
                },
                exit_code: None,
                signal: None,
                error: None,
                started_at: (i == 0).then(now_millis),
                duration_ms: None,
                log_bytes: 0,
            })
            .collect(),
    });
    store.save_build(&build).await.unwrap();
    let step = StepRunId {
        build: build.id,
        attempt: 1,
        index: 0,
    }
    .to_string();
    (store, build.id, step)
}

/// A worker of a pool the config no longer has comes back after a
/// restart, in the middle of a 2-step build: it is drained. Both steps run
/// on it as the same attempt (nothing interrupted, no retry), it gets no
/// other build though one with matching labels is queued, and then it is
/// told to shut down and its ledger row ends gone, saying why.
#[tokio::test(start_paused = true)]
async fn a_worker_whose_pool_is_gone_is_drained_when_it_comes_back() {
    let (store, id, step0) = previous_run(2).await;
    let mut row = store.get_instance("pool-old1").await.unwrap().unwrap();
    row.pool = "removed".into();
    store.save_instance(&row).await.unwrap();
    let h = Harness::start_with_store(
        pool(1),
        FakeProvider::new(Duration::from_secs(1)),
        store.clone(),
    )
    .await;
    let workers = h
        .wait_workers(Duration::from_secs(5), |w| {
            w.iter().any(|w| w.worker_id == "pool-old1")
        })
        .await;
    let old = workers.iter().find(|w| w.worker_id == "pool-old1").unwrap();
    assert_eq!(old.pool, "removed", "{workers:?}");
    assert_eq!(old.build, Some(id), "{workers:?}");

    let (tx, mut rx) = mpsc::channel(64);
    let mut back = hello("pool-old1", "resume-old");
    back.running_steps = vec![step0.clone()];
    back.labels = vec!["linux".into()];
    let session = h.handle.hello(back, tx).await.expect("taken back");
    // A build its labels would match, queued while it is busy.
    let other = h.submit(1, 1).await[0];
    let finished = |step: &str| {
        worker_message::Msg::Finished(StepFinished {
            step_run_id: step.to_owned(),
            exit_code: Some(0),
            ..Default::default()
        })
    };
    h.handle
        .from_worker("pool-old1", session, finished(&step0))
        .await;
    let step1 = StepRunId {
        build: id,
        attempt: 1,
        index: 1,
    }
    .to_string();
    let mut sent = Vec::new();
    let drain = loop {
        let msg = tokio::time::timeout(Duration::from_secs(60), rx.recv())
            .await
            .expect("the drained worker hears from the master")
            .and_then(|m| m.msg);
        match msg {
            Some(master_message::Msg::Run(run)) => {
                sent.push(run.step_run_id.clone());
                h.handle
                    .from_worker("pool-old1", session, finished(&run.step_run_id))
                    .await;
            }
            Some(master_message::Msg::Shutdown(s)) => break s,
            Some(_) => continue,
            None => panic!("session closed before a shutdown; steps sent: {sent:?}"),
        }
    };
    assert!(drain.drain, "{drain:?}");
    assert_eq!(sent, [step1], "only its own build's next step");

    let b = &h.wait_finished(&[id], Duration::from_secs(60)).await[0];
    assert_eq!(b.state, BuildState::Succeeded, "{b:#?}");
    assert_eq!(b.attempts.len(), 1, "the same attempt: {b:#?}");
    assert_eq!(b.attempts[0].state, AttemptState::Succeeded, "{b:#?}");
    assert_eq!(b.attempts[0].worker_id, "pool-old1");
    // The queued build ran on a worker of a pool that exists.
    let o = &h.wait_finished(&[other], Duration::from_secs(60)).await[0];
    assert_eq!(o.state, BuildState::Succeeded, "{o:#?}");
    assert_ne!(o.attempts[0].worker_id, "pool-old1", "{o:#?}");

    let row = store.get_instance("pool-old1").await.unwrap().unwrap();
    assert_eq!(row.state, InstanceState::Gone, "{row:#?}");
    assert!(row.terminated_at.is_some(), "{row:#?}");
    assert!(
        row.ended_by
            .as_deref()
            .is_some_and(|b| b.contains("pool removed is no longer in the config")),
        "{row:#?}"
    );
    // No provider was asked: the removed pool's is gone.
    assert!(!h.provider.terminated().contains(&"pool-old1".to_string()));
    let workers = h.workers().await;
    assert!(
        !workers.iter().any(|w| w.worker_id == "pool-old1"),
        "{workers:?}"
    );
}

/// A worker of a removed pool that had no build comes back: it is told to
/// shut down at once, and its row ends gone.
#[tokio::test(start_paused = true)]
async fn an_idle_worker_whose_pool_is_gone_is_stopped_when_it_comes_back() {
    let (previous, _id, _step) = previous_run(1).await;
    let mut row = previous.get_instance("pool-old1").await.unwrap().unwrap();
    row.pool = "removed".into();
    // Only the ledger row: it ran no build.
    let store = Arc::new(MemoryStore::new());
    store.save_instance(&row).await.unwrap();
    let h = Harness::start_with_store(
        pool(1),
        FakeProvider::new(Duration::from_secs(1)),
        store.clone(),
    )
    .await;
    let (tx, mut rx) = mpsc::channel(16);
    h.handle
        .hello(hello("pool-old1", "resume-old"), tx)
        .await
        .expect("taken back");
    let shutdown = loop {
        let msg = tokio::time::timeout(Duration::from_secs(60), rx.recv())
            .await
            .expect("the worker is told to shut down")
            .and_then(|m| m.msg);
        match msg {
            Some(master_message::Msg::Shutdown(s)) => break s,
            Some(master_message::Msg::Run(run)) => panic!("given a step: {run:?}"),
            Some(_) => continue,
            None => panic!("session closed before a shutdown"),
        }
    };
    assert!(shutdown.drain, "{shutdown:?}");
    let row = store.get_instance("pool-old1").await.unwrap().unwrap();
    assert_eq!(row.state, InstanceState::Gone, "{row:#?}");
}
