//! A build's log as one text stream: every step of every attempt in order,
//! framed by header and footer lines, complete or followed live.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::Response;
use burst_common::error_chain::Chain;
use bytes::Bytes;
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::error::{not_found, HttpError};
use super::secret_view::mask_build;
use super::AppState;
use crate::logs::StepRunId;
use crate::model::{AttemptState, Build, BuildId, StepRun, StepState};

/// Bytes per read of a step log (one open and seek each): large enough
/// that reading back runs near disk speed, small enough that a reader's
/// queue (below) holds about 1 MiB.
const CHUNK: usize = 256 * 1024;
/// Followers look again at least this often, even without a wake-up.
const POLL: Duration = Duration::from_secs(1);

#[derive(Deserialize)]
pub struct LogQuery {
    #[serde(default)]
    follow: bool,
}

pub async fn log(
    State(state): State<AppState>,
    Path(id): Path<BuildId>,
    Query(q): Query<LogQuery>,
) -> Result<Response, HttpError> {
    if state.store.get_build(id).await?.is_none() {
        return Err(not_found(id));
    }
    // A small bounded channel: a slow reader slows the copy, not memory.
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::spawn(async move {
        let mut writer = LogWriter {
            state,
            id,
            tx,
            offsets: HashMap::new(),
            framed: HashMap::new(),
            open_lines: HashSet::new(),
        };
        if let Err(e) = writer.run(q.follow).await {
            let _ = writer.tx.send(Err(std::io::Error::other(e))).await;
        }
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Body::from_stream(ReceiverStream::new(rx)))
        .map_err(|e| HttpError(axum::http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

#[derive(Default, Clone, Copy)]
struct Framing {
    header: bool,
    footer: bool,
}

struct LogWriter {
    state: AppState,
    id: BuildId,
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
    offsets: HashMap<StepRunId, u64>,
    framed: HashMap<StepRunId, Framing>,
    /// Steps whose output so far ends without a newline: their footer
    /// starts a line of its own.
    open_lines: HashSet<StepRunId>,
}

/// The reader went away; stop quietly.
struct Gone;

impl LogWriter {
    async fn run(&mut self, follow: bool) -> Result<(), String> {
        let mut wake = self.state.logs.subscribe(self.id);
        let mut attempts_closed = 0usize;
        loop {
            wake.mark_unchanged();
            let mut build = match self.state.store.get_build(self.id).await {
                Ok(Some(b)) => b,
                Ok(None) => return Ok(()),
                Err(e) => return Err(Chain(&e).to_string()),
            };
            // Footers and the last line quote step errors and the reason.
            mask_build(&mut build, &self.state.config.get(), self.state.logs.mask());
            if self.copy_build(&build, &mut attempts_closed).await.is_err() {
                return Ok(());
            }
            if build.state.is_finished() {
                let mut line = format!("== build {} {}", build.id, build.state.as_str());
                if let Some(reason) = &build.reason {
                    line.push_str(&format!(": {reason}"));
                }
                line.push('\n');
                let _ = self.send(line.into_bytes()).await;
                return Ok(());
            }
            if !follow {
                return Ok(());
            }
            let _ = tokio::time::timeout(POLL, wake.changed()).await;
        }
    }

    async fn copy_build(&mut self, build: &Build, attempts_closed: &mut usize) -> Result<(), Gone> {
        let total = build.steps.len();
        for (a, attempt) in build.attempts.iter().enumerate() {
            for step in &attempt.steps {
                if matches!(step.state, StepState::Pending | StepState::Skipped) {
                    continue;
                }
                let id = StepRunId {
                    build: build.id,
                    attempt: attempt.number,
                    index: step.index,
                };
                let mut framing = self.framed.get(&id).copied().unwrap_or_default();
                if !framing.header {
                    let line = format!(
                        "== step {}/{total}: {} (attempt {}, worker {})\n",
                        step.index + 1,
                        step.name,
                        attempt.number,
                        attempt.worker_id
                    );
                    self.send(line.into_bytes()).await?;
                    framing.header = true;
                }
                self.copy_step(id).await?;
                if step.state != StepState::Running && !framing.footer {
                    // The step is closed: drain what is left before the footer.
                    self.copy_step(id).await?;
                    let line = footer(step, self.open_lines.remove(&id));
                    self.send(line.into_bytes()).await?;
                    framing.footer = true;
                }
                self.framed.insert(id, framing);
            }
            if a >= *attempts_closed && attempt.state != AttemptState::Running {
                *attempts_closed = a + 1;
                let ended = match attempt.state {
                    AttemptState::WorkerLost => Some(("lost", "worker lost")),
                    AttemptState::Interrupted => Some(("interrupted", "master restarted")),
                    _ => None,
                };
                if let Some((how, default)) = ended {
                    let reason = attempt.reason.as_deref().unwrap_or(default);
                    self.send(
                        format!("== attempt {} {how}: {reason}\n", attempt.number).into_bytes(),
                    )
                    .await?;
                }
            }
        }
        Ok(())
    }

    async fn copy_step(&mut self, id: StepRunId) -> Result<(), Gone> {
        loop {
            let offset = self.offsets.get(&id).copied().unwrap_or(0);
            let chunk = match self.state.logs.read_from(id, offset, CHUNK).await {
                Ok(chunk) => chunk,
                Err(e) => {
                    tracing::warn!(step = %id, error = %Chain(&e), "failed to read step log");
                    return Ok(());
                }
            };
            if chunk.is_empty() {
                return Ok(());
            }
            self.offsets.insert(id, offset + chunk.len() as u64);
            if chunk.last() == Some(&b'\n') {
                self.open_lines.remove(&id);
            } else {
                self.open_lines.insert(id);
            }
            let whole = chunk.len() == CHUNK;
            self.send(chunk).await?;
            if !whole {
                return Ok(());
            }
        }
    }

    async fn send(&self, data: Vec<u8>) -> Result<(), Gone> {
        self.tx.send(Ok(Bytes::from(data))).await.map_err(|_| Gone)
    }
}

/// The step's last line; after output that ended without a newline
/// (`open_line`), it starts one of its own.
fn footer(step: &StepRun, open_line: bool) -> String {
    let state = match step.state {
        StepState::Succeeded => "succeeded",
        StepState::Failed => "failed",
        StepState::TimedOut => "timed out",
        StepState::Cancelled => "cancelled",
        StepState::Lost => "lost with its worker",
        StepState::Skipped => "skipped",
        StepState::Pending | StepState::Running => "running",
    };
    let mut out = format!("== {} {state}", step.name);
    match (step.exit_code, step.signal) {
        (Some(code), _) => out.push_str(&format!(" (exit code {code}")),
        (None, Some(sig)) => out.push_str(&format!(" (signal {sig}")),
        (None, None) => out.push_str(" ("),
    }
    if let Some(ms) = step.duration_ms {
        let sep = if step.exit_code.is_some() || step.signal.is_some() {
            ", "
        } else {
            ""
        };
        out.push_str(&format!("{sep}{ms} ms"));
    }
    out.push(')');
    if let Some(err) = &step.error {
        out.push_str(&format!(": {err}"));
    }
    out.push('\n');
    let out = out.replace(" ()", "");
    if open_line {
        format!("\n{out}")
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_footer_after_an_unterminated_line_starts_its_own() {
        let step = StepRun {
            index: 0,
            name: "hi".to_owned(),
            state: StepState::Succeeded,
            exit_code: Some(0),
            signal: None,
            error: None,
            started_at: None,
            duration_ms: Some(5),
            log_bytes: 0,
        };
        assert_eq!(
            footer(&step, false),
            "== hi succeeded (exit code 0, 5 ms)\n"
        );
        assert_eq!(
            footer(&step, true),
            "\n== hi succeeded (exit code 0, 5 ms)\n"
        );
    }
}
