//! Label cardinality: however many builds and workers pass through, the
//! series are the same set, and no id is ever a label value.

use std::collections::BTreeSet;
use std::time::Duration;

use super::{BuildResult, Fleet, LaunchFailure, Metrics, Operation, PoolFleet};
use crate::model::{Build, BuildState, Instance, InstanceState};

const ALLOWED_LABELS: &[&str] = &[
    "budget",
    "period",
    "builder",
    "result",
    "pool",
    "provider",
    "reason",
    "operation",
    "state",
    "host",
    "le",
    // Triggers: config names (source, reporter) and fixed words.
    "source",
    "reporter",
    "kind",
    "outcome",
    // The GitHub runner manager: fixed endpoint names and answer classes.
    "endpoint",
    "status",
];

fn build(id: i64, state: BuildState) -> Build {
    Build {
        id,
        submit_id: format!("submit-{id}"),
        builder: "hello".into(),
        cell: Default::default(),
        params: Default::default(),
        labels: vec![],
        steps: vec![],
        state,
        reason: None,
        retries: 1,
        created_at: 1_000,
        started_at: Some(2_000),
        finished_at: Some(5_000),
        attempts: vec![],
        submitted_by: Some("ci".into()),
    }
}

fn worker(id: &str) -> Instance {
    Instance {
        worker_id: id.into(),
        pool: "ec2".into(),
        provider: "ec2".into(),
        provider_id: Some(format!("i-{id}")),
        state: InstanceState::Gone,
        details: serde_json::json!({ "price_per_hour": 0.36 }),
        error: None,
        launched_at: 0,
        connected_at: Some(1_500),
        terminated_at: Some(600_000),
        ended_by: None,
        resume_hash: None,
        resume_prev_hash: None,
    }
}

/// Records `n` builds and workers, each with its own id.
fn exercise(m: &Metrics, n: usize) -> String {
    for i in 0..n {
        let id = format!("ec2-w{i:04}");
        let row = worker(&id);
        m.worker_launched(&row.pool, &row.provider);
        m.worker_connected(&row);
        m.launch_failed(&row.pool, &row.provider, LaunchFailure::transient);
        m.worker_terminated(&row.pool, &row.provider);
        m.worker_retired(&row, 0);
        m.orphan_reaped(&row.pool);
        m.provider_call(
            "ec2",
            "ec2",
            Operation::launch,
            Duration::from_millis(40),
            Some(LaunchFailure::permanent),
        );
        m.store_write("save_build", Duration::from_millis(1), true);
        m.log_received(100);
        m.artifact_received(10);
        m.cache_request("b", "hit");
        m.cache_restored("b", 10);
        m.cache_saved("b", 10);
        let b = build(1_000 + i as i64, BuildState::Succeeded);
        m.build_submitted(&b.builder);
        m.build_started("ec2", b.created_at, 2_000);
        m.build_finished(&b);
        m.trigger_change("web", "built");
        m.hook_refused("github", "signature");
        m.poll_done("repo", true);
        m.report_done("status", "delivered");
        m.github_call("generate_jitconfig", "2xx");
        m.github_job("launched");
        m.github_runner_removed("orphan");
    }
    m.encode(Fleet {
        pools: vec![PoolFleet {
            pool: "ec2".into(),
            workers: vec![("idle", 1)],
            ..Default::default()
        }],
        budgets: vec![super::BudgetFleet {
            budget: "global".into(),
            period: "day",
            spent: 1.0,
            limit: 2.0,
            level: 0,
        }],
    })
}

fn series(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.rsplit_once(' ').map(|(s, _)| s.to_owned()))
        .collect()
}

fn label_names(series: &str) -> Vec<String> {
    let Some((_, labels)) = series.split_once('{') else {
        return vec![];
    };
    labels
        .trim_end_matches('}')
        .split(',')
        .filter_map(|kv| kv.split_once('=').map(|(k, _)| k.to_owned()))
        .collect()
}

#[test]
fn series_do_not_grow_with_builds_or_workers() {
    let one = exercise(&Metrics::new(), 1);
    let many = exercise(&Metrics::new(), 50);
    assert_eq!(series(&one), series(&many), "{many}");
    for s in series(&many) {
        for name in label_names(&s) {
            assert!(ALLOWED_LABELS.contains(&name.as_str()), "{name} in {s}");
        }
        assert!(
            !s.contains("ec2-w0") && !s.contains("i-ec2"),
            "an id in {s}"
        );
        assert!(
            !s.contains("1001") && !s.contains("submit-"),
            "an id in {s}"
        );
    }
}

