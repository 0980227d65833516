//! Which builds a list asks the store for: `GET /api/v1/builds` and the
//! UI's builds page, through `Store::query_builds`. Filters narrow; paging
//! is by key (`before` an id), so a page deep in the history costs what the
//! first does and no build is skipped or repeated when new ones arrive.

use super::{Build, BuildId, BuildState};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildQuery {
    pub builder: Option<String>,
    pub state: Option<BuildState>,
    /// Builds carrying this label (one of their `labels`).
    pub label: Option<String>,
    /// Builds submitted by this token name.
    pub submitter: Option<String>,
    /// Only builds with a smaller id: the page after the one that ended
    /// with build `before`.
    pub before: Option<BuildId>,
    /// At most this many builds, newest first.
    pub limit: u32,
}

impl BuildQuery {
    /// Does `b` pass the filters (not `before` or `limit`)? The memory
    /// store filters with this; SQLite says the same in SQL.
    pub fn matches(&self, b: &Build) -> bool {
        self.builder.as_deref().is_none_or(|w| b.builder == w)
            && self.state.is_none_or(|w| b.state == w)
            && self
                .label
                .as_deref()
                .is_none_or(|w| b.labels.iter().any(|l| l == w))
            && self
                .submitter
                .as_deref()
                .is_none_or(|w| b.submitted_by.as_deref() == Some(w))
    }
}
