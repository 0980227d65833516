use super::*;

const S: Millis = 1_000;

/// $3.60/h, per second: $0.001 a second.
fn row(worker: &str, pool: &str, ended: Millis) -> Instance {
    crate::cost::fixtures::row(worker, pool, Some(3.6), (0, Some(0), Some(ended)))
}

fn ran(
    build: BuildId,
    builder: &str,
    labels: &[&str],
    worker: &str,
    from: Millis,
    to: Millis,
) -> WorkerAttempt {
    WorkerAttempt {
        build,
        builder: builder.into(),
        labels: labels.iter().map(|l| l.to_string()).collect(),
        worker_id: worker.into(),
        started_at: from,
        finished_at: Some(to),
    }
}

fn fixture() -> (Vec<Instance>, Vec<WorkerAttempt>) {
    let instances = vec![
        // 10 s of build 1, 30 s of build 2, 20 s idle: $0.060.
        row("a", "linux", 60 * S),
        // 40 s of build 3, nothing else: $0.040.
        row("b", "win", 40 * S),
        // Never used: $0.010.
        row("c", "linux", 10 * S),
    ];
    let attempts = vec![
        ran(1, "app", &["linux"], "a", 0, 10 * S),
        ran(2, "app", &["linux", "big"], "a", 10 * S, 40 * S),
        ran(3, "win-app", &["windows"], "b", 0, 40 * S),
    ];
    (instances, attempts)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn by_pool_the_rows_are_what_each_pool_was_billed() {
    let (i, a) = fixture();
    let r = report(&i, &a, GroupBy::Pool, (0, 100 * S), "USD");
    assert_eq!(r.rows.len(), 2);
    let linux = &r.rows[0];
    assert_eq!(linux.key, "linux");
    assert!(close(linux.spend, 0.070), "{linux:?}");
    // 20 s idle on a and 10 s of spare c, of 70 s billed.
    assert!(close(linux.idle_share, 30.0 / 70.0), "{linux:?}");
    assert!(close(linux.instance_hours.unwrap(), 70.0 / 3600.0));
    assert_eq!(linux.builds, 2);
    // Builds 1 and 2 split the 20 s idle: $0.020 and $0.040.
    assert!(close(linux.cost_per_build_p50.unwrap(), 0.020), "{linux:?}");
    assert!(close(linux.cost_per_build_p95.unwrap(), 0.040), "{linux:?}");
    assert!(close(r.total.spend, 0.110));
    assert_eq!(r.total.builds, 3);
}

#[test]
fn by_builder_unused_spares_get_a_row_of_their_own_and_the_total_adds_up() {
    let (i, a) = fixture();
    let r = report(&i, &a, GroupBy::Builder, (0, 100 * S), "USD");
    let keys: Vec<_> = r.rows.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys, ["app", "win-app", UNATTRIBUTED]);
    assert!(close(r.rows[0].spend, 0.060));
    assert!(close(r.rows[0].idle_share, 20.0 / 60.0));
    assert!(close(r.rows[2].spend, 0.010));
    let sum: f64 = r.rows.iter().map(|r| r.spend).sum();
    assert!(close(sum, r.total.spend));
}

#[test]
fn by_label_a_build_counts_under_each_of_its_labels() {
    let (i, a) = fixture();
    let r = report(&i, &a, GroupBy::Label, (0, 100 * S), "USD");
    let big = r.rows.iter().find(|r| r.key == "big").unwrap();
    assert_eq!(big.builds, 1);
    assert!(close(big.spend, 0.040));
    let linux = r.rows.iter().find(|r| r.key == "linux").unwrap();
    assert_eq!(linux.builds, 2);
}

#[test]
fn nothing_in_the_window_is_an_empty_report() {
    let r = report(&[], &[], GroupBy::Pool, (0, 1), "EUR");
    assert!(r.rows.is_empty());
    assert_eq!(r.total.spend, 0.0);
    assert_eq!(r.total.cost_per_build_p50, None);
}
