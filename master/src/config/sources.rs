//! `[[sources]]` (where changes come from: webhooks and git pollers) and
//! `[[rules]]` (which builders a change starts). The runtime is in
//! `crate::triggers`; here are the shapes and the checks that name keys.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use burst_common::env_policy;
use burst_providers::config::{is_env_name, Positive};
use serde::Deserialize;

use super::locate::KeyPath;
use super::schema::Config;
use super::validate::{is_name, Issue};

/// How often a git poller asks when `interval` is not set.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceKind {
    /// `POST /hooks/github`, signed with `X-Hub-Signature-256`.
    Github,
    /// `POST /hooks/gitlab`, checked against `X-Gitlab-Token`.
    Gitlab,
    /// `POST /hooks/generic/{name}` with a bearer token.
    Generic,
    /// `git ls-remote` every `interval`.
    GitPoll,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Github => "github",
            SourceKind::Gitlab => "gitlab",
            SourceKind::Generic => "generic",
            SourceKind::GitPoll => "git-poll",
        }
    }
}

/// One change source. The keys that apply depend on `kind`; a key of
/// another kind is an error naming it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// `[a-z0-9_-]+`; rules and reporters name it, `/hooks/generic/{name}`
    /// uses it.
    pub name: String,
    pub kind: SourceKind,
    /// A `[secrets]` name: the HMAC key (github), the token (gitlab,
    /// generic), or the https password of a git-poll URL.
    #[serde(default)]
    pub secret: Option<String>,
    /// github / gitlab: the repository (`owner/name`, GitLab's
    /// `group/project`); a hook of another repository is ignored.
    #[serde(default)]
    pub repo: Option<String>,
    /// git-poll: the repository URL (https, ssh or file).
    #[serde(default)]
    pub url: Option<String>,
    /// github / gitlab: where the checkout step fetches `repo` from
    /// (`https://github.com/{repo}.git`, `https://gitlab.com/{repo}.git` by
    /// default; set it for GitHub Enterprise or a self-managed GitLab).
    /// `{repo}` is replaced by the repository's `owner/name`.
    #[serde(default)]
    pub clone_url: Option<String>,
    /// git-poll: branch names or globs (`release/*`) to watch.
    #[serde(default)]
    pub branches: Vec<String>,
    /// git-poll: time between polls.
    #[serde(default)]
    pub interval: Option<Positive>,
    /// generic: the builders a request may start.
    #[serde(default)]
    pub builders: Vec<String>,
}

impl SourceConfig {
    pub fn poll_interval(&self) -> Duration {
        self.interval.map_or(DEFAULT_POLL_INTERVAL, Positive::get)
    }

    /// The URL the checkout step fetches `repo` (a change's `BURST_REPO`)
    /// from, as `BURST_REPO_URL`; `None` for generic sources.
    pub fn clone_url(&self, repo: &str) -> Option<String> {
        let default = match self.kind {
            SourceKind::GitPoll => return self.url.clone(),
            SourceKind::Generic => return None,
            SourceKind::Github => "https://github.com/{repo}.git",
            SourceKind::Gitlab => "https://gitlab.com/{repo}.git",
        };
        Some(
            self.clone_url
                .as_deref()
                .unwrap_or(default)
                .replace("{repo}", repo),
        )
    }

