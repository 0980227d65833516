//! The params a triggered build carries: where its code comes from. They
//! are burst's (`BURST_*`, which no submit or config may set), set only
//! here, and their values come from untrusted payloads, so each is checked
//! against a fixed rule before any build sees it.

use std::collections::BTreeMap;

use super::change::Change;
use crate::config::{expand_submit, Config, SubmitError};
use crate::model::NewBuild;

pub const REPO: &str = "BURST_REPO";
pub const BRANCH: &str = "BURST_BRANCH";
pub const REVISION: &str = "BURST_REVISION";
/// Set only for pull (merge) requests.
pub const PR: &str = "BURST_PR";
pub const EVENT: &str = "BURST_EVENT";
/// Where the built-in checkout step fetches from: the poll URL, or the
/// source's `clone_url` (GitHub's and GitLab's own by default).
pub const REPO_URL: &str = "BURST_REPO_URL";

/// Every name, for the docs and the API's readers.
pub const SOURCE_PARAMS: &[&str] = &[REPO, REPO_URL, BRANCH, REVISION, PR, EVENT];

const MAX_LEN: usize = 255;

/// The params of `change`, or why a value is refused.
pub(super) fn of(change: &Change) -> Result<BTreeMap<String, String>, String> {
    let mut p = BTreeMap::new();
    check(REPO, &change.repo, |c| {
        c.is_ascii_alphanumeric() || "._-/:@+~".contains(c)
    })?;
    p.insert(REPO.to_owned(), change.repo.clone());
    branch_ok(&change.branch)?;
    p.insert(BRANCH.to_owned(), change.branch.clone());
    let hex = change.revision.len() == 40 || change.revision.len() == 64;
    if !hex
        || !change
            .revision
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(format!(
            "{REVISION} {:?} is not a full commit id (40 or 64 lowercase hex digits)",
            shorten(&change.revision)
        ));
    }
    p.insert(REVISION.to_owned(), change.revision.clone());
    if let Some(n) = change.pr {
        p.insert(PR.to_owned(), n.to_string());
    }
    p.insert(EVENT.to_owned(), change.event.as_str().to_owned());
    Ok(p)
}

/// Adds `BURST_REPO_URL` to `params` (which `of` made) when source
/// `source` says where its repository is cloned from.
pub(super) fn add_repo_url(config: &Config, source: &str, params: &mut BTreeMap<String, String>) {
    let Some(s) = config.sources.iter().find(|s| s.name == source) else {
        return;
    };
    let repo = params.get(REPO).map_or("", String::as_str);
    if let Some(url) = s.clone_url(repo) {
        params.insert(REPO_URL.to_owned(), url);
    }
}

/// Git's ref rules, narrowed to what is safe to hand to a shell script
/// unquoted by mistake: no spaces, quotes, `$`, `;`, `..`, leading `-`.
fn branch_ok(branch: &str) -> Result<(), String> {
    check(BRANCH, branch, |c| {
        c.is_ascii_alphanumeric() || "._-/+".contains(c)
    })?;
    if branch.starts_with(['-', '/', '.'])
        || branch.ends_with(['/', '.'])
        || branch.contains("..")
        || branch.contains("//")
        || branch.ends_with(".lock")
    {
        return Err(format!("{BRANCH} {branch:?} is not a branch name"));
    }
    Ok(())
}

fn check(name: &str, value: &str, allowed: impl Fn(char) -> bool) -> Result<(), String> {
    if value.is_empty() || value.len() > MAX_LEN || !value.chars().all(allowed) {
        return Err(format!(
            "{name} {:?} refused: 1 to {MAX_LEN} of letters, digits and a few punctuation marks",
            shorten(value)
        ));
    }
    Ok(())
}

fn shorten(s: &str) -> String {
    s.chars().take(80).collect()
}

/// The builds of one submit of `builder` for `change`: the rule's params
/// are checked like a submit's, then the source params are added to the
/// builds and their steps' environment (a step's own env cannot set
/// `BURST_*`, so nothing overrides them).
pub(super) fn expand(
    config: &Config,
    builder: &str,
    rule_params: &BTreeMap<String, String>,
    source: &BTreeMap<String, String>,
    submit_id: &str,
) -> Result<Vec<NewBuild>, SubmitError> {
    let mut builds = expand_submit(config, builder, rule_params, submit_id)?;
    for b in &mut builds {
        b.params.extend(source.clone());
        for step in &mut b.steps {
            step.env.extend(source.clone());
        }
    }
    Ok(builds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::triggers::Event;

    fn change() -> Change {
        Change {
            source: "gh".into(),
            repo: "acme/app".into(),
            branch: "feature/x-1".into(),
            base: Some("main".into()),
            revision: "0123456789abcdef0123456789abcdef01234567".into(),
            pr: Some(42),
            event: Event::PullRequest,
            paths: None,
        }
    }

    #[test]
    fn a_change_becomes_its_params() {
        let p = of(&change()).unwrap();
        assert_eq!(p[REPO], "acme/app");
        assert_eq!(p[BRANCH], "feature/x-1");
        assert_eq!(p[REVISION], "0123456789abcdef0123456789abcdef01234567");
        assert_eq!(p[PR], "42");
        assert_eq!(p[EVENT], "pull_request");
        let push = Change {
            pr: None,
            event: Event::Push,
            ..change()
        };
        assert!(!of(&push).unwrap().contains_key(PR));
    }

    #[test]
    fn hostile_values_are_refused() {
        for branch in [
            "$(rm -rf /)",
            "a b",
            "-x",
            "a..b",
            "x;y",
            "",
            "a\nb",
            "x.lock",
        ] {
            let c = Change {
                branch: branch.into(),
                ..change()
            };
            assert!(of(&c).is_err(), "{branch:?}");
        }
        for rev in ["HEAD", "0123", &"A".repeat(40), &"g".repeat(40)] {
            let c = Change {
                revision: rev.to_string(),
                ..change()
            };
            assert!(of(&c).is_err(), "{rev:?}");
        }
        let c = Change {
            repo: "acme/app`id`".into(),
            ..change()
        };
        assert!(of(&c).is_err());
    }
}