#[test]
fn counters_histograms_and_cost_read_as_recorded() {
    let text = exercise(&Metrics::new(), 2);
    let value = |series: &str| {
        text.lines()
            .find_map(|l| {
                l.strip_prefix(series)?
                    .strip_prefix(' ')?
                    .parse::<f64>()
                    .ok()
            })
            .unwrap_or_else(|| panic!("{series} in\n{text}"))
    };
    assert_eq!(
        value("burst_builds_finished_total{builder=\"hello\",result=\"succeeded\"}"),
        2.0
    );
    assert_eq!(value("burst_queue_wait_seconds_count{pool=\"ec2\"}"), 2.0);
    // Submit at 1 s, first step at 2 s: one second each.
    assert_eq!(value("burst_queue_wait_seconds_sum{pool=\"ec2\"}"), 2.0);
    assert_eq!(
        value("burst_build_duration_seconds_sum{builder=\"hello\"}"),
        6.0
    );
    assert_eq!(
        value("burst_worker_startup_seconds_sum{pool=\"ec2\",provider=\"ec2\"}"),
        3.0
    );
    assert_eq!(value("burst_log_received_bytes_total"), 200.0);
    assert_eq!(
        value("burst_store_write_errors_total{operation=\"save_build\"}"),
        2.0
    );
    assert_eq!(
        value(
            "burst_provider_call_errors_total{pool=\"ec2\",provider=\"ec2\",operation=\"launch\",reason=\"permanent\"}"
        ),
        2.0
    );
    assert_eq!(value("burst_workers{pool=\"ec2\",state=\"idle\"}"), 1.0);
    // Retired cost is kept (ten minutes at 0.36/h, twice) but only the
    // fleet's figure is exposed: the scheduler adds the two.
    let m = Metrics::new();
    exercise(&m, 2);
    assert!((m.retired_cost("ec2") - 0.12).abs() < 1e-9);
    assert_eq!(BuildResult::of(BuildState::Running), None);
    // The encoder ends help texts with a full stop; ours must not add one.
    assert!(!text.contains("..\n"), "{text}");
}

#[test]
fn the_fleet_shows_pools_and_hosts_as_reported() {
    let m = Metrics::new();
    let text = m.encode(Fleet {
        pools: vec![PoolFleet {
            pool: "machines".into(),
            workers: vec![("idle", 2), ("busy", 1)],
            queued: 4,
            sessions: 3,
            backoff_seconds: 7.5,
            cost_dollars: 0.25,
            spend_rate: 1.5,
            hosts: vec![
                super::HostFleet {
                    host: "mac1".into(),
                    backoff_seconds: 30.0,
                },
                super::HostFleet {
                    host: "mac2".into(),
                    backoff_seconds: 0.0,
                },
            ],
        }],
        budgets: vec![super::BudgetFleet {
            budget: "machines".into(),
            period: "month",
            spent: 32.5,
            limit: 40.0,
            level: 1,
        }],
    });
    for line in [
        "burst_workers{pool=\"machines\",state=\"idle\"} 2",
        "burst_workers{pool=\"machines\",state=\"busy\"} 1",
        "burst_builds_queued{pool=\"machines\"} 4",
        "burst_sessions_connected{pool=\"machines\"} 3",
        "burst_pool_backoff_seconds{pool=\"machines\"} 7.5",
        "burst_host_backoff_seconds{pool=\"machines\",host=\"mac1\"} 30",
        "burst_host_backoff_seconds{pool=\"machines\",host=\"mac2\"} 0",
        "burst_cost_estimated_dollars_total{pool=\"machines\"} 0.25",
        "# TYPE burst_cost_estimated_dollars_total counter",
        "burst_pool_spend_rate_dollars_per_hour{pool=\"machines\"} 1.5",
        "burst_budget_spent_dollars{budget=\"machines\",period=\"month\"} 32.5",
        "burst_budget_limit_dollars{budget=\"machines\",period=\"month\"} 40",
        "burst_budget_level{budget=\"machines\",period=\"month\"} 1",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(line)),
            "{line} in\n{text}"
        );
    }
    // A pool that is gone from the fleet is gone from the next scrape.
    let text = m.encode(Fleet::default());
    assert!(!text.contains("machines"), "{text}");
}

/// The README's metrics reference table names every family the master
/// exposes, and nothing it does not.
#[test]
fn the_readme_table_lists_every_family() {
    let readme = include_str!("../../../README.md");
    let documented: BTreeSet<String> = readme
        .lines()
        .filter_map(|l| l.strip_prefix("| `burst_"))
        .filter_map(|l| l.split('`').next())
        .map(|n| format!("burst_{}", n.trim_end_matches("_total")))
        .collect();
    let text = exercise(&Metrics::new(), 1);
    let exposed: BTreeSet<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .map(|n| n.trim_end_matches("_total").to_owned())
        .collect();
    assert!(!exposed.is_empty(), "{text}");
    let missing: Vec<_> = exposed.difference(&documented).collect();
    assert!(missing.is_empty(), "not in the README table: {missing:?}");
    let stale: Vec<_> = documented.difference(&exposed).collect();
    assert!(
        stale.is_empty(),
        "in the README table, not exposed: {stale:?}"
    );
}
