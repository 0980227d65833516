use std::sync::Arc;
use std::time::Duration;

use burst_master::model::{now_millis, AttemptState, BuildState, Instance, InstanceState};
use burst_master::store::{MemoryStore, Store};

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
        h.wait_build(id, Duration::from_secs(60), |b| {
            b.attempts.len() == restart as usize
                && b.attempts.last().unwrap().state == AttemptState::Running
        })
        .await;
        // The master dies: its task stops where it is.
        h.task.abort();
    }
    let h =
        Harness::start_with_store(pool(1), FakeProvider::new(Duration::from_secs(1)), store).await;
    let b = &h.wait_finished(&[id], Duration::from_secs(120)).await[0];
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
