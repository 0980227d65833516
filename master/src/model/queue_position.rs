//! Where a queued build stands: `queue` in `GET /api/v1/builds/{id}`, which
//! `burst submit --follow` shows while the build waits.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuePosition {
    /// The pool the build waits for: the first whose labels serve it.
    pub pool: String,
    /// 1 = the next build that pool's next free worker takes.
    pub position: u32,
    /// Builds queued for that pool, this one included.
    pub queued: u32,
}
