//! Human output: tables, build details, tags and result lines. Pure functions
//! of the API's records (and "now"), so they are tested without a master.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, UNIX_EPOCH};

use crate::model::{AttemptState, Build, BuildDetail, Millis, StepRun, StepState, WorkerView};

/// `1.2s`, `2m03s`, `1h02m`; negative spans (clock skew) show as 0.
pub fn duration_ms(ms: i64) -> String {
    let ms = ms.max(0);
    if ms < 60_000 {
        return format!("{:.1}s", ms as f64 / 1000.0);
    }
    let secs = ms / 1000;
    if secs < 3600 {
        return format!("{}m{:02}s", secs / 60, secs % 60);
    }
    format!("{}h{:02}m", secs / 3600, (secs % 3600) / 60)
}

pub fn timestamp(ms: Millis) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_seconds(t).to_string()
}

pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// `greeting=hello,os=linux` (`sep` between pairs).
pub fn cell(cell: &BTreeMap<String, String>, sep: &str) -> String {
    cell.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(sep)
}

/// The prefix of a followed build's log lines: `[12 greeting=hello]`.
pub fn tag(build: &Build) -> String {
    if build.cell.is_empty() {
        format!("[{}]", build.id)
    } else {
        format!("[{} {}]", build.id, cell(&build.cell, " "))
    }
}

/// Tags padded to one width, each followed by a space, in input order.
pub fn padded_tags(builds: &[Build]) -> Vec<String> {
    let tags: Vec<String> = builds.iter().map(tag).collect();
    let width = tags.iter().map(|t| t.chars().count()).max().unwrap_or(0);
    tags.into_iter().map(|t| format!("{t:<width$} ")).collect()
}

/// How long a finished build ran (from its start, or its creation if it
/// never started).
fn run_time(b: &Build) -> Option<i64> {
    b.finished_at
        .map(|f| f - b.started_at.unwrap_or(b.created_at))
}

/// `build 12 (greeting=hello): succeeded in 1.2s`, plus the reason when the
/// build did not succeed.
pub fn result_line(b: &Build) -> String {
    let mut s = format!("build {}", b.id);
    if !b.cell.is_empty() {
        let _ = write!(s, " ({})", cell(&b.cell, ", "));
    }
    let _ = write!(s, ": {}", b.state.as_str());
    if let Some(ms) = run_time(b) {
        let _ = write!(s, " in {}", duration_ms(ms));
    }
    if b.state != crate::model::BuildState::Succeeded {
        if let Some(reason) = &b.reason {
            let _ = write!(s, ": {}", one_line(reason));
        }
    }
    s
}

/// Duration when finished, else time spent so far in the current state.
fn build_time(b: &Build, now: Millis) -> String {
    match run_time(b) {
        Some(ms) => duration_ms(ms),
        None => duration_ms(now - b.started_at.unwrap_or(b.created_at)),
    }
}

pub fn builds_table(builds: &[Build], now: Millis) -> String {
    if builds.is_empty() {
        return "no builds\n".to_owned();
    }
    let rows = builds
        .iter()
        .map(|b| {
            vec![
                b.id.to_string(),
                b.builder.clone(),
                dash(cell(&b.cell, ",")),
                b.state.as_str().to_owned(),
                b.attempts.len().to_string(),
                build_time(b, now),
                b.reason.as_deref().map(one_line).unwrap_or_default(),
            ]
        })
        .collect::<Vec<_>>();
    table(
        &[
            "ID", "BUILDER", "CELL", "STATE", "ATTEMPTS", "TIME", "REASON",
        ],
        &rows,
    )
}

pub fn build_details(b: &Build, now: Millis) -> String {
    details(b, None, now)
}