    /// For a git-poll URL: the name shown as `BURST_REPO`.
    pub fn repo_name(&self) -> String {
        self.repo
            .clone()
            .or_else(|| self.url.clone())
            .unwrap_or_else(|| self.name.clone())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventFilter {
    Push,
    /// A GitHub pull request or a GitLab merge request.
    PullRequest,
}

/// `[[rules]]`: a change of `source` that passes every filter starts one
/// submit of each of `builders`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    pub source: String,
    pub builders: Vec<String>,
    /// Branch globs; for a pull request, the branch it targets. Empty: all.
    #[serde(default)]
    pub branches: Vec<String>,
    /// Empty: push and pull_request.
    #[serde(default)]
    pub events: Vec<EventFilter>,
    /// Changed-path globs (`src/**`); a change touching none is skipped.
    /// A change whose paths are unknown (a pull request, a poll, a push of
    /// more commits than the payload lists) is never skipped for its paths.
    #[serde(default)]
    pub paths: Vec<String>,
    /// Wait until the branch has been quiet this long, then build only the
    /// newest revision. Unset: build at once.
    #[serde(default, with = "humantime_serde")]
    pub tree_stable: Option<Duration>,
    /// A newer change of the same branch or pull request cancels the build
    /// this rule started for the older one (queued or running).
    #[serde(default)]
    pub cancel_superseded: bool,
    /// Declared params of the builders, set on every build this rule starts.
    #[serde(default)]
    pub params: BTreeMap<String, String>,
}

/// Longest `tree_stable`: past it a change would wait longer than anyone
/// expects a CI to.
const MAX_TREE_STABLE: Duration = Duration::from_secs(24 * 3600);
/// Shortest poll interval: `git ls-remote` is cheap, but not free for the
/// server being asked.
const MIN_POLL_INTERVAL: Duration = Duration::from_secs(1);

pub(crate) fn check(config: &Config) -> Vec<Issue> {
    let mut issues = Vec::new();
    let mut push = |path: KeyPath, message: String| issues.push(Issue { path, message });
    let builders: BTreeSet<&str> = config.builders.iter().map(|b| b.name.as_str()).collect();
    let mut names: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, s) in config.sources.iter().enumerate() {
        let path = KeyPath::root().key("sources").index(i);
        if !is_name(&s.name) {
            push(
                path.key("name"),
                format!("source name {:?} must match [a-z0-9_-]+", s.name),
            );
        } else if let Some(first) = names.insert(&s.name, i) {
            push(
                path.key("name"),
                format!("duplicate source name {:?} (also sources[{first}])", s.name),
            );
        }
        for (problem_path, why) in source_problems(config, &path, s, &builders) {
            push(problem_path, why);
        }
    }
    for (i, r) in config.rules.iter().enumerate() {
        let path = KeyPath::root().key("rules").index(i);
        let Some(source) = config.sources.iter().find(|s| s.name == r.source) else {
            push(
                path.key("source"),
                format!(
                    "unknown source {:?} (sources: {})",
                    r.source,
                    list(config.sources.iter().map(|s| s.name.as_str()))
                ),
            );
            continue;
        };
        if source.kind == SourceKind::Generic {
            push(
                path.key("source"),
                format!(
                    "source {:?} is generic: its requests name their builder, rules do not apply",
                    r.source
                ),
            );
        }
        if r.builders.is_empty() {
            push(
                path.key("builders"),
                "a rule needs at least one builder".into(),
            );
        }
        for (j, name) in r.builders.iter().enumerate() {
            if !builders.contains(name.as_str()) {
                push(
                    path.key("builders").index(j),
                    format!(
                        "unknown builder {name:?} (builders: {})",
                        list(builders.iter().copied())
                    ),
                );
            }
        }
        for (key, globs) in [("branches", &r.branches), ("paths", &r.paths)] {
            for (j, g) in globs.iter().enumerate() {
                if let Err(why) = crate::triggers::glob_problem(g) {
                    push(path.key(key).index(j), why);
                }
            }
        }
        if source.kind == SourceKind::GitPoll && r.events.contains(&EventFilter::PullRequest) {
            push(
                path.key("events"),
                "a git-poll source sees branch pushes only, never pull requests".into(),
            );
        }
        if let Some(d) = r.tree_stable {
            if d > MAX_TREE_STABLE {
                push(
                    path.key("tree_stable"),
                    format!(
                        "must be at most 24h (got {})",
                        humantime::format_duration(d)
                    ),
                );
            }
        }
        for (name, value) in &r.params {
            let at = path.key("params").key(name);
            if !is_env_name(name) {
                push(at, format!("{name:?} must match [A-Za-z_][A-Za-z0-9_]*"));
                continue;
            }
            if let Some(why) = env_policy::submit_refusal(name) {
                push(at, why);
                continue;
            }
            for b in config
                .builders
                .iter()
                .filter(|b| r.builders.contains(&b.name))
            {
                match b.params.get(name) {
                    None if !b.matrix.contains_key(name) => push(
                        at.clone(),
                        format!("param {name:?} is not declared by builder {:?}", b.name),
                    ),
                    Some(rules) => {
                        if let Some(rule) = super::params::rule_broken(rules, value) {
                            push(
                                at.clone(),
                                format!("{name}={value:?} refused by builder {:?}: {rule}", b.name),
                            );
                        }
                    }
                    None => {}
                }
            }
        }
    }
    issues
}

