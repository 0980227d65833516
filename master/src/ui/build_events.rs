//! `GET /builds/{id}/events`: the build page's live updates, as server-sent
//! events. Each `build` event carries `{"state", "build", "attempts"}`: the
//! page's own `section#build` and `section#attempts`, rendered by
//! `build_page` for this caller (so the buttons still follow the role and
//! carry the session's CSRF token). The script swaps them in place. An
//! event goes out only when the rendering changed; when the build has
//! finished the stream sends it, then `end`, and closes.
//!
//! It reads through `api::builds::detail` (the API's `GET
//! /api/v1/builds/{id}`) when the log store says this build changed (its
//! log, a step or its state), at most once a `POLL`, at least once an
//! `IDLE`; a stream lasts `LIFETIME`, then the browser reconnects.

use std::convert::Infallible;

use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, KeepAliveStream, Sse};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::build_page::{attempts, summary};
use super::events::{pace, LIFETIME, RETRY};
use crate::api::builds::detail;
use crate::api::error::HttpError;
use crate::api::{AppState, Caller};
use crate::model::{now_millis, BuildId};

type Stream = ReceiverStream<Result<Event, Infallible>>;

pub async fn build(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<BuildId>,
) -> Result<Sse<KeepAliveStream<Stream>>, HttpError> {
    // An unknown build is a 404 now, not an empty stream.
    detail(&state, id).await?;
    let (tx, rx) = mpsc::channel(8);
    tokio::spawn(async move {
        let _ = tx.send(Ok(Event::default().retry(RETRY))).await;
        let mut wake = state.logs.subscribe(id);
        let mut sent = String::new();
        let deadline = tokio::time::Instant::now() + LIFETIME;
        while tokio::time::Instant::now() < deadline {
            wake.mark_unchanged();
            match detail(&state, id).await {
                Ok(d) => {
                    let now = now_millis();
                    let build = summary(&d, &caller, now).into_string();
                    let notes = super::build_page::step_notes(&state, &d.build).await;
                    let steps = attempts(&d.build, now, &notes).into_string();
                    let finished = d.build.state.is_finished();
                    let seen = format!("{build}{steps}");
                    if seen != sent {
                        let data = serde_json::json!({
                            "state": d.build.state.as_str(),
                            "build": build,
                            "attempts": steps,
                        });
                        let event = Event::default().event("build").data(data.to_string());
                        if tx.send(Ok(event)).await.is_err() {
                            return;
                        }
                        sent = seen;
                    }
                    if finished {
                        let end = Event::default().event("end").data(d.build.state.as_str());
                        let _ = tx.send(Ok(end)).await;
                        return;
                    }
                }
                Err(HttpError(_, why)) => {
                    tracing::warn!(build = id, error = %why, "failed to read a build for its live page");
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