/// `burst build ID`: the details plus the build's cost, when known.
pub fn build_detail(d: &BuildDetail, now: Millis) -> String {
    let cost = match (d.cost, d.estimated_cost) {
        (Some(c), _) => Some(format!(
            "${:.4} (run ${:.4}, boot ${:.4}, idle ${:.4})",
            c.total(),
            c.run,
            c.boot,
            c.idle
        )),
        (None, Some(total)) => Some(format!("${total:.4}")),
        (None, None) => None,
    };
    details(&d.build, cost, now)
}

fn details(b: &Build, cost: Option<String>, now: Millis) -> String {
    let mut fields = vec![
        ("state", b.state.as_str().to_owned()),
        ("builder", b.builder.clone()),
        ("cell", dash(cell(&b.cell, ", "))),
        ("params", dash(cell(&b.params, ", "))),
        ("labels", dash(b.labels.join(", "))),
    ];
    if let Some(reason) = &b.reason {
        fields.push(("reason", one_line(reason)));
    }
    fields.push(("submit", b.submit_id.clone()));
    if let Some(by) = &b.submitted_by {
        // A key no longer than "est. cost", so the columns stay where they were.
        fields.push(("submitter", one_line(by)));
    }
    fields.push(("created", timestamp(b.created_at)));
    let time_key = if b.finished_at.is_some() {
        "duration"
    } else {
        "elapsed"
    };
    fields.push((time_key, build_time(b, now)));
    if let Some(cost) = cost {
        fields.push(("est. cost", cost));
    }

    let mut s = format!("build {}\n", b.id);
    let width = fields.iter().map(|(k, _)| k.len() + 1).max().unwrap_or(0);
    for (k, v) in &fields {
        let _ = writeln!(s, "  {:<width$} {v}", format!("{k}:"));
    }
    if b.attempts.is_empty() {
        s.push_str("no attempts yet\n");
    }
    for a in &b.attempts {
        let _ = write!(
            s,
            "attempt {}: worker {}, pool {}: {}",
            a.number,
            a.worker_id,
            a.pool,
            attempt_state(a.state)
        );
        if let Some(reason) = &a.reason {
            let _ = write!(s, " ({})", one_line(reason));
        }
        s.push('\n');
        if a.steps.is_empty() {
            s.push_str("  no steps run\n");
            continue;
        }
        let rows: Vec<Vec<String>> = a.steps.iter().map(step_row).collect();
        let t = table(
            &["STEP", "STATE", "EXIT", "DURATION", "LOG", "ERROR"],
            &rows,
        );
        for line in t.lines() {
            let _ = writeln!(s, "  {line}");
        }
    }
    s
}

fn step_row(st: &StepRun) -> Vec<String> {
    let exit = match (st.exit_code, st.signal) {
        (Some(code), _) => code.to_string(),
        (None, Some(sig)) => format!("signal {sig}"),
        (None, None) => "-".to_owned(),
    };
    vec![
        st.name.clone(),
        step_state(st.state).to_owned(),
        exit,
        st.duration_ms
            .map(|d| duration_ms(i64::try_from(d).unwrap_or(i64::MAX)))
            .unwrap_or_else(|| "-".to_owned()),
        bytes(st.log_bytes),
        st.error.as_deref().map(one_line).unwrap_or_default(),
    ]
}

pub fn workers_table(workers: &[WorkerView]) -> String {
    if workers.is_empty() {
        return "no workers\n".to_owned();
    }
    let rows = workers
        .iter()
        .map(|w| {
            vec![
                w.worker_id.clone(),
                w.pool.clone(),
                w.state.clone(),
                duration_ms(
                    i64::try_from(w.state_age_secs.saturating_mul(1000)).unwrap_or(i64::MAX),
                ),
                w.build
                    .map(|b| b.to_string())
                    .unwrap_or_else(|| "-".to_owned()),
                w.builds_done.to_string(),
                w.os.clone().unwrap_or_else(|| "-".to_owned()),
                dash(w.labels.join(",")),
            ]
        })
        .collect::<Vec<_>>();
    table(
        &[
            "WORKER", "POOL", "STATE", "FOR", "BUILD", "DONE", "OS", "LABELS",
        ],
        &rows,
    )
}

