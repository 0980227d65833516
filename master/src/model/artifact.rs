//! Artifacts as the API lists them, and the rule for when a step's are
//! uploaded.

use serde::{Deserialize, Serialize};

use super::{BuildId, Millis};

/// After which outcomes a step's artifacts are uploaded (`when`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArtifactWhen {
    #[default]
    OnSuccess,
    OnFailure,
    Always,
}

/// A step's `artifacts`: globs relative to the build's directory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactSpec {
    pub paths: Vec<String>,
    #[serde(default)]
    pub when: ArtifactWhen,
}

/// One stored file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactInfo {
    pub build: BuildId,
    /// Relative to the build's directory, `/`-separated.
    pub path: String,
    pub size: u64,
    /// Lowercase hex.
    pub sha256: String,
    /// 1-based.
    pub attempt: u32,
    /// 0-based index of the step that uploaded it.
    pub step: u32,
    /// The step's name (filled in by the API from the build).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_name: Option<String>,
    pub created_at: Millis,
}
