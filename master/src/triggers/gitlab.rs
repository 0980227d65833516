//! GitLab's push and merge request webhook payloads (docs.gitlab.com,
//! "Webhook events"), read into changes.

use serde::Deserialize;

use super::change::{branch_of, commit_paths, Change, Event};
use super::hooks::Parsed;

/// GitLab lists at most this many commits in a push payload
/// (`total_commits_count` says how many there were).
const MAX_LISTED_COMMITS: usize = 20;

const NULL_SHA: &str = "0000000000000000000000000000000000000000";

#[derive(Deserialize)]
struct Project {
    path_with_namespace: String,
}

#[derive(Deserialize)]
struct Push {
    #[serde(rename = "ref")]
    git_ref: String,
    after: String,
    project: Project,
    #[serde(default)]
    commits: Vec<serde_json::Value>,
    #[serde(default)]
    total_commits_count: Option<usize>,
}

#[derive(Deserialize)]
struct MergeRequest {
    project: Project,
    object_attributes: MrAttributes,
}

#[derive(Deserialize)]
struct MrAttributes {
    iid: u64,
    #[serde(default)]
    action: Option<String>,
    source_branch: String,
    target_branch: String,
    last_commit: LastCommit,
    /// Set on an `update` that pushed new commits.
    #[serde(default)]
    oldrev: Option<String>,
}

#[derive(Deserialize)]
struct LastCommit {
    id: String,
}

/// `event` is the `X-Gitlab-Event` header.
pub(super) fn parse(source: &str, event: &str, body: &[u8]) -> Result<Parsed, String> {
    match event {
        "Push Hook" => {
            let p: Push = serde_json::from_slice(body)
                .map_err(|e| format!("failed to read the push payload: {e}"))?;
            let Some(branch) = branch_of(&p.git_ref) else {
                return Ok(Parsed::Ignored(format!("{} is not a branch", p.git_ref)));
            };
            if p.after == NULL_SHA {
                return Ok(Parsed::Ignored(format!("branch {branch} was deleted")));
            }
            let total = p.total_commits_count.unwrap_or(p.commits.len());
            let complete = total == p.commits.len() && total < MAX_LISTED_COMMITS;
            Ok(Parsed::Change(Change {
                source: source.to_owned(),
                repo: p.project.path_with_namespace,
                branch: branch.to_owned(),
                base: None,
                revision: p.after,
                pr: None,
                event: Event::Push,
                paths: commit_paths(&p.commits, complete),
            }))
        }
        "Merge Request Hook" => {
            let p: MergeRequest = serde_json::from_slice(body)
                .map_err(|e| format!("failed to read the merge request payload: {e}"))?;
            let a = p.object_attributes;
            let code = match a.action.as_deref() {
                Some("open" | "reopen") => true,
                // Title and label edits are updates too; only new commits count.
                Some("update") => a.oldrev.is_some(),
                _ => false,
            };
            if !code {
                return Ok(Parsed::Ignored(format!(
                    "merge request action {:?} changes no code",
                    a.action.as_deref().unwrap_or("none")
                )));
            }
            Ok(Parsed::Change(Change {
                source: source.to_owned(),
                repo: p.project.path_with_namespace,
                branch: a.source_branch,
                base: Some(a.target_branch),
                revision: a.last_commit.id,
                pr: Some(a.iid),
                event: Event::PullRequest,
                paths: None,
            }))
        }
        other => Ok(Parsed::Ignored(format!("event {other:?} is not handled"))),
    }
}