/// Left-aligned columns two spaces apart, without trailing blanks; a column
/// empty in every row is dropped.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let cols: Vec<usize> = (0..headers.len())
        .filter(|&c| rows.iter().any(|r| r.get(c).is_some_and(|v| !v.is_empty())))
        .collect();
    let width = |c: usize| {
        let cells = rows
            .iter()
            .filter_map(|r| r.get(c))
            .map(|v| v.chars().count());
        cells.chain([headers[c].len()]).max().unwrap_or(0)
    };
    let widths: Vec<usize> = cols.iter().map(|&c| width(c)).collect();
    let mut out = String::new();
    let header: Vec<String> = cols.iter().map(|&c| headers[c].to_owned()).collect();
    for cells in std::iter::once(header).chain(rows.iter().map(|r| {
        cols.iter()
            .map(|&c| r.get(c).cloned().unwrap_or_default())
            .collect()
    })) {
        let mut line = String::new();
        for (i, v) in cells.iter().enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            let w = widths.get(i).copied().unwrap_or(0);
            let _ = write!(line, "{v:<w$}");
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn dash(s: String) -> String {
    if s.is_empty() {
        "-".to_owned()
    } else {
        s
    }
}

/// Keeps a multi-line reason from breaking table rows.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn step_state(s: StepState) -> &'static str {
    match s {
        StepState::Pending => "pending",
        StepState::Running => "running",
        StepState::Succeeded => "succeeded",
        StepState::Failed => "failed",
        StepState::TimedOut => "timed_out",
        StepState::Cancelled => "cancelled",
        StepState::Skipped => "skipped",
        StepState::Lost => "lost",
    }
}

