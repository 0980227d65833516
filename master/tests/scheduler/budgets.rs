//! Budgets, spend-rate caps and billing-aware teardown on virtual time:
//! launches stop at a budget and start again when it resets, a restart
//! (even after a crash) keeps what was spent, `max_spend_rate` holds the
//! workers in flight, and `teardown = "billing-aware"` keeps an idle worker
//! until what it paid for runs out.

use std::sync::Arc;
use std::time::Duration;

use burst_master::config::{BudgetConfig, PoolBudget, Teardown};
use burst_master::model::{BuildState, Instance, InstanceState};
use burst_master::store::{MemoryStore, Store};
use chrono::{DateTime, TimeZone, Utc};

use crate::harness::*;

/// $3.60 an hour: a tenth of a cent a second, per second.
const PRICE: f64 = 3.6;

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
}

fn priced_pool(max_workers: u32) -> burst_master::config::PoolConfig {
    let mut cfg = pool(max_workers);
    cfg.price_per_hour = Some(PRICE);
    cfg.idle_timeout = Duration::from_secs(10).into();
    cfg
}

/// A scheduler on a fresh store whose workers' steps take `step` seconds,
/// its wall clock reading `at`.
async fn start(
    cfg: burst_master::config::PoolConfig,
    step: u64,
    at: DateTime<Utc>,
    budget: BudgetConfig,
) -> Harness {
    let provider = FakeProvider::new(Duration::from_secs(step));
    Harness::start_budgeted(cfg, provider, Arc::new(MemoryStore::new()), at, budget).await
}

fn daily(limit: f64) -> BudgetConfig {
    BudgetConfig {
        daily: Some(limit),
        ..BudgetConfig::default()
    }
}

async fn reason(h: &Harness, id: i64) -> String {
    h.build(id).await.reason.unwrap_or_default()
}

/// The spend a "budget reached: X of Y USD today" reason names.
fn spent_in(reason: &str) -> f64 {
    reason
        .strip_prefix("budget reached: ")
        .and_then(|r| r.split(' ').next())
        .and_then(|x| x.parse().ok())
        .unwrap_or_else(|| panic!("not a budget reason: {reason:?}"))
}

#[tokio::test(start_paused = true)]
async fn a_reached_budget_stops_launches_until_the_day_resets() {
    // The wall clock reads 23:00 at t0: midnight is an hour later.
    let t0 = tokio::time::Instant::now();
    let h = start(priced_pool(2), 60, utc(2026, 12, 1, 23, 0), daily(0.05)).await;
    // One build: a minute of step, 10 s idle, about $0.07 in all.
    let first = h.submit(1, 1).await;
    let done = h.wait_finished(&first, Duration::from_secs(300)).await;
    assert!(all_succeeded(&done), "{done:#?}");
    h.wait_workers(Duration::from_secs(60), |w| w.is_empty())
        .await;
    assert_eq!(h.provider.launches().len(), 1);

    let second = h.submit(1, 1).await[0];
    tokio::time::sleep(Duration::from_secs(30)).await;
    let why = reason(&h, second).await;
    assert!(why.ends_with(" of 0.05 USD today"), "{why}");
    assert!(spent_in(&why) >= 0.06, "{why}");
    assert_eq!(h.build(second).await.state, BuildState::Queued);
    assert_eq!(h.provider.launches().len(), 1, "no launch over budget");

    // Still held at 23:59; launched once the day turns at midnight UTC.
    tokio::time::sleep(Duration::from_secs(57 * 60)).await;
    assert_eq!(h.provider.launches().len(), 1);
    let done = h.wait_finished(&[second], Duration::from_secs(600)).await;
    assert!(all_succeeded(&done), "{done:#?}");
    let (launched, _) = h.provider.launches()[1].clone();
    // The wall clock read 23:00 at t0: midnight is an hour later.
    assert!(
        launched >= t0 + Duration::from_secs(3600),
        "launched before the reset"
    );
}

#[tokio::test(start_paused = true)]
async fn a_pools_own_budget_holds_only_that_pool() {
    let mut cfg = priced_pool(2);
    cfg.budget = PoolBudget {
        daily: Some(0.01),
        monthly: None,
    };
    let h = start(cfg, 30, utc(2026, 12, 1, 9, 0), BudgetConfig::default()).await;
    let first = h.submit(1, 1).await;
    h.wait_finished(&first, Duration::from_secs(300)).await;
    h.wait_workers(Duration::from_secs(60), |w| w.is_empty())
        .await;
    let second = h.submit(1, 1).await[0];
    tokio::time::sleep(Duration::from_secs(30)).await;
    let why = reason(&h, second).await;
    assert!(
        why.starts_with("budget reached: ") && why.ends_with(" of 0.01 USD today (pool pool)"),
        "{why}"
    );
}

