use std::path::Path;
use std::time::Duration;

use chrono::TimeZone;

use super::*;

fn parse(text: &str, name: &str) -> Result<Trace, String> {
    Trace::parse(text, Path::new(name)).map_err(|e| e.to_string())
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[test]
fn csv_reads_seconds_times_labels_durations_and_matrices() {
    let trace = parse(
        "# a comment\nsubmit,labels,duration,matrix\n0,linux,300,1\n\
         2026-11-30T00:10:00Z,linux docker,5m,\n12.5, linux;big ,90,4\n",
        "t.csv",
    )
    .unwrap();
    let start = Utc.with_ymd_and_hms(2026, 11, 30, 0, 0, 0).unwrap();
    let jobs = trace.timed(start, Path::new("t.csv")).unwrap();
    let got: Vec<_> = jobs
        .iter()
        .map(|j| (j.line, j.at, j.labels.join("+"), j.duration, j.matrix))
        .collect();
    assert_eq!(
        got,
        vec![
            (3, secs(0), "linux".into(), secs(300), 1),
            (
                5,
                Duration::from_millis(12_500),
                "linux+big".into(),
                secs(90),
                4
            ),
            (4, secs(600), "linux+docker".into(), secs(300), 1),
        ]
    );
    assert_eq!(
        trace.first_time(),
        Some(start + chrono::Duration::minutes(10))
    );
}

#[test]
fn columns_may_come_in_any_order_and_matrix_may_be_left_out() {
    let trace = parse("duration,submit,labels\n60,5,linux\n", "t.csv").unwrap();
    assert_eq!(trace.jobs[0].submit, Submit::Offset(secs(5)));
    assert_eq!(trace.jobs[0].matrix, 1);
}

#[test]
fn jsonl_reads_numbers_and_strings() {
    let text = "{\"submit\": 0, \"labels\": [\"linux\"], \"duration\": 300}\n\n\
                {\"submit\": \"2026-11-30T01:00:00+01:00\", \"labels\": [], \"duration\": \"2m\", \"matrix\": 3}\n";
    let trace = parse(text, "t.jsonl").unwrap();
    assert_eq!(trace.jobs.len(), 2);
    assert_eq!(trace.jobs[1].line, 3);
    assert_eq!(trace.jobs[1].duration, secs(120));
    assert_eq!(
        trace.jobs[1].submit,
        Submit::At(Utc.with_ymd_and_hms(2026, 11, 30, 0, 0, 0).unwrap())
    );
    // Sniffed from the first line when the name says nothing.
    assert!(parse(text, "trace.txt").is_ok());
}

#[test]
fn bad_csv_lines_are_named_by_number_and_column() {
    let header = "submit,labels,duration\n";
    let cases = [
        ("0,linux,300\nsoon,linux,300\n", 3, "`submit`"),
        ("0,linux,300\n0,linux,300\n1,linux,-5\n", 4, "`duration`"),
        ("0,linux,long\n", 2, "`duration`"),
        ("0,linux,300,1\n", 2, ""),
    ];
    for (body, line, key) in cases {
        let err = parse(&format!("{header}{body}"), "t.csv").unwrap_err();
        assert!(
            err.starts_with(&format!("failed to read trace t.csv: line {line}: {key}")),
            "{body:?}: {err}"
        );
    }
    let err = parse("submit,labels,duration,matrix\n0,linux,300,0\n", "t.csv").unwrap_err();
    assert!(err.contains("line 2: `matrix`: must be 1 to 1000"), "{err}");
    let err = parse("submit,labels,time\n0,linux,300\n", "t.csv").unwrap_err();
    assert!(err.contains("line 1: unknown column \"time\""), "{err}");
    let err = parse("submit,labels\n0,linux\n", "t.csv").unwrap_err();
    assert!(
        err.contains("line 1: the header has no `duration` column"),
        "{err}"
    );
    let err = parse("submit,labels,duration\n", "t.csv").unwrap_err();
    assert!(err.contains("holds no jobs"), "{err}");
}

#[test]
fn bad_jsonl_lines_are_named_by_number_and_key() {
    let ok = "{\"submit\": 0, \"labels\": [\"linux\"], \"duration\": 300}\n";
    let cases = [
        (
            "{\"submit\": 0, \"labels\": [\"linux\"], \"duration\": 300",
            2,
            "",
        ),
        (
            "{\"submit\": 0, \"duration\": 300, \"colour\": 1}",
            2,
            "unknown field `colour`",
        ),
        ("{\"submit\": \"noon\", \"duration\": 300}", 2, "`submit`"),
        ("{\"submit\": 1, \"duration\": \"ages\"}", 2, "`duration`"),
        (
            "{\"submit\": 1, \"duration\": 3, \"matrix\": 5000}",
            2,
            "`matrix`",
        ),
    ];
    for (bad, line, what) in cases {
        let err = parse(&format!("{ok}{bad}\n{ok}"), "t.jsonl").unwrap_err();
        assert!(
            err.starts_with(&format!("failed to read trace t.jsonl: line {line}: "))
                && err.contains(what),
            "{bad}: {err}"
        );
    }
}

#[test]
fn a_time_before_the_start_names_its_line() {
    let trace = parse(
        "submit,labels,duration\n2026-11-29T23:00:00Z,linux,60\n",
        "t.csv",
    )
    .unwrap();
    let start = Utc.with_ymd_and_hms(2026, 11, 30, 0, 0, 0).unwrap();
    let err = trace
        .timed(start, Path::new("t.csv"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("line 2: `submit`") && err.contains("before"),
        "{err}"
    );
}

#[test]
fn a_missing_file_is_named() {
    let err = Trace::read(Path::new("/nonexistent/t.csv")).unwrap_err();
    assert_eq!(err.to_string(), "failed to read trace /nonexistent/t.csv");
    assert!(std::error::Error::source(&err).is_some());
}

#[test]
fn generated_csv_reads_back() {
    let jobs = crate::simulate::generate(crate::simulate::Kind::Steady, 3);
    let trace = parse(&to_csv(&jobs), "g.csv").unwrap();
    let start = crate::simulate::default_start();
    let back = trace.timed(start, Path::new("g.csv")).unwrap();
    assert_eq!(back.len(), jobs.len());
    assert!(back
        .iter()
        .zip(&jobs)
        .all(|(a, b)| a.at == b.at && a.duration == b.duration && a.matrix == b.matrix));
}