fn attempt_state(s: AttemptState) -> &'static str {
    match s {
        AttemptState::Running => "running",
        AttemptState::Succeeded => "succeeded",
        AttemptState::Failed => "failed",
        AttemptState::TimedOut => "timed_out",
        AttemptState::Cancelled => "cancelled",
        AttemptState::WorkerLost => "worker_lost",
        AttemptState::Interrupted => "interrupted",
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::{Attempt, BuildState};

    pub(crate) fn build(id: i64, state: BuildState, cell: &[(&str, &str)]) -> Build {
        Build {
            id,
            submit_id: "s1".to_owned(),
            builder: "hello".to_owned(),
            cell: cell
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            params: BTreeMap::new(),
            labels: vec!["linux".to_owned()],
            steps: Vec::new(),
            state,
            reason: None,
            retries: 1,
            created_at: 1_000,
            started_at: Some(2_000),
            finished_at: state.is_finished().then_some(3_200),
            attempts: Vec::new(),
            submitted_by: None,
        }
    }

    fn attempt(number: u32, state: AttemptState, reason: Option<&str>) -> Attempt {
        Attempt {
            number,
            worker_id: format!("w-{number}"),
            pool: "local".to_owned(),
            state,
            reason: reason.map(str::to_owned),
            started_at: 2_000,
            finished_at: Some(3_000),
            steps: vec![StepRun {
                index: 0,
                name: "greet".to_owned(),
                state: StepState::Succeeded,
                exit_code: Some(0),
                signal: None,
                error: None,
                started_at: Some(2_000),
                duration_ms: Some(300),
                log_bytes: 2048,
            }],
        }
    }

    #[test]
    fn durations() {
        assert_eq!(duration_ms(1_234), "1.2s");
        assert_eq!(duration_ms(-5), "0.0s");
        assert_eq!(duration_ms(123_000), "2m03s");
        assert_eq!(duration_ms(3_720_000), "1h02m");
        assert_eq!(bytes(12), "12 B");
        assert_eq!(bytes(2048), "2.0 KiB");
        assert_eq!(timestamp(0), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn tags_and_result_lines() {
        let a = build(12, BuildState::Succeeded, &[("greeting", "hello")]);
        let mut b = build(7, BuildState::Failed, &[]);
        b.reason = Some("step \"greet\"\nexited 1".to_owned());
        assert_eq!(tag(&a), "[12 greeting=hello]");
        assert_eq!(
            padded_tags(&[a.clone(), b.clone()]),
            ["[12 greeting=hello] ", "[7]                 "]
        );
        assert_eq!(
            result_line(&a),
            "build 12 (greeting=hello): succeeded in 1.2s"
        );
        assert_eq!(
            result_line(&b),
            "build 7: failed in 1.2s: step \"greet\" exited 1"
        );
    }

    #[test]
    fn build_detail_shows_the_estimated_cost() {
        let b = build(3, BuildState::Succeeded, &[]);
        let priced = BuildDetail {
            build: b.clone(),
            estimated_cost: Some(0.012345),
            cost: None,
            queue: None,
            github_jobs: Vec::new(),
        };
        let d = build_detail(&priced, 10_000);
        assert!(d.contains("  est. cost: $0.0123\n"), "{d}");
        let split = BuildDetail {
            cost: Some(crate::cost::BuildCost {
                run: 0.01,
                boot: 0.002,
                idle: 0.0003,
            }),
            ..priced.clone()
        };
        let d = build_detail(&split, 10_000);
        assert!(
            d.contains("  est. cost: $0.0123 (run $0.0100, boot $0.0020, idle $0.0003)\n"),
            "{d}"
        );
        let unpriced = BuildDetail {
            build: b,
            estimated_cost: None,
            cost: None,
            queue: None,
            github_jobs: Vec::new(),
        };
        assert!(!build_detail(&unpriced, 10_000).contains("cost"));
    }

    #[test]
    fn build_with_two_attempts_renders_both() {
        let mut b = build(12, BuildState::Succeeded, &[("greeting", "hello")]);
        b.attempts = vec![
            attempt(1, AttemptState::WorkerLost, Some("heartbeat missed")),
            attempt(2, AttemptState::Succeeded, None),
        ];
        let d = build_details(&b, 10_000);
        assert!(
            d.contains("attempt 1: worker w-1, pool local: worker_lost (heartbeat missed)"),
            "{d}"
        );
        assert!(
            d.contains("attempt 2: worker w-2, pool local: succeeded\n"),
            "{d}"
        );
        assert_eq!(
            d.matches("  greet  succeeded  0     0.3s      2.0 KiB\n")
                .count(),
            2,
            "{d}"
        );
        assert!(d.contains("  cell:     greeting=hello\n"), "{d}");

        let t = builds_table(&[b], 10_000);
        let want = "ID  BUILDER  CELL            STATE      ATTEMPTS  TIME\n\
                    12  hello    greeting=hello  succeeded  2         1.2s\n";
        assert_eq!(t, want);
    }

    #[test]
    fn table_aligns_and_drops_empty_columns() {
        let rows = vec![
            vec!["1".to_owned(), "".to_owned(), "long value".to_owned()],
            vec!["100".to_owned(), "".to_owned(), "x".to_owned()],
        ];
        assert_eq!(
            table(&["A", "B", "C"], &rows),
            "A    C\n1    long value\n100  x\n"
        );
        assert_eq!(builds_table(&[], 0), "no builds\n");
    }

    #[test]
    fn workers() {
        let w = WorkerView {
            worker_id: "w-1".to_owned(),
            pool: "local".to_owned(),
            state: "busy".to_owned(),
            build: Some(12),
            builds_done: 3,
            os: Some("linux".to_owned()),
            labels: vec!["linux".to_owned(), "x86".to_owned()],
            state_age_secs: 75,
            ..WorkerView::default()
        };
        let t = workers_table(&[w]);
        assert!(
            t.starts_with("WORKER  POOL   STATE  FOR    BUILD  DONE  OS     LABELS\n"),
            "{t}"
        );
        assert!(
            t.ends_with("w-1     local  busy   1m15s  12     3     linux  linux,x86\n"),
            "{t}"
        );
    }
}
