use std::time::Duration;

use super::*;
use crate::simulate::{BuildSpan, WorkerSpan};

fn s(secs: u64) -> Duration {
    Duration::from_secs(secs)
}

fn timeline() -> Timeline {
    Timeline {
        pools: vec!["a".into()],
        workers: vec![WorkerSpan {
            id: "a-1".into(),
            pool: 0,
            launched: s(60),
            connected: Some(s(120)),
            ended: s(400),
            busy: vec![(s(120), s(300))],
        }],
        builds: vec![BuildSpan {
            id: 1,
            job: 0,
            submitted: s(60),
            started: Some((0, s(120))),
            finished: Some(s(300)),
        }],
        failed_launches: vec![0],
        starts: vec![],
        end: s(480),
    }
}

#[test]
fn samples_count_workers_by_state_and_the_queue() {
    let got: Vec<_> = samples(&timeline(), s(60))
        .into_iter()
        .map(|(at, s)| (at.as_secs(), s.booting, s.idle, s.busy, s.queued))
        .collect();
    assert_eq!(
        got,
        vec![
            (0, 0, 0, 0, 0),
            (60, 1, 0, 0, 1),
            (120, 0, 0, 1, 0),
            (180, 0, 0, 1, 0),
            (240, 0, 0, 1, 0),
            (300, 0, 1, 0, 0),
            (360, 0, 1, 0, 0),
            (420, 0, 0, 0, 0),
            (480, 0, 0, 0, 0),
        ]
    );
}

#[test]
fn the_chart_is_an_svg_with_a_legend() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.svg");
    write(&path, "a test", &timeline()).unwrap();
    let svg = std::fs::read_to_string(&path).unwrap();
    assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(200)]);
    for label in [
        "busy workers",
        "idle workers",
        "booting workers",
        "queued builds",
        "a test",
    ] {
        assert!(svg.contains(label), "{label}");
    }
    let err = write(Path::new("/nonexistent/dir/c.svg"), "x", &timeline());
    assert!(err.is_err());
}
