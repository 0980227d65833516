//! GitHub's `push` and `pull_request` webhook payloads
//! (docs.github.com, "Webhook events and payloads"), read into changes.

use serde::Deserialize;

use super::change::{branch_of, commit_paths, Change, Event};
use super::hooks::Parsed;

/// GitHub lists at most this many commits in a push payload; a push of
/// more has unknown paths.
const MAX_LISTED_COMMITS: usize = 20;

/// The all-zero id GitHub sends as `after` when a branch is deleted.
const NULL_SHA: &str = "0000000000000000000000000000000000000000";

#[derive(Deserialize)]
struct Repository {
    full_name: String,
}

#[derive(Deserialize)]
struct Push {
    #[serde(rename = "ref")]
    git_ref: String,
    after: String,
    #[serde(default)]
    deleted: bool,
    repository: Repository,
    #[serde(default)]
    commits: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct PullRequestEvent {
    action: String,
    number: u64,
    pull_request: PullRequest,
    repository: Repository,
}

#[derive(Deserialize)]
struct PullRequest {
    head: GitRef,
    base: GitRef,
}

#[derive(Deserialize)]
struct GitRef {
    #[serde(rename = "ref")]
    git_ref: String,
    sha: String,
}

/// `event` is the `X-GitHub-Event` header.
pub(super) fn parse(source: &str, event: &str, body: &[u8]) -> Result<Parsed, String> {
    match event {
        "push" => {
            let p: Push = serde_json::from_slice(body)
                .map_err(|e| format!("failed to read the push payload: {e}"))?;
            let Some(branch) = branch_of(&p.git_ref) else {
                return Ok(Parsed::Ignored(format!("{} is not a branch", p.git_ref)));
            };
            if p.deleted || p.after == NULL_SHA {
                return Ok(Parsed::Ignored(format!("branch {branch} was deleted")));
            }
            let complete = p.commits.len() < MAX_LISTED_COMMITS;
            Ok(Parsed::Change(Change {
                source: source.to_owned(),
                repo: p.repository.full_name,
                branch: branch.to_owned(),
                base: None,
                revision: p.after,
                pr: None,
                event: Event::Push,
                paths: commit_paths(&p.commits, complete),
            }))
        }
        "pull_request" => {
            let p: PullRequestEvent = serde_json::from_slice(body)
                .map_err(|e| format!("failed to read the pull_request payload: {e}"))?;
            if !matches!(p.action.as_str(), "opened" | "synchronize" | "reopened") {
                return Ok(Parsed::Ignored(format!(
                    "pull_request action {:?} changes no code",
                    p.action
                )));
            }
            Ok(Parsed::Change(Change {
                source: source.to_owned(),
                repo: p.repository.full_name,
                branch: p.pull_request.head.git_ref,
                base: Some(p.pull_request.base.git_ref),
                revision: p.pull_request.head.sha,
                pr: Some(p.number),
                event: Event::PullRequest,
                // The payload does not list a pull request's files.
                paths: None,
            }))
        }
        "ping" => Ok(Parsed::Ignored("ping".into())),
        other => Ok(Parsed::Ignored(format!("event {other:?} is not handled"))),
    }
}