fn source_problems(
    config: &Config,
    path: &KeyPath,
    s: &SourceConfig,
    builders: &BTreeSet<&str>,
) -> Vec<(KeyPath, String)> {
    let mut out = Vec::new();
    let kind = s.kind.as_str();
    let mut only = |key: &str, set: bool, kinds: &str| {
        if set {
            out.push((
                path.key(key),
                format!("{key} applies to kind {kinds} only, not {kind}"),
            ));
        }
    };
    let webhook = matches!(s.kind, SourceKind::Github | SourceKind::Gitlab);
    let poll = s.kind == SourceKind::GitPoll;
    only(
        "repo",
        s.repo.is_some() && !webhook && !poll,
        "github, gitlab or git-poll",
    );
    only("url", s.url.is_some() && !poll, "git-poll");
    only(
        "clone_url",
        s.clone_url.is_some() && !webhook,
        "github or gitlab",
    );
    only("branches", !s.branches.is_empty() && !poll, "git-poll");
    only("interval", s.interval.is_some() && !poll, "git-poll");
    only(
        "builders",
        !s.builders.is_empty() && s.kind != SourceKind::Generic,
        "generic",
    );
    if let Some(why) = s.clone_url.as_deref().and_then(url_problem) {
        out.push((path.key("clone_url"), why));
    }
    match &s.secret {
        None if s.kind != SourceKind::GitPoll => out.push((
            path.key("secret"),
            format!(
                "a {kind} source needs secret = \"NAME\" (a [secrets] entry): requests are \
                 authenticated by it"
            ),
        )),
        Some(name) if !config.secrets.contains_key(name) => out.push((
            path.key("secret"),
            format!("unknown secret {name:?} (declare it under [secrets])"),
        )),
        _ => {}
    }
    if poll {
        match s.url.as_deref() {
            None => out.push((
                path.key("url"),
                "a git-poll source needs url = \"https://…\", \"ssh://…\" or \"file://…\"".into(),
            )),
            Some(url) => {
                if let Some(why) = url_problem(url) {
                    out.push((path.key("url"), why));
                }
            }
        }
        if s.branches.is_empty() {
            out.push((
                path.key("branches"),
                "a git-poll source needs at least one branch or glob, e.g. [\"main\"]".into(),
            ));
        }
        for (j, g) in s.branches.iter().enumerate() {
            if let Err(why) = crate::triggers::glob_problem(g) {
                out.push((path.key("branches").index(j), why));
            }
        }
        if let Some(i) = s.interval {
            if i.get() < MIN_POLL_INTERVAL {
                out.push((path.key("interval"), "must be at least 1s".into()));
            }
        }
    }
    if s.kind == SourceKind::Generic {
        if s.builders.is_empty() {
            out.push((
                path.key("builders"),
                "a generic source needs the builders its requests may start".into(),
            ));
        }
        for (j, name) in s.builders.iter().enumerate() {
            if !builders.contains(name.as_str()) {
                out.push((
                    path.key("builders").index(j),
                    format!("unknown builder {name:?}"),
                ));
            }
        }
    }
    out
}

