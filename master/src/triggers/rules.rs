//! Which rules a change matches: by source, event, target branch and
//! changed paths.

use std::time::Duration;

use super::change::Change;
use super::glob::Globs;
use crate::config::{Config, RuleConfig};

/// A rule with its globs compiled.
#[derive(Debug, Clone)]
pub(super) struct Rule {
    pub(super) index: usize,
    pub(super) config: RuleConfig,
    branches: Globs,
    paths: Globs,
}

impl Rule {
    pub(super) fn all(config: &Config) -> Vec<Rule> {
        config
            .rules
            .iter()
            .enumerate()
            .map(|(index, r)| Rule {
                index,
                config: r.clone(),
                branches: Globs::new(&r.branches),
                paths: Globs::new(&r.paths),
            })
            .collect()
    }

    pub(super) fn tree_stable(&self) -> Duration {
        self.config.tree_stable.unwrap_or_default()
    }

    /// Whether `change` starts this rule's builders. Unknown paths never
    /// skip a change: building too often is safer than missing a change.
    pub(super) fn matches(&self, change: &Change) -> bool {
        let r = &self.config;
        r.source == change.source
            && change
                .event
                .filter()
                .is_some_and(|e| r.events.is_empty() || r.events.contains(&e))
            && self.branches.matches(change.rule_branch())
            && (self.paths.is_empty()
                || change
                    .paths
                    .as_ref()
                    .is_none_or(|paths| paths.iter().any(|p| self.paths.matches(p))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::EventFilter;
    use crate::triggers::Event;

    fn rule(f: impl FnOnce(&mut RuleConfig)) -> Rule {
        let mut config = RuleConfig {
            source: "gh".into(),
            builders: vec!["b".into()],
            branches: vec![],
            events: vec![],
            paths: vec![],
            tree_stable: None,
            cancel_superseded: false,
            params: Default::default(),
        };
        f(&mut config);
        Rule {
            index: 0,
            branches: Globs::new(&config.branches),
            paths: Globs::new(&config.paths),
            config,
        }
    }

    fn push(branch: &str, paths: Option<&[&str]>) -> Change {
        Change {
            source: "gh".into(),
            repo: "acme/app".into(),
            branch: branch.into(),
            base: None,
            revision: "a".repeat(40),
            pr: None,
            event: Event::Push,
            paths: paths.map(|p| p.iter().map(|s| s.to_string()).collect()),
        }
    }

    #[test]
    fn source_event_and_branch_filter() {
        let r = rule(|r| {
            r.branches = vec!["main".into(), "release/*".into()];
            r.events = vec![EventFilter::Push];
        });
        assert!(r.matches(&push("main", None)));
        assert!(r.matches(&push("release/2", None)));
        assert!(!r.matches(&push("feature/x", None)));
        let mut other = push("main", None);
        other.source = "other".into();
        assert!(!r.matches(&other));
        let pr = Change {
            pr: Some(7),
            base: Some("main".into()),
            branch: "feature/x".into(),
            event: Event::PullRequest,
            ..push("feature/x", None)
        };
        assert!(!r.matches(&pr), "pull requests are filtered out");
        // A pull request's target branch is what `branches` matches.
        let r = rule(|r| r.branches = vec!["main".into()]);
        assert!(r.matches(&pr));
    }

    #[test]
    fn changed_paths_filter_and_unknown_paths_never_skip() {
        let r = rule(|r| r.paths = vec!["src/**".into(), "Cargo.toml".into()]);
        assert!(r.matches(&push("main", Some(&["src/lib.rs", "README.md"]))));
        assert!(r.matches(&push("main", Some(&["Cargo.toml"]))));
        assert!(!r.matches(&push("main", Some(&["docs/a.md", "README.md"]))));
        assert!(!r.matches(&push("main", Some(&[]))));
        assert!(r.matches(&push("main", None)));
    }
}
