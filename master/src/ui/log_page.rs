//! `GET /builds/{id}/attempts/{attempt}/steps/{n}/log` (`n` from 1): one
//! step run's log, ANSI colours rendered. It opens at the tail and pages
//! back with `?before=<byte offset>`, reading only the page's bytes
//! (`tail.rs`), so a 100 MB log costs what a small one does. While the step
//! runs, `…/log/events?from=<offset>` streams the lines that follow (SSE,
//! woken by the log store's per-build watch, as the API's `?follow=true`).
//!
//! DOM, for tests and the script:
//! - `pre#log` with `data-start`, `data-end` (file offsets shown),
//!   `data-size`, `data-state` (the step's state) and, while it runs and
//!   the tail is shown, `data-events` (the stream's URL);
//! - one `span.line` per line, `id="L<offset>"` (the line's first byte in
//!   the file: a stable link), holding `a.ln` (the link) and the text;
//! - `a#older` (the page before), `a#newest` (back to the tail), `a#raw`
//!   (the API's plain-text log), `a#build-link`, `#step-state`.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, KeepAliveStream, Sse};
use axum::response::Html;
use burst_common::error_chain::Chain;
use maud::{html, PreEscaped};
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::ansi::{line_to_html, Style};
use super::error::{OrPage, UiResult};
use super::layout::{page as frame, Nav};
use super::tail;
use crate::api::builds::detail;
use crate::api::error::HttpError;
use crate::api::{AppState, Caller};
use crate::logs::StepRunId;
use crate::model::{AttemptState, Build, BuildId, StepState};

/// Bytes the stream reads at a time.
const CHUNK: usize = 64 * 1024;
/// Chunks sent per wake-up before looking at the step's state again.
const CHUNKS_PER_ROUND: usize = 64;
/// The stream looks again at least this often, even without a wake-up.
const POLL: Duration = Duration::from_secs(1);
/// A stream ends after this; the browser reconnects with `Last-Event-ID`.
const LIFETIME: Duration = Duration::from_secs(600);
const RETRY: Duration = Duration::from_secs(2);

#[derive(Deserialize)]
pub struct PageQuery {
    #[serde(default)]
    before: Option<u64>,
}

#[derive(Deserialize)]
pub struct EventsQuery {
    #[serde(default)]
    from: Option<u64>,
}

type Ids = (BuildId, u32, u32);

/// The step run a path names, and its state; 404 when the build has no
/// such attempt or step.
fn find(build: &Build, attempt: u32, n: u32) -> Result<(StepRunId, StepState, String), HttpError> {
    let missing = || {
        HttpError(
            StatusCode::NOT_FOUND,
            format!("build {} has no step {n} in attempt {attempt}", build.id),
        )
    };
    let a = build
        .attempts
        .iter()
        .find(|a| a.number == attempt)
        .ok_or_else(missing)?;
    let index = n.checked_sub(1).ok_or_else(missing)?;
    let s = a
        .steps
        .iter()
        .find(|s| s.index == index)
        .ok_or_else(missing)?;
    let state = if a.state != AttemptState::Running && s.state == StepState::Pending {
        // Never started, and never will.
        StepState::Skipped
    } else {
        s.state
    };
    Ok((
        StepRunId {
            build: build.id,
            attempt,
            index,
        },
        state,
        s.name.clone(),
    ))
}

fn live(state: StepState) -> bool {
    matches!(state, StepState::Running | StepState::Pending)
}

async fn size(state: &AppState, run: StepRunId) -> u64 {
    state.logs.len(run).await
}

fn log_error(run: StepRunId, e: &crate::logs::LogError) -> HttpError {
    tracing::warn!(step = %run, error = %Chain(e), "failed to read step log for the UI");
    HttpError(StatusCode::INTERNAL_SERVER_ERROR, Chain(e).to_string())
}