/// A URL `git ls-remote` may be given: https, http, ssh or file, and no
/// option in disguise.
pub(crate) fn url_problem(url: &str) -> Option<String> {
    const SCHEMES: &[&str] = &["https://", "http://", "ssh://", "git://", "file://"];
    if url.starts_with('-') || url.chars().any(char::is_control) {
        return Some(format!("{url:?} is not a repository URL"));
    }
    if !SCHEMES.iter().any(|s| url.starts_with(s)) {
        return Some(format!(
            "{url:?} must start with https://, http://, ssh://, git:// or file://"
        ));
    }
    // Credentials come from `secret`, never the URL (which logs and the
    // API show).
    let rest = url.split_once("://").map_or("", |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or("");
    if url.starts_with("http") && authority.contains('@') {
        return Some("must not carry credentials; use secret = \"NAME\"".into());
    }
    None
}

fn list<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let names: Vec<&str> = names.collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;

    use super::*;
    use crate::config::load_str_with_secret_env;

    fn problems(text: &str) -> Vec<String> {
        let env = |v: &str| (v == "S").then(|| "a-long-secret".into());
        match load_str_with_secret_env(text, Path::new("t.toml"), &BTreeMap::new(), &env) {
            Ok(_) => Vec::new(),
            Err(e) => e.problems().iter().map(ToString::to_string).collect(),
        }
    }

    const BASE: &str = r#"[pools.local]
provider = "local"
[secrets]
S = { env = "S" }
[[builders]]
name = "b"
steps = [{ name = "s", run = "true" }]
"#;

    #[test]
    fn broken_sources_rules_and_reporters_name_file_line_and_key() {
        let text = format!(
            r#"{BASE}[[sources]]
name = "gh"
kind = "github"
url = "https://x"

[[sources]]
name = "poll"
kind = "git-poll"
url = "--upload-pack=x"
branches = ["release/["]

[[rules]]
source = "gh"
builders = ["nope"]
params = {{ BURST_REVISION = "x" }}

[[rules]]
source = "missing"
builders = ["b"]

[[reporters]]
name = "r"
kind = "github"
sources = ["gh"]
token = "UNDECLARED"
"#
        );
        let got = problems(&text);
        let want = [
            "t.toml:8: sources[0].secret: a github source needs secret",
            "t.toml:11: sources[0].url: url applies to kind git-poll only",
            "t.toml:16: sources[1].url: \"--upload-pack=x\" is not a repository URL",
            "t.toml:17: sources[1].branches[0]: \"release/[\" is not a glob",
            "t.toml:21: rules[0].builders[0]: unknown builder \"nope\"",
            "t.toml:22: rules[0].params.BURST_REVISION: BURST_REVISION may not be set by a submit",
            "t.toml:25: rules[1].source: unknown source \"missing\"",
            "t.toml:32: reporters[0].token: unknown secret \"UNDECLARED\"",
        ];
        for w in want {
            assert!(
                got.iter().any(|g| g.starts_with(w)),
                "missing {w:?} in {got:#?}"
            );
        }
        assert_eq!(got.len(), want.len(), "{got:#?}");
    }

    #[test]
    fn a_good_config_loads() {
        let text = format!(
            r#"{BASE}[[sources]]
name = "gh"
kind = "github"
secret = "S"
[[rules]]
source = "gh"
builders = ["b"]
branches = ["main", "release/*"]
paths = ["src/**"]
tree_stable = "30s"
cancel_superseded = true
[[reporters]]
name = "status"
kind = "github"
sources = ["gh"]
token = "S"
"#
        );
        assert_eq!(problems(&text), Vec::<String>::new());
    }

    #[test]
    fn urls_are_checked() {
        assert_eq!(url_problem("https://github.com/acme/app.git"), None);
        assert_eq!(url_problem("file:///srv/git/app.git"), None);
        assert_eq!(url_problem("ssh://git@host/app.git"), None);
        assert!(url_problem("--upload-pack=evil").is_some());
        assert!(url_problem("/srv/git/app.git").is_some());
        assert!(url_problem("https://user:pw@github.com/acme/app").is_some());
    }

    #[test]
    fn the_github_example_loads() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/github.toml");
        let text = std::fs::read_to_string(path).unwrap();
        let env = |_: &str| Some("a-long-example-secret".into());
        let config =
            load_str_with_secret_env(&text, Path::new(path), &BTreeMap::new(), &env).unwrap();
        assert_eq!(config.sources[0].kind, SourceKind::Github);
        assert_eq!(config.rules[0].builders, ["test"]);
        assert_eq!(config.reporters[0].name, "github-status");
        // Its builder checks the pushed revision out with the built-in step.
        assert!(config.builders[0].steps[0].is_checkout());
    }

    #[test]
    fn clone_urls_default_per_forge_and_may_be_set() {
        let source = |kind: SourceKind, clone_url: Option<&str>| SourceConfig {
            name: "s".into(),
            kind,
            secret: None,
            repo: None,
            url: Some("file:///srv/app.git".into()),
            clone_url: clone_url.map(str::to_owned),
            branches: vec![],
            interval: None,
            builders: vec![],
        };
        let url = |kind, clone_url| source(kind, clone_url).clone_url("acme/app");
        assert_eq!(
            url(SourceKind::Github, None).as_deref(),
            Some("https://github.com/acme/app.git")
        );
        assert_eq!(
            url(SourceKind::Gitlab, None).as_deref(),
            Some("https://gitlab.com/acme/app.git")
        );
        assert_eq!(
            url(
                SourceKind::Github,
                Some("https://ghe.example.com/{repo}.git")
            )
            .as_deref(),
            Some("https://ghe.example.com/acme/app.git")
        );
        assert_eq!(
            url(SourceKind::GitPoll, None).as_deref(),
            Some("file:///srv/app.git")
        );
        assert_eq!(url(SourceKind::Generic, None), None);
        let text = format!(
            "{BASE}\n[[sources]]\nname = \"p\"\nkind = \"git-poll\"\nurl = \"file:///x\"\nbranches = [\"main\"]\nclone_url = \"https://h/x\"\n"
        );
        let p = problems(&text);
        assert!(
            p.iter()
                .any(|p| p.contains("clone_url applies to kind github or gitlab only")),
            "{p:?}"
        );
    }
}
