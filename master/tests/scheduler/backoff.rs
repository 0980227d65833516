use std::time::Duration;

use burst_master::model::BuildState;
use burst_providers::ProviderError;

use crate::harness::*;

#[tokio::test(start_paused = true)]
async fn failed_launches_back_off_then_succeed() {
    let provider = FakeProvider::new(Duration::from_secs(1));
    provider.plan([
        Behaviour::Fail(ProviderError::transient("failed to reach the daemon")),
        Behaviour::Fail(ProviderError::transient("failed to reach the daemon")),
        Behaviour::Connect(Duration::from_secs(1)),
    ]);
    let h = Harness::start(pool(2), provider).await;
    let ids = h.submit(1, 1).await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    let waiting = h.build(ids[0]).await;
    assert_eq!(
        waiting.state,
        BuildState::Queued,
        "one bad launch does not fail the build"
    );
    let reason = waiting.reason.unwrap_or_default();
    assert!(
        reason.contains("backing off") && reason.contains("failed to reach the daemon"),
        "{reason}"
    );

    let builds = h.wait_finished(&ids, Duration::from_secs(120)).await;
    assert!(all_succeeded(&builds));
    let launches = h.provider.launches();
    assert_eq!(launches.len(), 3);
    // Jittered exponential: each wait is at least the previous minimum.
    let gaps: Vec<Duration> = launches.windows(2).map(|w| w[1].0 - w[0].0).collect();
    assert!(gaps[0] >= Duration::from_secs(1), "{gaps:?}");
    assert!(
        gaps[1] >= Duration::from_secs(2),
        "second delay doubles: {gaps:?}"
    );
    assert!(
        gaps.iter().all(|g| *g <= Duration::from_secs(60)),
        "capped at backoff_max: {gaps:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn backoff_resets_after_a_success() {
    let provider = FakeProvider::new(Duration::from_secs(1));
    provider.plan([
        Behaviour::Fail(ProviderError::transient("boom")),
        Behaviour::Fail(ProviderError::transient("boom")),
        Behaviour::Fail(ProviderError::transient("boom")),
        Behaviour::Connect(Duration::from_secs(1)),
        Behaviour::Fail(ProviderError::transient("boom")),
        Behaviour::Connect(Duration::from_secs(1)),
    ]);
    let mut cfg = pool(1);
    cfg.max_builds = 1;
    let h = Harness::start(cfg, provider).await;
    let first = h.submit(1, 1).await;
    h.wait_finished(&first, Duration::from_secs(300)).await;
    h.wait_workers(Duration::from_secs(10), |w| w.is_empty())
        .await;
    let before = h.provider.launches().len();
    let second = h.submit(1, 1).await;
    h.wait_finished(&second, Duration::from_secs(300)).await;
    let launches = h.provider.launches();
    let gap = launches[before + 1].0 - launches[before].0;
    // After a success the delay starts again from backoff_min (1s, jittered
    // up to 2s), not from where the first streak left off (8s+).
    assert!(
        gap < Duration::from_secs(4),
        "backoff was not reset: {gap:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn start_timeout_terminates_and_build_still_runs() {
    let provider = FakeProvider::new(Duration::from_secs(1));
    provider.plan([
        Behaviour::Silent,
        Behaviour::Connect(Duration::from_secs(1)),
    ]);
    let h = Harness::start(pool(1), provider).await;
    let ids = h.submit(1, 1).await;
    tokio::time::sleep(Duration::from_secs(29)).await;
    assert!(
        h.provider.terminated().is_empty(),
        "not before start_timeout (30s)"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let launches = h.provider.launches();
    assert_eq!(
        h.provider.terminated(),
        vec![launches[0].1.clone()],
        "the silent worker is terminated"
    );
    let reason = h.build(ids[0]).await.reason.unwrap_or_default();
    assert!(
        reason.contains("did not connect within start_timeout"),
        "{reason}"
    );
    let builds = h.wait_finished(&ids, Duration::from_secs(120)).await;
    assert!(all_succeeded(&builds));
    assert_eq!(
        builds[0].attempts.len(),
        1,
        "the build never ran on the silent worker"
    );
}

#[tokio::test(start_paused = true)]
async fn permanent_launch_error_fails_the_build_fast() {
    let provider = FakeProvider::new(Duration::from_secs(1));
    provider.plan([Behaviour::Fail(ProviderError::permanent(
        "failed to find image burst-worker:nope",
    ))]);
    let h = Harness::start(pool(2), provider).await;
    let ids = h.submit(1, 1).await;
    let builds = h.wait_finished(&ids, Duration::from_secs(5)).await;
    assert_eq!(builds[0].state, BuildState::Failed);
    let reason = builds[0].reason.clone().unwrap_or_default();
    assert!(reason.contains("burst-worker:nope"), "{reason}");
    assert_eq!(h.provider.launches().len(), 1, "no retry storm");
}
