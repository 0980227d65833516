use std::time::Duration;

use super::*;
use crate::simulate::{BuildSpan, Timeline, WorkerSpan};

fn s(secs: u64) -> Duration {
    Duration::from_secs(secs)
}

/// Two pools; pool 0 has a worker that booted 0-60, ran 60-160 and
/// 200-300, and stopped at 400; pool 1's worker never connected.
fn timeline() -> Timeline {
    let build = |id, submitted, started: Option<(usize, u64)>| BuildSpan {
        id,
        job: 0,
        submitted: s(submitted),
        started: started.map(|(p, at)| (p, s(at))),
        finished: started.map(|(_, at)| s(at + 100)),
    };
    Timeline {
        pools: vec!["a".into(), "b".into()],
        workers: vec![
            WorkerSpan {
                id: "a-1".into(),
                pool: 0,
                launched: s(0),
                connected: Some(s(60)),
                ended: s(400),
                busy: vec![(s(60), s(160)), (s(200), s(300))],
            },
            WorkerSpan {
                id: "b-1".into(),
                pool: 1,
                launched: s(100),
                connected: None,
                ended: s(220),
                busy: vec![],
            },
        ],
        builds: vec![
            build(1, 0, Some((0, 60))),
            build(2, 190, Some((0, 200))),
            build(3, 300, None),
        ],
        failed_launches: vec![0, 2],
        starts: vec![],
        end: s(3600),
    }
}

#[test]
fn instance_time_splits_into_booting_busy_and_idle() {
    let r = report("p", &timeline(), &[Some(per_second(36.0)), None]);
    let a = &r.pools[0];
    assert_eq!(
        (a.booting_secs, a.busy_secs, a.idle_secs),
        (60.0, 200.0, 140.0)
    );
    // 400 s at $36/h, over two builds.
    assert_eq!((a.cost, a.cost_per_build), (4.0, 2.0));
    let b = &r.pools[1];
    assert_eq!(
        (b.booting_secs, b.idle_secs, b.launches, b.failed_launches),
        (120.0, 0.0, 1, 2)
    );
    assert_eq!(b.cost, 0.0, "no price: no cost");
    assert_eq!(r.total.launches, 2);
    assert_eq!(r.total.booting_secs, 180.0);
    assert_eq!(r.unfinished, 1);
    assert_eq!(r.notes.len(), 1);
    assert!(r.notes[0].contains("\"b\""), "{:?}", r.notes);
}

#[test]
fn waits_are_nearest_rank_percentiles() {
    assert_eq!(percentile(&[], 0.95), 0);
    assert_eq!(percentile(&[5], 0.5), 5);
    let v: Vec<u64> = (1..=100).collect();
    assert_eq!((percentile(&v, 0.5), percentile(&v, 0.95)), (50, 95));
    let r = report("p", &timeline(), &[None, None]);
    // Waits 60 and 10 s.
    assert_eq!(
        (
            r.total.wait_p50_secs,
            r.total.wait_p95_secs,
            r.total.wait_max_secs
        ),
        (10.0, 60.0, 60.0)
    );
}

#[test]
fn text_shows_a_row_per_pool_and_the_total() {
    let r = report("mine", &timeline(), &[Some(per_second(36.0)), None]);
    let text = text(&r);
    assert!(text.starts_with("policy: mine\n"), "{text}");
    assert!(text.contains("\na  "), "{text}");
    assert!(text.contains("\ntotal  "), "{text}");
    assert!(
        text.contains("note: pool \"b\" has no price_per_hour"),
        "{text}"
    );
    let table = compare_text(&[
        r.clone(),
        report("other", &timeline(), &[Some(per_second(36.0)), None]),
    ]);
    assert_eq!(
        table
            .lines()
            .filter(|l| l.starts_with("mine") || l.starts_with("other"))
            .count(),
        2
    );
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["total"]["busy_secs"], 200.0);
}

/// A price billed per second, as a pool of one's own machines is.
fn per_second(price_per_hour: f64) -> crate::cost::Priced {
    crate::cost::Priced {
        price_per_hour,
        billing: crate::cost::Billing::PER_SECOND,
    }
}
