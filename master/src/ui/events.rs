//! `GET /ui/events?<filter>`: the builds page's live rows, as server-sent
//! events. Each `build` event carries `{"id", "state", "html"}`, the row
//! rendered by the page's own `row`. The first look sends every row (the
//! page may be a moment old); then only rows whose state, reason or times
//! changed. The store is read through `api::builds::recent` when the log
//! store says a build changed (at most once a `POLL`, at least once an
//! `IDLE`), so an idle tab costs nothing; a stream lasts `LIFETIME`, after
//! which the browser reconnects.

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::response::sse::{Event, KeepAlive, KeepAliveStream, Sse};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::builds_page::{row, ROWS};
use crate::api::builds::{recent, BuildFilter};
use crate::api::error::HttpError;
use crate::api::AppState;
use crate::model::{now_millis, Build, BuildId};

pub(super) const POLL: Duration = Duration::from_secs(1);
pub(super) const IDLE: Duration = Duration::from_secs(15);
pub(super) const LIFETIME: Duration = Duration::from_secs(600);
/// Milliseconds a browser waits before reconnecting.
pub(super) const RETRY: Duration = Duration::from_secs(2);

/// Between two looks at the store: a `POLL` at least, then until `wake`
/// says something changed or an `IDLE` passed.
pub(super) async fn pace<T>(wake: &mut tokio::sync::watch::Receiver<T>) {
    tokio::time::sleep(POLL).await;
    let _ = tokio::time::timeout(IDLE, wake.changed()).await;
}

type Stream = ReceiverStream<Result<Event, Infallible>>;

pub async fn builds(
    State(state): State<AppState>,
    Query(filter): Query<BuildFilter>,
) -> Result<Sse<KeepAliveStream<Stream>>, HttpError> {
    // Live rows are the newest page's.
    let filter = filter.newest();
    // A bad filter is refused now, not as a silent empty stream.
    recent(&state, &filter, 1).await?;
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        let _ = tx.send(Ok(Event::default().retry(RETRY))).await;
        let mut sent: HashMap<BuildId, Seen> = HashMap::new();
        let mut wake = state.logs.subscribe_any();
        let deadline = tokio::time::Instant::now() + LIFETIME;
        while tokio::time::Instant::now() < deadline {
            wake.mark_unchanged();
            match recent(&state, &filter, ROWS).await {
                Ok(builds) => {
                    let now = now_millis();
                    for b in builds.iter().rev() {
                        let seen = Seen::of(b);
                        if sent.get(&b.id) == Some(&seen) {
                            continue;
                        }
                        let data = serde_json::json!({
                            "id": b.id,
                            "state": b.state.as_str(),
                            "html": row(b, now).into_string(),
                        });
                        let event = Event::default().event("build").data(data.to_string());
                        if tx.send(Ok(event)).await.is_err() {
                            return;
                        }
                        sent.insert(b.id, seen);
                    }
                }
                Err(HttpError(_, why)) => {
                    tracing::warn!(error = %why, "failed to read builds for the UI's live rows");
                }
            }
            tokio::select! {
                _ = tx.closed() => return,
                _ = pace(&mut wake) => {}
            }
        }
    });
    Ok(Sse::new(ReceiverStream::new(rx)).keep_alive(KeepAlive::default()))
}

/// What decides whether a row is sent again.
#[derive(PartialEq, Eq)]
struct Seen {
    state: crate::model::BuildState,
    reason: Option<String>,
    started_at: Option<i64>,
    finished_at: Option<i64>,
}

impl Seen {
    fn of(b: &Build) -> Self {
        Seen {
            state: b.state,
            reason: b.reason.clone(),
            started_at: b.started_at,
            finished_at: b.finished_at,
        }
    }
}
