//! What the scheduler records for `/metrics`, on virtual time: counts of
//! builds and launches, the queue-wait histogram, and the fleet gauges
//! taken from its state.

use std::time::Duration;

use burst_providers::ProviderError;

use crate::harness::*;

/// The value of the sample `name{labels}` in an exposition, if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(start_paused = true)]
async fn builds_launches_and_queue_wait_are_counted() {
    let provider = FakeProvider::new(Duration::from_secs(1));
    let h = Harness::start(pool(2), provider).await;
    let ids = h.submit(3, 2).await;
    let builds = h.wait_finished(&ids, Duration::from_secs(120)).await;
    assert!(all_succeeded(&builds));
    // The workers go idle once the last result is in.
    h.wait_workers(Duration::from_secs(10), |w| {
        w.iter().all(|w| w.state == "idle")
    })
    .await;

    let text = h.metrics_text().await;
    let get = |series: &str| sample(&text, series).unwrap_or_else(|| panic!("{series} in\n{text}"));
    assert_eq!(get("burst_builds_submitted_total{builder=\"b\"}"), 3.0);
    assert_eq!(
        get("burst_builds_finished_total{builder=\"b\",result=\"succeeded\"}"),
        3.0
    );
    assert_eq!(get("burst_queue_wait_seconds_count{pool=\"pool\"}"), 3.0);
    assert_eq!(
        get("burst_build_duration_seconds_count{builder=\"b\"}"),
        3.0
    );
    let launched = h.provider.launches().len() as f64;
    assert_eq!(
        get("burst_worker_launches_total{pool=\"pool\",provider=\"fake\"}"),
        launched
    );
    assert_eq!(
        get("burst_worker_startup_seconds_count{pool=\"pool\",provider=\"fake\"}"),
        launched
    );
    // Gauges from the state now: every state listed, zeros included.
    assert_eq!(get("burst_workers{pool=\"pool\",state=\"idle\"}"), launched);
    assert_eq!(get("burst_workers{pool=\"pool\",state=\"busy\"}"), 0.0);
    assert_eq!(get("burst_sessions_connected{pool=\"pool\"}"), launched);
    assert_eq!(get("burst_builds_queued{pool=\"pool\"}"), 0.0);
    assert_eq!(get("burst_pool_backoff_seconds{pool=\"pool\"}"), 0.0);
    // The fake has no price: nothing accrues.
    assert_eq!(
        get("burst_cost_estimated_dollars_total{pool=\"pool\"}"),
        0.0
    );
}

#[tokio::test(start_paused = true)]
async fn queued_builds_failures_and_backoff_show_while_they_last() {
    let provider = FakeProvider::new(Duration::from_secs(1));
    provider.plan([
        Behaviour::Fail(ProviderError::transient("failed to reach the daemon")),
        Behaviour::Fail(ProviderError::permanent("failed to find the image")),
    ]);
    let h = Harness::start(pool(1), provider).await;
    let ids = h.submit(2, 1).await;
    tokio::time::sleep(Duration::from_millis(10)).await;

    let text = h.metrics_text().await;
    let get = |series: &str| sample(&text, series).unwrap_or_else(|| panic!("{series} in\n{text}"));
    assert_eq!(
        get("burst_worker_launch_failures_total{pool=\"pool\",provider=\"fake\",reason=\"transient\"}"),
        1.0
    );
    assert_eq!(get("burst_builds_queued{pool=\"pool\"}"), 2.0);
    assert!(
        get("burst_pool_backoff_seconds{pool=\"pool\"}") > 0.0,
        "{text}"
    );
    assert_eq!(get("burst_workers{pool=\"pool\",state=\"launching\"}"), 0.0);

    // The permanent failure fails the builds; the counts say so.
    let builds = h.wait_finished(&ids, Duration::from_secs(300)).await;
    assert!(builds
        .iter()
        .all(|b| b.state == burst_master::model::BuildState::Failed));
    let text = h.metrics_text().await;
    let get = |series: &str| sample(&text, series).unwrap_or_else(|| panic!("{series} in\n{text}"));
    assert_eq!(
        get("burst_worker_launch_failures_total{pool=\"pool\",provider=\"fake\",reason=\"permanent\"}"),
        1.0
    );
    assert_eq!(
        get("burst_builds_finished_total{builder=\"b\",result=\"failed\"}"),
        2.0
    );
    assert_eq!(get("burst_builds_queued{pool=\"pool\"}"), 0.0);
    assert_eq!(
        sample(&text, "burst_queue_wait_seconds_count{pool=\"pool\"}"),
        None
    );
}

#[tokio::test(start_paused = true)]
async fn orphans_reaped_at_startup_are_counted() {
    let provider = FakeProvider::new(Duration::from_secs(1));
    provider.add_orphan("pool-old1");
    provider.add_orphan("pool-old2");
    let h = Harness::start(pool(1), provider).await;
    // Startup runs before the first event: any answer comes after it.
    let text = h.metrics_text().await;
    assert_eq!(
        sample(&text, "burst_orphans_reaped_total{pool=\"pool\"}"),
        Some(2.0),
        "{text}"
    );
}
