//! What triggers and reporters persist: webhook deliveries seen, the heads
//! a poller last saw, the builds whose states are reported, and the outbox
//! of status deliveries.

use serde::{Deserialize, Serialize};

use super::{BuildId, BuildState, Millis};

/// A build a source started, whose state changes are reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchedBuild {
    pub build_id: BuildId,
    pub source: String,
    /// The state last put in the outbox; `None` before the first.
    pub last_state: Option<BuildState>,
}

/// One status delivery in the outbox: reporter `reporter` tells that build
/// `build_id` reached `state`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub id: i64,
    pub reporter: String,
    pub build_id: BuildId,
    pub state: BuildState,
    pub created_at: Millis,
    /// Deliveries tried so far.
    pub attempts: u32,
    /// When the next try is due (undelivered rows).
    pub next_at: Millis,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<Millis>,
    /// Why the last try failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Tried too often, or refused for good (a 4xx other than a rate
    /// limit): no more tries.
    pub gave_up: bool,
}

/// A schedule's last run (or, before the first, when it was first seen).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleRun {
    pub at: Millis,
    /// The watched branch's head then, for `only_if_changed`.
    pub revision: Option<String>,
}
