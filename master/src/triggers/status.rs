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

    /// Records a failed poll; returns the failures in a row.
    pub fn poll_failed(&self, source: &str, error: String) -> u32 {
        let now = now_millis();
        self.with(|m| {
            let s = m.entry(source.to_owned()).or_default();
            s.last_poll_at = Some(now);
            s.failures += 1;
            s.last_error = Some(error);
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