/// Renders lines as `span.line`s; `style` carries across them.
fn render(bytes: &[u8], lines: &[(u64, std::ops::Range<usize>)], style: &mut Style) -> String {
    let mut out = String::with_capacity(bytes.len() + lines.len() * 64);
    for (offset, range) in lines {
        out.push_str(&format!(
            "<span class=\"line\" id=\"L{offset}\"><a class=\"ln\" href=\"#L{offset}\"></a>"
        ));
        line_to_html(&bytes[range.clone()], style, &mut out);
        out.push_str("</span>\n");
    }
    out
}

pub async fn page(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, attempt, n)): Path<Ids>,
    Query(q): Query<PageQuery>,
) -> UiResult<Html<String>> {
    let d = detail(&state, id).await.ui(&caller)?;
    let (run, step_state, name) = find(&d.build, attempt, n).ui(&caller)?;
    let size = size(&state, run).await;
    let end = q.before.map_or(size, |b| b.min(size));
    let window = tail::window(end);
    let bytes = state
        .logs
        .read_from(run, window.start, (window.end - window.start) as usize)
        .await
        .map_err(|e| log_error(run, &e))
        .ui(&caller)?;
    let mut pg = tail::lines(&bytes, window.start);
    let streaming = q.before.is_none() && live(step_state);
    let mut from = pg.end;
    if streaming && bytes.last().is_some_and(|&b| b != b'\n') {
        // The step is still writing its last line: the stream sends it whole.
        if let Some((offset, _)) = pg.lines.pop() {
            from = offset;
        }
    }
    let base = format!("/builds/{id}/attempts/{attempt}/steps/{n}/log");
    let events = streaming.then(|| format!("{base}/events?from={from}"));
    let lines = render(&bytes, &pg.lines, &mut Style::default());
    pg.end = from;
    let total = d.build.steps.len();
    let body = html! {
        h1 { "Build " a id="build-link" href=(format!("/builds/{id}")) { (id) }
             ", step " (n) "/" (total) ": " span.step-name { (name) } " (attempt " (attempt) ")" }
        p.log-meta {
            "State " span id="step-state" class=(format!("state s-{}", step_state.as_str())) { (step_state.as_str()) }
            " · bytes " (pg.start) "–" (pg.end) " of " (size) " · "
            a id="raw" href=(format!("/api/v1/builds/{id}/log")) download=(format!("build-{id}.log")) { "raw" }
        }
        nav.pager {
            @if pg.start > 0 { a id="older" href=(format!("{base}?before={}", pg.start)) { "← older" } " " }
            @if q.before.is_some() && end < size { a id="newest" href=(base) { "newest →" } }
        }
        pre id="log" data-start=(pg.start) data-end=(pg.end) data-size=(size)
            data-state=(step_state.as_str()) data-events=[events] {
            // Escaped line by line in `ansi.rs`: the only PreEscaped input.
            (PreEscaped(lines))
        }
    };
    let title = format!("Log · build {id} step {n}");
    Ok(Html(
        frame(&title, &caller, Nav::Builds, body).into_string(),
    ))
}

type Stream = ReceiverStream<Result<Event, Infallible>>;

pub async fn events(
    State(state): State<AppState>,
    Path((id, attempt, n)): Path<Ids>,
    Query(q): Query<EventsQuery>,
    headers: HeaderMap,
) -> Result<Sse<KeepAliveStream<Stream>>, HttpError> {
    let d = detail(&state, id).await?;
    let (run, _, _) = find(&d.build, attempt, n)?;
    // A reconnecting browser says where it got to.
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let offset = resume.or(q.from).unwrap_or(0);
    let (tx, rx) = mpsc::channel(8);
    tokio::spawn(async move {
        let mut follower = Follower {
            state,
            run,
            attempt,
            n,
            offset,
            style: Style::default(),
            tx,
        };
        follower.run().await;
    });
    Ok(Sse::new(ReceiverStream::new(rx)).keep_alive(KeepAlive::default()))
}

