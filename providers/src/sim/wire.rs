//! What the sim provider and the fleet simulator say over the socket: one
//! JSON request line per connection, answered by one JSON reply line.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Open a session for this worker. The token is the one-time launch
    /// token; never log it.
    Launch {
        worker_id: String,
        master_url: String,
        token: String,
        labels: Vec<String>,
    },
    /// End the worker's session (idempotent).
    Terminate { worker_id: String },
    /// Every worker the simulator hosts.
    List,
    /// Whether the worker's session still runs.
    Health { worker_id: String },
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    /// Why the request failed; `None` on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `List`: the workers hosted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub workers: Vec<String>,
    /// `Health`: the session still runs (or still connects).
    #[serde(default)]
    pub running: bool,
}

/// Longest line either side accepts.
pub const MAX_LINE: usize = 64 * 1024;