fn ended_row(worker: &str, launched: DateTime<Utc>, secs: i64) -> Instance {
    let launched_at = launched.timestamp_millis();
    Instance {
        worker_id: worker.into(),
        pool: "pool".into(),
        provider: "fake".into(),
        provider_id: Some(worker.into()),
        state: InstanceState::Gone,
        details: serde_json::json!({ "price_per_hour": PRICE }),
        error: None,
        launched_at,
        connected_at: Some(launched_at),
        terminated_at: Some(launched_at + secs * 1000),
        ended_by: None,
        resume_hash: None,
        resume_prev_hash: None,
    }
}

#[tokio::test(start_paused = true)]
async fn what_was_spent_today_survives_a_restart_and_yesterday_does_not_count() {
    let now = utc(2026, 12, 2, 12, 0);
    // Yesterday: $1 spent. Today: $0.04 of a $0.05 budget.
    let store = Arc::new(MemoryStore::new());
    store
        .save_instance(&ended_row("old", utc(2026, 12, 1, 10, 0), 1000))
        .await
        .unwrap();
    let h = Harness::start_budgeted(
        priced_pool(1),
        FakeProvider::new(Duration::from_secs(5)),
        store.clone(),
        now,
        daily(0.05),
    )
    .await;
    let id = h.submit(1, 1).await;
    let done = h.wait_finished(&id, Duration::from_secs(300)).await;
    assert!(
        all_succeeded(&done),
        "yesterday's spend does not hold today's builds"
    );
    drop(h);

    store
        .save_instance(&ended_row("today", utc(2026, 12, 2, 8, 0), 60))
        .await
        .unwrap();
    let h = Harness::start_budgeted(
        priced_pool(1),
        FakeProvider::new(Duration::from_secs(5)),
        store.clone(),
        now + chrono::Duration::minutes(10),
        daily(0.05),
    )
    .await;
    let id = h.submit(1, 1).await[0];
    tokio::time::sleep(Duration::from_secs(30)).await;
    let why = reason(&h, id).await;
    assert!(why.ends_with(" of 0.05 USD today"), "{why}");
    assert!(spent_in(&why) >= 0.05, "{why}");
    assert!(
        h.provider.launches().is_empty(),
        "held by what the ledger says was spent"
    );
}

#[tokio::test(start_paused = true)]
async fn a_crash_with_workers_running_does_not_reset_the_budget() {
    let wall = utc(2026, 12, 2, 12, 0);
    let store = Arc::new(MemoryStore::new());
    let h = Harness::start_budgeted(
        priced_pool(2),
        FakeProvider::new(Duration::from_secs(3600)),
        store.clone(),
        wall,
        daily(0.10),
    )
    .await;
    // Two workers run long steps; the master dies with them live.
    h.submit(2, 1).await;
    h.wait_workers(Duration::from_secs(60), |w| {
        w.iter().filter(|w| w.state == "busy").count() == 2
    })
    .await;
    tokio::time::sleep(Duration::from_secs(60)).await;
    h.task.abort();
    let live = store.live_instances().await.unwrap();
    assert_eq!(live.len(), 2, "{live:#?}");

    // The next run reaps them (they never come back) and counts them.
    let h = Harness::start_budgeted(
        priced_pool(2),
        FakeProvider::new(Duration::from_secs(1)),
        store.clone(),
        wall + chrono::Duration::minutes(2),
        daily(0.10),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(300)).await;
    let id = h.submit(1, 1).await[0];
    tokio::time::sleep(Duration::from_secs(30)).await;
    let why = reason(&h, id).await;
    assert!(why.ends_with(" of 0.10 USD today"), "{why}");
    assert!(h.provider.launches().is_empty());
}

#[tokio::test(start_paused = true)]
async fn max_spend_rate_holds_the_workers_in_flight() {
    let mut cfg = priced_pool(10);
    cfg.price_per_hour = Some(1.0);
    cfg.max_spend_rate = Some(2.5);
    let h = start(cfg, 120, utc(2026, 12, 1, 9, 0), BudgetConfig::default()).await;
    let ids = h.submit(5, 1).await;
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(
        h.provider.launches().len(),
        2,
        "2 × $1/h fits under $2.50/h, 3 do not"
    );
    let held = reason(&h, ids[4]).await;
    assert_eq!(
        held,
        "spend rate cap reached: 2.00 of 2.50 USD/h in flight (pool pool)"
    );
    let done = h.wait_finished(&ids, Duration::from_secs(3600)).await;
    assert!(all_succeeded(&done), "{done:#?}");
    assert!(h.provider.max_live() <= 2, "never more than 2 live");
}

#[tokio::test(start_paused = true)]
async fn the_masters_rate_cap_counts_every_pool() {
    let mut cfg = priced_pool(10);
    cfg.price_per_hour = Some(1.0);
    let h = start(
        cfg,
        120,
        utc(2026, 12, 1, 9, 0),
        BudgetConfig {
            max_spend_rate: Some(3.0),
            ..BudgetConfig::default()
        },
    )
    .await;
    let ids = h.submit(5, 1).await;
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(h.provider.launches().len(), 3);
    assert_eq!(
        reason(&h, ids[4]).await,
        "spend rate cap reached: 3.00 of 3.00 USD/h in flight"
    );
    let done = h.wait_finished(&ids, Duration::from_secs(3600)).await;
    assert!(all_succeeded(&done));
    assert!(h.provider.max_live() <= 3);
}

