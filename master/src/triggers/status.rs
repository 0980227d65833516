//! How each source is doing, for `GET /api/v1/sources`: a poller's last
//! poll, its failures in a row and the last error (secrets masked).

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Serialize;

use super::hooks::Hooks;
use crate::model::{now_millis, Millis};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PollState {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_poll_at: Option<Millis>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_ok_at: Option<Millis>,
    /// Failed polls since the last good one; 0 when it works.
    pub failures: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Branches watched at the last good poll.
    pub branches: usize,
    /// When the next poll is due: the interval after a good poll, the
    /// growing backoff after failures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_poll_at: Option<Millis>,
    /// The wait before that next poll, in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_in_ms: Option<u64>,
}

#[derive(Debug, Default)]
pub struct SourceStatus {
    polls: Mutex<BTreeMap<String, PollState>>,
}

impl SourceStatus {
    fn with<T>(&self, f: impl FnOnce(&mut BTreeMap<String, PollState>) -> T) -> T {
        // Nothing panics while it is held; a poisoned map is still whole.
        f(&mut self.polls.lock().unwrap_or_else(PoisonError::into_inner))
    }

    pub fn poll_ok(&self, source: &str, branches: usize) {
        let now = now_millis();
        self.with(|m| {
            let s = m.entry(source.to_owned()).or_default();
            s.last_poll_at = Some(now);
            s.last_ok_at = Some(now);
            s.failures = 0;
            s.last_error = None;
            s.branches = branches;
        });
    }

    /// The poller waits `wait` before its next poll.
    pub fn next_poll(&self, source: &str, wait: std::time::Duration) {
        let ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
        let at = now_millis().saturating_add(Millis::try_from(ms).unwrap_or(Millis::MAX));
        self.with(|m| {
            let s = m.entry(source.to_owned()).or_default();
            s.next_poll_at = Some(at);
            s.retry_in_ms = Some(ms);
        });
    }

    /// Every source's poll state, by name.
    pub fn polls(&self) -> BTreeMap<String, PollState> {
        self.with(|m| m.clone())
    }

    /// Records a failed poll and the backoff before the next; returns the
    /// failures in a row.
    pub fn poll_failed(&self, source: &str, error: String, wait: std::time::Duration) -> u32 {
        let now = now_millis();
        let ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
        self.with(|m| {
            let s = m.entry(source.to_owned()).or_default();
            s.last_poll_at = Some(now);
            s.failures += 1;
            s.last_error = Some(error);
            s.retry_in_ms = Some(ms);
            s.next_poll_at = Some(now.saturating_add(Millis::try_from(ms).unwrap_or(Millis::MAX)));
            s.failures
        })
    }

    pub fn poll(&self, source: &str) -> Option<PollState> {
        self.with(|m| m.get(source).cloned())
    }
}

#[derive(Serialize)]
struct SourceView {
    name: String,
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    repo: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    poll: Option<PollState>,
}

/// `GET /api/v1/sources` (behind the guard; no secret is shown).
pub(super) async fn sources(ext: Option<Extension<Hooks>>) -> Response {
    let Some(Extension(hooks)) = ext else {
        return Json(Vec::<()>::new()).into_response();
    };
    let views: Vec<SourceView> = hooks
        .config
        .get()
        .sources
        .iter()
        .map(|s| SourceView {
            name: s.name.clone(),
            kind: s.kind.as_str(),
            repo: s.repo.clone(),
            url: s.url.clone(),
            poll: hooks.status.poll(&s.name),
        })
        .collect();
    Json(views).into_response()
}
