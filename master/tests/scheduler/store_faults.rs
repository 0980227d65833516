//! Store faults: a write the store fails is kept, not dropped, and saved
//! once the store works again; meanwhile submits are refused and the
//! handle reports why (what `/readyz` shows).

use std::time::Duration;

use burst_master::model::{BuildState, InstanceState};
use burst_master::scheduler::SchedError;
use burst_master::store::Store;

use crate::harness::*;

#[tokio::test(start_paused = true)]
async fn builds_that_finish_while_the_store_fails_are_saved_once_it_works() {
    let provider = FakeProvider::new(Duration::from_secs(20));
    let h = Harness::start(pool(2), provider).await;
    let ids = h.submit(2, 1).await;
    // Both run; the store still works.
    for id in &ids {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while h.build(*id).await.state != BuildState::Running {
            assert!(
                tokio::time::Instant::now() < deadline,
                "build {id} never ran"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    assert_eq!(h.handle.store_fault(), None);

    h.store.fail_writes(true);
    // The steps finish (20 s) while every write fails.
    tokio::time::sleep(Duration::from_secs(60)).await;
    let fault = h.handle.store_fault().expect("the fault is reported");
    assert!(fault.contains("injected write fault"), "{fault}");
    for id in &ids {
        assert_eq!(
            h.build(*id).await.state,
            BuildState::Running,
            "the finish of build {id} could not be saved yet"
        );
    }
    let refused = h.handle.submit(vec![new_build(1)]).await;
    assert!(
        matches!(&refused, Err(SchedError::StoreFailing(reason)) if reason.contains("injected")),
        "{refused:?}"
    );
    // Still failing after many retries: nothing is given up.
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert!(h.handle.store_fault().is_some());

    h.store.fail_writes(false);
    let builds = h.wait_finished(&ids, Duration::from_secs(30)).await;
    assert!(all_succeeded(&builds), "{builds:#?}");
    for b in &builds {
        assert_eq!(b.attempts.len(), 1, "ran once: {b:#?}");
    }
    assert_eq!(h.handle.store_fault(), None, "recovered by itself");
    // The idle workers were terminated during the fault (idle_timeout is
    // 60 s): their final ledger rows were kept and are saved now.
    for b in &builds {
        let worker = &b.attempts[0].worker_id;
        let row = h.store.get_instance(worker).await.unwrap().unwrap();
        assert_eq!(row.state, InstanceState::Gone, "{row:#?}");
    }
    // And submits are taken again.
    let more = h.submit(1, 1).await;
    let done = h.wait_finished(&more, Duration::from_secs(60)).await;
    assert!(all_succeeded(&done), "{done:#?}");
}

#[tokio::test(start_paused = true)]
async fn a_failed_submit_marks_the_store_failing_until_a_probe_succeeds() {
    let provider = FakeProvider::new(Duration::from_secs(1));
    let h = Harness::start(pool(1), provider).await;
    h.store.fail_writes(true);
    let first = h.handle.submit(vec![new_build(1)]).await;
    assert!(matches!(first, Err(SchedError::Store(_))), "{first:?}");
    assert!(h.handle.store_fault().is_some());
    assert!(h.store.list_builds(10).await.unwrap().is_empty());

    h.store.fail_writes(false);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while h.handle.store_fault().is_some() {
        assert!(tokio::time::Instant::now() < deadline, "never recovered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ids = h.submit(1, 1).await;
    let done = h.wait_finished(&ids, Duration::from_secs(60)).await;
    assert!(all_succeeded(&done), "{done:#?}");
}

/// No launch is made while its ledger row cannot be written, and launches
/// resume by themselves once the store works (no restart).
#[tokio::test(start_paused = true)]
async fn launches_wait_for_the_ledger_and_resume_when_it_works() {
    let provider = FakeProvider::new(Duration::from_secs(20));
    let mut cfg = pool(1);
    // The first worker is recycled after its build: the second needs a launch.
    cfg.max_builds = 1;
    let h = Harness::start(cfg, provider).await;
    let ids = h.submit(2, 1).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while h.build(ids[0]).await.state != BuildState::Running {
        assert!(tokio::time::Instant::now() < deadline, "never ran");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(h.provider.launches().len(), 1);

    h.store.fail_writes(true);
    tokio::time::sleep(Duration::from_secs(300)).await;
    assert_eq!(
        h.provider.launches().len(),
        1,
        "no launch without its ledger row"
    );
    assert_eq!(h.build(ids[1]).await.state, BuildState::Queued);
    assert!(h.handle.store_fault().is_some());

    h.store.fail_writes(false);
    let builds = h.wait_finished(&ids, Duration::from_secs(120)).await;
    assert!(all_succeeded(&builds), "{builds:#?}");
    assert_eq!(h.provider.launches().len(), 2);
    let second = &builds[1].attempts[0].worker_id;
    let row = h.store.get_instance(second).await.unwrap();
    assert!(row.is_some(), "the launch was recorded first");
}
