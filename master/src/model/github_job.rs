//! A GitHub Actions job as the runner manager knows it: which runner build
//! was launched for it, which one ran it, and how it ended.

use serde::{Deserialize, Serialize};

use super::{BuildId, Millis};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GithubJob {
    pub job_id: i64,
    /// `owner/name`.
    pub repo: String,
    pub run_id: i64,
    pub name: String,
    /// queued, in_progress, completed (GitHub's words).
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conclusion: Option<String>,
    /// The runner build queued for this job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launched_build: Option<BuildId>,
    /// The runner build whose runner took the job (a runner takes any job
    /// its labels fit, not always the one it was launched for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ran_build: Option<BuildId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runner_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html_url: Option<String>,
    pub updated_at: Millis,
}
