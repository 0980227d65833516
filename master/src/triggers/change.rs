//! A change: what a webhook or a poll says happened to a repository.

use crate::config::EventFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Push,
    /// A GitHub pull request or GitLab merge request opened, reopened or
    /// pushed to.
    PullRequest,
    /// A `[[schedules]]` run; rules never see these.
    Schedule,
}

impl Event {
    /// `BURST_EVENT`'s value.
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Push => "push",
            Event::PullRequest => "pull_request",
            Event::Schedule => "schedule",
        }
    }

    /// What a rule's `events` calls it; `None` for what no rule matches.
    pub fn filter(self) -> Option<EventFilter> {
        match self {
            Event::Push => Some(EventFilter::Push),
            Event::PullRequest => Some(EventFilter::PullRequest),
            Event::Schedule => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The configured source it came through.
    pub source: String,
    /// `owner/name` (GitHub), `group/project` (GitLab), or the poll URL.
    pub repo: String,
    /// The branch whose code is built: a push's branch, a pull request's
    /// head branch.
    pub branch: String,
    /// A pull request's target branch.
    pub base: Option<String>,
    /// The full commit id to build.
    pub revision: String,
    /// A pull (merge) request's number.
    pub pr: Option<u64>,
    pub event: Event,
    /// Files the change touched, when the payload lists them all.
    pub paths: Option<Vec<String>>,
}

impl Change {
    /// The branch rules match: for a pull request the one it targets (as
    /// GitHub Actions' `branches` filter does), else the pushed branch.
    pub fn rule_branch(&self) -> &str {
        self.base.as_deref().unwrap_or(&self.branch)
    }

    /// What a newer change supersedes: the same pull request, or the same
    /// branch pushed again.
    pub fn line(&self) -> String {
        match self.pr {
            Some(n) => format!("pr/{n}"),
            None => format!("branch/{}", self.branch),
        }
    }
}

/// `refs/heads/main` -> `main`; tags and other refs are not branches.
pub(super) fn branch_of(git_ref: &str) -> Option<&str> {
    git_ref
        .strip_prefix("refs/heads/")
        .filter(|b| !b.is_empty())
}

/// Collects `added`, `modified` and `removed` of a payload's commits, or
/// `None` when the payload may not list every commit (`complete` false).
pub(super) fn commit_paths(commits: &[serde_json::Value], complete: bool) -> Option<Vec<String>> {
    if !complete {
        return None;
    }
    let mut paths = Vec::new();
    for c in commits {
        for key in ["added", "modified", "removed"] {
            if let Some(list) = c.get(key).and_then(|v| v.as_array()) {
                paths.extend(list.iter().filter_map(|p| p.as_str()).map(str::to_owned));
            }
        }
    }
    paths.sort();
    paths.dedup();
    Some(paths)
}
