//! A small scenario worked out by hand: $3.60/h is $0.001 a second, billed
//! per second with a 60 s minimum (EC2 Linux).

use super::*;

const S: Millis = 1_000;

fn row(worker: &str, pool: &str, price: Option<f64>, connected: Millis, ended: Millis) -> Instance {
    let mut r = crate::cost::fixtures::row(worker, pool, price, (0, Some(connected), Some(ended)));
    r.provider = "ec2".into();
    r
}

fn ran(build: BuildId, worker: &str, from: Millis, to: Option<Millis>) -> WorkerAttempt {
    WorkerAttempt {
        build,
        builder: format!("builder{build}"),
        labels: vec!["linux".into()],
        worker_id: worker.into(),
        started_at: from,
        finished_at: to,
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

fn scenario() -> Attribution {
    let instances = [
        // Boots 10 s, runs build 1 for 30 s and build 2 for 20 s, idles
        // 40 s in all, billed 100 s: $0.100.
        row("a", "p", Some(3.6), 10 * S, 100 * S),
        // A spare nobody used: 20 s, billed the 60 s minimum.
        row("b", "p", Some(3.6), 5 * S, 20 * S),
        // No price recorded: costs nothing.
        row("c", "p", None, S, 30 * S),
        // Another pool: 2 s boot, 3 s of build 3, billed 60 s.
        row("d", "q", Some(3.6), 2 * S, 5 * S),
    ];
    let attempts = [
        ran(2, "a", 50 * S, Some(70 * S)),
        ran(1, "a", 10 * S, Some(40 * S)),
        ran(9, "c", S, Some(30 * S)),
        ran(3, "d", 2 * S, Some(5 * S)),
    ];
    attribute(&instances, &attempts, 1_000 * S)
}

#[test]
fn boot_goes_to_the_first_build_and_idle_is_split_among_the_builds_served() {
    let a = scenario();
    let b1 = a.builds[&1];
    assert!(
        close(b1.run, 0.030) && close(b1.boot, 0.010) && close(b1.idle, 0.020),
        "{b1:?}"
    );
    assert!(close(b1.total(), 0.060));
    let b2 = a.builds[&2];
    assert!(
        close(b2.run, 0.020) && close(b2.boot, 0.0) && close(b2.idle, 0.020),
        "{b2:?}"
    );
    // 57 s of the 60 s minimum went unused: idle, all of it build 3's.
    let b3 = a.builds[&3];
    assert!(
        close(b3.run, 0.003) && close(b3.boot, 0.002) && close(b3.idle, 0.055),
        "{b3:?}"
    );
    assert!(
        !a.builds.contains_key(&9),
        "an unpriced worker's build costs nothing"
    );
}

#[test]
fn unused_spares_are_unattributed_and_everything_adds_up_to_the_bill() {
    let a = scenario();
    let p = a.pools["p"];
    assert!(close(p.spend, 0.160), "{p:?}");
    assert!(
        close(p.run, 0.050) && close(p.boot, 0.010) && close(p.idle, 0.040),
        "{p:?}"
    );
    assert!(close(p.unattributed, 0.060), "{p:?}");
    assert!(close(p.instance_hours, 160.0 / 3600.0), "{p:?}");
    assert_eq!(p.workers, 2);
    let billed: f64 = a.pools.values().map(|p| p.spend).sum();
    let attributed: f64 = a.builds.values().map(BuildCost::total).sum();
    let unattributed: f64 = a.pools.values().map(|p| p.unattributed).sum();
    assert!(close(billed, 0.220));
    assert!(close(attributed + unattributed, billed));
}

#[test]
fn a_running_attempt_counts_up_to_now() {
    let mut live = row("a", "p", Some(3.6), 10 * S, 0);
    live.terminated_at = None;
    let a = attribute(&[live], &[ran(1, "a", 10 * S, None)], 100 * S);
    let b = a.builds[&1];
    assert!(
        close(b.run, 0.090) && close(b.boot, 0.010) && close(b.idle, 0.0),
        "{b:?}"
    );
}
