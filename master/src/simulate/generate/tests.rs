use std::path::Path;

use super::*;
use crate::simulate::{default_start, Trace};

const KINDS: [Kind; 3] = [Kind::Bursty, Kind::Nightly, Kind::Steady];

#[test]
fn the_bundled_traces_are_the_generators_output_for_seed_1() {
    for kind in KINDS {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../examples/traces")
            .join(format!("{}.csv", kind.name()));
        let bundled = Trace::read(&path)
            .and_then(|t| t.timed(default_start(), &path))
            .unwrap();
        let strip = |jobs: Vec<Timed>| -> Vec<_> {
            jobs.into_iter()
                .map(|j| (j.at, j.labels, j.duration, j.matrix))
                .collect()
        };
        assert!(
            strip(bundled) == strip(generate(kind, 1)),
            "{} differs: run `burst simulate --generate {} --seed 1`",
            path.display(),
            kind.name()
        );
    }
}

#[test]
fn each_trace_is_one_week_and_the_same_for_a_seed() {
    for kind in KINDS {
        let jobs = generate(kind, 9);
        assert_eq!(jobs, generate(kind, 9));
        assert_ne!(jobs, generate(kind, 10));
        let last = jobs.last().map(|j| j.at).unwrap_or_default();
        assert!(
            last < TRACE_SPAN && last > TRACE_SPAN - Duration::from_secs(DAY),
            "{kind:?}: {last:?}"
        );
        assert!(jobs.windows(2).all(|w| w[0].at <= w[1].at));
    }
}

#[test]
fn the_bursty_week_has_its_spike_lull_and_trains_on_weekdays_only() {
    let jobs = generate(Kind::Bursty, 1);
    let per_hour = |day: u64, hour: u64| {
        let from = Duration::from_secs(day * DAY + hour * 3600);
        let to = from + Duration::from_secs(3600);
        jobs.iter().filter(|j| j.at >= from && j.at < to).count()
    };
    for day in 0..5 {
        assert!(
            per_hour(day, 9) > 4 * per_hour(day, 12),
            "day {day}: spike over lull"
        );
        assert!(per_hour(day, 9) > 30, "day {day}");
    }
    let weekend: usize = (0..24).map(|h| per_hour(5, h)).sum();
    let monday: usize = (0..24).map(|h| per_hour(0, h)).sum();
    assert!(weekend * 5 < monday, "{weekend} vs {monday}");
    // Merge trains: bursts of 8 or more jobs within two minutes.
    let trains = jobs
        .windows(8)
        .filter(|w| w[7].at - w[0].at <= Duration::from_secs(120))
        .count();
    assert!(trains > 10, "{trains}");
}
