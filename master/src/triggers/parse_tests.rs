//! The forges' documented example payloads (`tests/fixtures/`) read into
//! changes.

#![allow(clippy::unwrap_used)]

use super::hooks::Parsed;
use super::{github, gitlab, Change, Event};

const GITHUB_PUSH: &[u8] = include_bytes!("../../../tests/fixtures/github_push.json");
const GITHUB_PR: &[u8] = include_bytes!("../../../tests/fixtures/github_pull_request.json");
const GITLAB_PUSH: &[u8] = include_bytes!("../../../tests/fixtures/gitlab_push.json");
const GITLAB_MR: &[u8] = include_bytes!("../../../tests/fixtures/gitlab_merge_request.json");

fn change(p: Result<Parsed, String>) -> Change {
    match p {
        Ok(Parsed::Change(c)) => c,
        other => panic!("{other:?}"),
    }
}

fn ignored(p: Result<Parsed, String>) -> String {
    match p {
        Ok(Parsed::Ignored(why)) => why,
        other => panic!("{other:?}"),
    }
}

fn edit(body: &[u8], f: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let mut v: serde_json::Value = serde_json::from_slice(body).unwrap();
    f(&mut v);
    serde_json::to_vec(&v).unwrap()
}

#[test]
fn github_push_and_pull_request() {
    let c = change(github::parse("gh", "push", GITHUB_PUSH));
    assert_eq!(c.repo, "acme/app");
    assert_eq!(c.branch, "main");
    assert_eq!(c.revision, "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c");
    assert_eq!(c.event, Event::Push);
    assert_eq!(c.paths, Some(vec!["README.md".to_owned()]));

    let c = change(github::parse("gh", "pull_request", GITHUB_PR));
    assert_eq!(c.branch, "changes");
    assert_eq!(c.base.as_deref(), Some("main"));
    assert_eq!(c.revision, "ec26c3e57ca3a959ca5aad62de7213c562f8c821");
    assert_eq!(c.pr, Some(2));
    assert_eq!(c.paths, None);
    for action in ["synchronize", "reopened"] {
        let body = edit(GITHUB_PR, |v| v["action"] = action.into());
        assert_eq!(
            change(github::parse("gh", "pull_request", &body)).pr,
            Some(2)
        );
    }
    let closed = edit(GITHUB_PR, |v| v["action"] = "closed".into());
    assert!(ignored(github::parse("gh", "pull_request", &closed)).contains("closed"));
}

#[test]
fn github_tags_deletions_unknown_events_and_garbage() {
    let tag = edit(GITHUB_PUSH, |v| v["ref"] = "refs/tags/v1".into());
    assert!(ignored(github::parse("gh", "push", &tag)).contains("not a branch"));
    let deleted = edit(GITHUB_PUSH, |v| {
        v["deleted"] = true.into();
        v["after"] = "0".repeat(40).into();
    });
    assert!(ignored(github::parse("gh", "push", &deleted)).contains("deleted"));
    assert!(ignored(github::parse("gh", "issues", b"{}")).contains("not handled"));
    assert!(github::parse("gh", "push", b"{not json").is_err());
    assert!(github::parse("gh", "push", b"{}").is_err());
    // 20 listed commits may be a truncated list: paths unknown.
    let many = edit(GITHUB_PUSH, |v| {
        let c = v["commits"][0].clone();
        v["commits"] = serde_json::Value::Array(vec![c; 20]);
    });
    assert_eq!(change(github::parse("gh", "push", &many)).paths, None);
}

#[test]
fn gitlab_push_and_merge_request() {
    let c = change(gitlab::parse("gl", "Push Hook", GITLAB_PUSH));
    assert_eq!(c.repo, "mike/diaspora");
    assert_eq!(c.branch, "main");
    assert_eq!(c.revision, "da1560886d4f094c3e6c9ef40349f7d38b5d27d7");
    assert_eq!(
        c.paths,
        Some(vec![
            "CHANGELOG".to_owned(),
            "app/controller/application.rb".to_owned()
        ])
    );
    let truncated = edit(GITLAB_PUSH, |v| v["total_commits_count"] = 40.into());
    assert_eq!(
        change(gitlab::parse("gl", "Push Hook", &truncated)).paths,
        None
    );

    let c = change(gitlab::parse("gl", "Merge Request Hook", GITLAB_MR));
    assert_eq!(c.repo, "gitlabhq/gitlab-test");
    assert_eq!(c.branch, "ms-viewport");
    assert_eq!(c.base.as_deref(), Some("master"));
    assert_eq!(c.pr, Some(1));
    assert_eq!(c.event, Event::PullRequest);
    // An update without new commits (a title edit) builds nothing; one
    // with them does.
    let edited = edit(GITLAB_MR, |v| {
        v["object_attributes"]["action"] = "update".into()
    });
    assert!(ignored(gitlab::parse("gl", "Merge Request Hook", &edited)).contains("update"));
    let pushed = edit(GITLAB_MR, |v| {
        v["object_attributes"]["action"] = "update".into();
        v["object_attributes"]["oldrev"] = "a".repeat(40).into();
    });
    assert_eq!(
        change(gitlab::parse("gl", "Merge Request Hook", &pushed)).pr,
        Some(1)
    );
    assert!(ignored(gitlab::parse("gl", "Issue Hook", b"{}")).contains("not handled"));
}
