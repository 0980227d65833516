//! What a retention pass (`[retention]`, the janitor) may delete.

use serde::{Deserialize, Serialize};

use super::{BuildId, BuildState, Millis};

/// Which finished builds may go: those that *neither* limit keeps. A build
/// is kept while it finished at or after `finished_before`, or while it is
/// among its builder's `keep_last` newest finished builds. A rule with
/// neither limit keeps everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RetentionRule {
    pub finished_before: Option<Millis>,
    pub keep_last: Option<u32>,
}

impl RetentionRule {
    pub fn keeps_everything(&self) -> bool {
        self.finished_before.is_none() && self.keep_last.is_none()
    }
}

/// A finished build a retention pass would delete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpiredBuild {
    pub id: BuildId,
    pub builder: String,
    pub state: BuildState,
    /// When it finished (its creation time for a build that never started).
    pub finished_at: Millis,
}
