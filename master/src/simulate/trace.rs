//! Job traces: what `burst simulate` replays. One job a line, as CSV (with a
//! header) or JSON Lines:
//!
//! ```text
//! submit,labels,duration,matrix
//! 0,linux,300,1
//! 2026-11-30T09:00:05Z,linux docker,5m,4
//! ```
//!
//! ```text
//! {"submit": 0, "labels": ["linux"], "duration": 300, "matrix": 1}
//! ```
//!
//! `submit` is seconds from the start or an RFC 3339 time; `labels` are the
//! labels each build needs (CSV: separated by spaces or `;`); `duration` is
//! how long each build runs (seconds, or a duration like `"5m"`); `matrix`
//! (optional, default 1) is how many builds the job submits at once.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;

/// A trace line as written: its submit time not yet placed on the clock.
#[derive(Debug, Clone, PartialEq)]
pub enum Submit {
    /// Seconds after the start.
    Offset(Duration),
    At(DateTime<Utc>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// 1-based, for messages.
    pub line: usize,
    pub submit: Submit,
    pub labels: Vec<String>,
    pub duration: Duration,
    pub matrix: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    /// In file order.
    pub jobs: Vec<Job>,
}

/// A job placed on the simulation's clock.
#[derive(Debug, Clone, PartialEq)]
pub struct Timed {
    /// The trace line (0 for generated jobs).
    pub line: usize,
    pub at: Duration,
    pub labels: Vec<String>,
    pub duration: Duration,
    pub matrix: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error("failed to read trace {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to read trace {path}: line {line}: {message}")]
    Line {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("failed to read trace {path}: it holds no jobs")]
    Empty { path: PathBuf },
}

/// The most builds one job may submit: a typo must not make millions.
const MAX_MATRIX: u32 = 1000;