struct Follower {
    state: AppState,
    run: StepRunId,
    attempt: u32,
    n: u32,
    offset: u64,
    style: Style,
    tx: mpsc::Sender<Result<Event, Infallible>>,
}

/// The browser went away.
struct Gone;

impl Follower {
    async fn run(&mut self) {
        if self.send(Event::default().retry(RETRY)).await.is_err() {
            return;
        }
        let mut wake = self.state.logs.subscribe(self.run.build);
        let deadline = tokio::time::Instant::now() + LIFETIME;
        while tokio::time::Instant::now() < deadline {
            wake.mark_unchanged();
            // Read the state before the bytes: whatever the step wrote
            // before it closed is then on disk when it reads closed.
            let step_state = match self.state.store.get_build(self.run.build).await {
                Ok(Some(b)) => find(&b, self.attempt, self.n).map(|(_, s, _)| s).ok(),
                Ok(None) => None,
                Err(e) => {
                    tracing::warn!(error = %Chain(&e), "failed to read a build for the UI's live log");
                    continue_after(&mut wake).await;
                    continue;
                }
            };
            let closed = !step_state.is_some_and(live);
            if self.copy(closed).await.is_err() {
                return;
            }
            if closed {
                let state = step_state.map_or("gone", |s| s.as_str());
                let _ = self.send(Event::default().event("end").data(state)).await;
                return;
            }
            continue_after(&mut wake).await;
        }
    }

    /// Sends what the log holds past `offset`, in whole lines; the last
    /// partial line too when the step has closed.
    async fn copy(&mut self, closed: bool) -> Result<(), Gone> {
        for _ in 0..CHUNKS_PER_ROUND {
            let chunk = match self
                .state
                .logs
                .read_from(self.run, self.offset, CHUNK)
                .await
            {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(step = %self.run, error = %Chain(&e), "failed to read step log");
                    return Ok(());
                }
            };
            if chunk.is_empty() {
                return Ok(());
            }
            let full = chunk.len() == CHUNK;
            let last_nl = chunk.iter().rposition(|&b| b == b'\n');
            let whole = match (full, closed, last_nl) {
                // More follows: up to the last whole line.
                (true, _, Some(nl)) | (false, false, Some(nl)) => nl + 1,
                // One line longer than a chunk, or the step's last words.
                (true, _, None) | (false, true, _) => chunk.len(),
                // A line still being written: wait for its end.
                (false, false, None) => return Ok(()),
            };
            let mut lines = Vec::new();
            let mut at = 0;
            while at < whole {
                let end = chunk[at..whole]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(whole, |p| at + p);
                lines.push((self.offset + at as u64, at..end));
                at = end + 1;
            }
            let html = render(&chunk, &lines, &mut self.style);
            self.offset += whole as u64;
            let event = Event::default()
                .event("lines")
                .id(self.offset.to_string())
                .data(html);
            self.send(event).await?;
            if !full {
                return Ok(());
            }
        }
        Ok(())
    }

    async fn send(&self, event: Event) -> Result<(), Gone> {
        self.tx.send(Ok(event)).await.map_err(|_| Gone)
    }
}

async fn continue_after(wake: &mut tokio::sync::watch::Receiver<u64>) {
    let _ = tokio::time::timeout(POLL, wake.changed()).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_render_with_anchors_and_escaping() {
        let bytes = b"\x1b[31m<b>red\n& plain";
        let pg = tail::lines(bytes, 0);
        let html = render(bytes, &pg.lines, &mut Style::default());
        assert_eq!(
            html,
            "<span class=\"line\" id=\"L0\"><a class=\"ln\" href=\"#L0\"></a>\
             <span class=\"f1\">&lt;b&gt;red</span></span>\n\
             <span class=\"line\" id=\"L12\"><a class=\"ln\" href=\"#L12\"></a>\
             <span class=\"f1\">&amp; plain</span></span>\n"
        );
    }
}
