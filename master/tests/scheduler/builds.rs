use std::time::Duration;

use burst_master::model::{BuildState, StepState};
use burst_master::scheduler::SchedError;

use crate::harness::*;

#[tokio::test(start_paused = true)]
async fn steps_run_in_order_and_history_is_kept() {
    let h = Harness::start(pool(1), FakeProvider::new(Duration::from_secs(1))).await;
    let ids = h.submit(1, 3).await;
    let builds = h.wait_finished(&ids, Duration::from_secs(60)).await;
    let b = &builds[0];
    assert_eq!(b.state, BuildState::Succeeded);
    assert_eq!(b.attempts.len(), 1);
    let steps = &b.attempts[0].steps;
    assert_eq!(steps.len(), 3);
    assert!(
        steps
            .iter()
            .all(|s| s.state == StepState::Succeeded && s.exit_code == Some(0)),
        "{steps:#?}"
    );
    assert!(b.started_at.is_some() && b.finished_at.is_some());
}

#[tokio::test(start_paused = true)]
async fn cancel_queued_and_running_builds() {
    // Long steps, one worker: the first build runs, the second waits.
    let h = Harness::start(pool(1), FakeProvider::new(Duration::from_secs(600))).await;
    let ids = h.submit(2, 1).await;
    h.wait_workers(Duration::from_secs(30), |w| {
        w.iter().any(|w| w.state == "busy")
    })
    .await;
    assert_eq!(
        h.handle.cancel(ids[1]).await.unwrap(),
        BuildState::Cancelled
    );
    h.handle.cancel(ids[0]).await.unwrap();
    let builds = h.wait_finished(&ids, Duration::from_secs(10)).await;
    assert_eq!(builds[0].state, BuildState::Cancelled);
    assert_eq!(builds[0].attempts[0].steps[0].state, StepState::Cancelled);
    assert_eq!(builds[1].state, BuildState::Cancelled);
    assert!(
        builds[1].attempts.is_empty(),
        "a queued build never starts once cancelled"
    );
    assert!(matches!(
        h.handle.cancel(ids[0]).await,
        Err(SchedError::NotActive(_))
    ));
}

#[tokio::test(start_paused = true)]
async fn a_build_needing_a_secret_the_master_lacks_fails_before_it_starts() {
    use burst_master::config::Secrets;
    use burst_master::store::MemoryStore;
    let mut secrets = Secrets::default();
    secrets.insert("DEPLOY_KEY", "deploy-key-value");
    let h = Harness::start_with_secrets(
        pool(1),
        FakeProvider::new(Duration::from_secs(1)),
        std::sync::Arc::new(MemoryStore::new()),
        secrets,
    )
    .await;
    // Queued under a config that declared NPM_TOKEN too.
    let mut missing = new_build(2);
    missing.steps[1].secrets = vec!["DEPLOY_KEY".into(), "NPM_TOKEN".into()];
    let mut present = new_build(1);
    present.steps[0].secrets = vec!["DEPLOY_KEY".into()];
    let ids = h.handle.submit(vec![missing, present]).await.unwrap();
    let builds = h.wait_finished(&ids, Duration::from_secs(60)).await;
    assert_eq!(builds[0].state, BuildState::Failed, "{:#?}", builds[0]);
    assert!(builds[0].attempts.is_empty(), "{:#?}", builds[0]);
    assert_eq!(
        builds[0].reason.as_deref(),
        Some("step step1 needs secret NPM_TOKEN, which this master's [secrets] does not declare")
    );
    // The worker is not spent on it: the next build runs.
    assert_eq!(builds[1].state, BuildState::Succeeded, "{:#?}", builds[1]);
}