impl Trace {
    pub fn read(path: &Path) -> Result<Self, TraceError> {
        let text = std::fs::read_to_string(path).map_err(|source| TraceError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// JSON Lines when the file is named `.jsonl`/`.ndjson` or its first
    /// line that is not blank or a comment opens an object; CSV otherwise.
    pub fn parse(text: &str, path: &Path) -> Result<Self, TraceError> {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        let first = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#'));
        let jsonl = matches!(ext, "jsonl" | "ndjson") || first.is_some_and(|l| l.starts_with('{'));
        let fail = |line, message: String| TraceError::Line {
            path: path.to_owned(),
            line,
            message,
        };
        let jobs = if jsonl {
            parse_jsonl(text).map_err(|(line, m)| fail(line, m))?
        } else {
            parse_csv(text).map_err(|(line, m)| fail(line, m))?
        };
        if jobs.is_empty() {
            return Err(TraceError::Empty {
                path: path.to_owned(),
            });
        }
        Ok(Self { jobs })
    }

    /// The earliest RFC 3339 submit time, if any line has one.
    pub fn first_time(&self) -> Option<DateTime<Utc>> {
        self.jobs
            .iter()
            .filter_map(|j| match j.submit {
                Submit::At(t) => Some(t),
                Submit::Offset(_) => None,
            })
            .min()
    }

    /// The jobs on a clock that starts at `start`, in submit order (file
    /// order among equal times).
    pub fn timed(&self, start: DateTime<Utc>, path: &Path) -> Result<Vec<Timed>, TraceError> {
        let mut out = Vec::with_capacity(self.jobs.len());
        for job in &self.jobs {
            let at = match job.submit {
                Submit::Offset(d) => d,
                Submit::At(t) => (t - start).to_std().map_err(|_| TraceError::Line {
                    path: path.to_owned(),
                    line: job.line,
                    message: format!(
                        "`submit`: {} is before the simulation's start {}",
                        t.to_rfc3339(),
                        start.to_rfc3339()
                    ),
                })?,
            };
            out.push(Timed {
                line: job.line,
                at,
                labels: job.labels.clone(),
                duration: job.duration,
                matrix: job.matrix,
            });
        }
        out.sort_by_key(|j| j.at);
        Ok(out)
    }
}

/// Writes jobs as the CSV `parse` reads (the generator's output).
pub fn to_csv(jobs: &[Timed]) -> String {
    let mut out = String::from("submit,labels,duration,matrix\n");
    for j in jobs {
        let _ = writeln!(
            out,
            "{},{},{},{}",
            j.at.as_secs(),
            j.labels.join(" "),
            j.duration.as_secs(),
            j.matrix
        );
    }
    out
}

type LineError = (usize, String);

const COLUMNS: [&str; 4] = ["submit", "labels", "duration", "matrix"];

fn parse_csv(text: &str) -> Result<Vec<Job>, LineError> {
    let mut reader = csv::ReaderBuilder::new()
        .comment(Some(b'#'))
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = reader.headers().map_err(|e| csv_error(&e, 1))?.clone();
    let header_line = headers.position().map_or(1, |p| p.line() as usize);
    let mut index = [None; 4];
    for (i, name) in headers.iter().enumerate() {
        let Some(c) = COLUMNS.iter().position(|c| *c == name) else {
            return Err((
                header_line,
                format!("unknown column {name:?}; expected submit, labels, duration and optionally matrix"),
            ));
        };
        index[c] = Some(i);
    }
    for (c, name) in COLUMNS.iter().enumerate().take(3) {
        if index[c].is_none() {
            return Err((header_line, format!("the header has no `{name}` column")));
        }
    }
    let mut jobs = Vec::new();
    let mut record = csv::StringRecord::new();
    loop {
        let line = reader.position().line() as usize;
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => return Err(csv_error(&e, line)),
        }
        let line = record.position().map_or(line, |p| p.line() as usize);
        let field = |c: usize| index[c].and_then(|i| record.get(i)).unwrap_or("");
        let at = |key: &str, m: String| (line, format!("`{key}`: {m}"));
        let submit = submit_text(field(0)).map_err(|m| at("submit", m))?;
        let labels = field(1)
            .split([' ', ';'])
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect();
        let duration = duration_text(field(2)).map_err(|m| at("duration", m))?;
        let matrix = match field(3) {
            "" => 1,
            m => m
                .parse()
                .map_err(|_| at("matrix", format!("{m:?} is not a whole number")))?,
        };
        jobs.push(job(line, submit, labels, duration, matrix)?);
    }
    Ok(jobs)
}

fn csv_error(e: &csv::Error, line: usize) -> LineError {
    let line = e.position().map_or(line, |p| p.line() as usize);
    (line.max(1), e.to_string())
}

fn job(
    line: usize,
    submit: Submit,
    labels: Vec<String>,
    duration: Duration,
    matrix: u32,
) -> Result<Job, LineError> {
    if !(1..=MAX_MATRIX).contains(&matrix) {
        return Err((line, format!("`matrix`: must be 1 to {MAX_MATRIX}")));
    }
    Ok(Job {
        line,
        submit,
        labels,
        duration,
        matrix,
    })
}

fn submit_text(s: &str) -> Result<Submit, String> {
    if let Ok(secs) = s.parse::<f64>() {
        return seconds(secs).map(Submit::Offset);
    }
    DateTime::parse_from_rfc3339(s)
        .map(|t| Submit::At(t.with_timezone(&Utc)))
        .map_err(|_| format!("{s:?} is neither seconds from the start nor an RFC 3339 time"))
}

fn duration_text(s: &str) -> Result<Duration, String> {
    if let Ok(secs) = s.parse::<f64>() {
        return seconds(secs);
    }
    humantime::parse_duration(s)
        .map_err(|_| format!("{s:?} is neither seconds nor a duration like \"5m\""))
}

fn seconds(secs: f64) -> Result<Duration, String> {
    Duration::try_from_secs_f64(secs)
        .map_err(|_| format!("{secs} is not a number of seconds of 0 or more"))
}

/// A number (seconds) or a string, as JSON has them.
#[derive(Deserialize)]
#[serde(untagged)]
enum NumOrText {
    Num(f64),
    Text(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJob {
    submit: NumOrText,
    #[serde(default)]
    labels: Vec<String>,
    duration: NumOrText,
    #[serde(default)]
    matrix: Option<u32>,
}

fn parse_jsonl(text: &str) -> Result<Vec<Job>, LineError> {
    let mut jobs = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let raw = raw.trim();
        if raw.is_empty() || raw.starts_with('#') {
            continue;
        }
        let r: RawJob = serde_json::from_str(raw).map_err(|e| (line, e.to_string()))?;
        let at = |key: &str, m: String| (line, format!("`{key}`: {m}"));
        let submit = match r.submit {
            NumOrText::Num(s) => seconds(s).map(Submit::Offset),
            NumOrText::Text(t) => submit_text(&t),
        }
        .map_err(|m| at("submit", m))?;
        let duration = match r.duration {
            NumOrText::Num(s) => seconds(s),
            NumOrText::Text(t) => duration_text(&t),
        }
        .map_err(|m| at("duration", m))?;
        jobs.push(job(
            line,
            submit,
            r.labels,
            duration,
            r.matrix.unwrap_or(1),
        )?);
    }
    Ok(jobs)
}

#[cfg(test)]
mod tests;