fn hourly(teardown: Teardown) -> burst_master::config::PoolConfig {
    let mut cfg = priced_pool(1);
    cfg.idle_timeout = Duration::from_secs(60).into();
    cfg.teardown = teardown;
    cfg.billing = burst_master::config::BillingConfig {
        minimum: Some(Duration::from_secs(3600)),
        increment: Some(Duration::from_secs(3600)),
    };
    cfg
}

#[tokio::test(start_paused = true)]
async fn billing_aware_teardown_keeps_an_idle_worker_until_its_paid_hour_runs_out() {
    let h = start(
        hourly(Teardown::BillingAware),
        10,
        utc(2026, 12, 1, 9, 0),
        BudgetConfig::default(),
    )
    .await;
    let ids = h.submit(1, 1).await;
    h.wait_finished(&ids, Duration::from_secs(120)).await;
    let (launched, _) = h.provider.launches()[0].clone();
    // Far past idle_timeout, still inside the paid hour: kept, and it takes
    // the next build without a launch.
    tokio::time::sleep_until(launched + Duration::from_secs(1800)).await;
    assert_eq!(h.workers().await.len(), 1);
    let ids = h.submit(1, 1).await;
    h.wait_finished(&ids, Duration::from_secs(120)).await;
    assert_eq!(h.provider.launches().len(), 1);
    tokio::time::sleep_until(launched + Duration::from_secs(3500)).await;
    assert_eq!(
        h.workers().await.len(),
        1,
        "kept until a minute before the hour ends"
    );
    tokio::time::sleep_until(launched + Duration::from_secs(3600)).await;
    assert!(
        h.workers().await.is_empty(),
        "stopped before the next hour starts"
    );
    assert_eq!(h.provider.terminated().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn plain_teardown_stops_at_idle_timeout_whatever_the_billing() {
    let h = start(
        hourly(Teardown::Idle),
        10,
        utc(2026, 12, 1, 9, 0),
        BudgetConfig::default(),
    )
    .await;
    let ids = h.submit(1, 1).await;
    h.wait_finished(&ids, Duration::from_secs(120)).await;
    let (launched, _) = h.provider.launches()[0].clone();
    tokio::time::sleep_until(launched + Duration::from_secs(300)).await;
    assert!(h.workers().await.is_empty());
}

fn level_line(text: &str) -> Option<String> {
    text.lines()
        .find(|l| l.starts_with("burst_budget_level{budget=\"global\",period=\"day\"}"))
        .map(str::to_owned)
}

#[tokio::test(start_paused = true)]
async fn at_the_warning_share_a_budget_warns_and_still_launches() {
    let h = start(priced_pool(2), 90, utc(2026, 12, 1, 9, 0), daily(0.125)).await;
    assert_eq!(
        level_line(&h.metrics_text().await).as_deref(),
        Some("burst_budget_level{budget=\"global\",period=\"day\"} 0")
    );
    // About 100 s of a worker at $0.001/s: over 80 % of $0.125, under it.
    let first = h.submit(1, 1).await;
    h.wait_finished(&first, Duration::from_secs(300)).await;
    h.wait_workers(Duration::from_secs(60), |w| w.is_empty())
        .await;
    let text = h.metrics_text().await;
    assert_eq!(
        level_line(&text).as_deref(),
        Some("burst_budget_level{budget=\"global\",period=\"day\"} 1"),
        "{text}"
    );
    let pools = h.handle.pools().await.unwrap();
    let b = &pools[0].budgets[0];
    assert_eq!((b.budget.as_str(), b.level.as_str()), ("global", "warning"));
    assert!(b.message.starts_with("budget nearly reached: 0.1"), "{b:?}");
    // A warning holds nothing back.
    let second = h.submit(1, 1).await;
    let done = h.wait_finished(&second, Duration::from_secs(300)).await;
    assert!(all_succeeded(&done));
    assert_eq!(h.provider.launches().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_monthly_budget_counts_the_month_and_not_the_month_before() {
    let store = Arc::new(MemoryStore::new());
    // November: $10. December 1st: $0.06 of a $0.05 monthly budget.
    store
        .save_instance(&ended_row("november", utc(2026, 11, 20, 10, 0), 10_000))
        .await
        .unwrap();
    store
        .save_instance(&ended_row("december", utc(2026, 12, 1, 10, 0), 60))
        .await
        .unwrap();
    let monthly = BudgetConfig {
        monthly: Some(0.05),
        ..BudgetConfig::default()
    };
    let h = Harness::start_budgeted(
        priced_pool(1),
        FakeProvider::new(Duration::from_secs(5)),
        store,
        utc(2026, 12, 3, 9, 0),
        monthly,
    )
    .await;
    let id = h.submit(1, 1).await[0];
    tokio::time::sleep(Duration::from_secs(30)).await;
    let why = reason(&h, id).await;
    assert!(
        why.starts_with("budget reached: 0.06 of 0.05 USD this month"),
        "{why}"
    );
    assert!(h.provider.launches().is_empty());
}
