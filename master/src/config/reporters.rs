//! `[[reporters]]`: where the states of builds that sources started are
//! sent (GitHub and GitLab commit statuses, a generic JSON webhook). The
//! runtime is in `crate::reporters`.

use std::collections::BTreeMap;

use burst_providers::config::{Check, HttpUrl};
use serde::Deserialize;

use super::locate::KeyPath;
use super::schema::Config;
use super::validate::{is_name, Issue};

pub const GITHUB_API: &str = "https://api.github.com";
pub const GITLAB_API: &str = "https://gitlab.com/api/v4";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReporterKind {
    /// `POST {api_url}/repos/{owner}/{repo}/statuses/{sha}`.
    Github,
    /// `POST {api_url}/projects/{id}/statuses/{sha}`.
    Gitlab,
    /// `POST {url}` with the build's state as JSON.
    Generic,
}

impl ReporterKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ReporterKind::Github => "github",
            ReporterKind::Gitlab => "gitlab",
            ReporterKind::Generic => "generic",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReporterConfig {
    /// `[a-z0-9_-]+`, shown in the metrics and a build's reports.
    pub name: String,
    pub kind: ReporterKind,
    /// Builds started by these sources are reported.
    pub sources: Vec<String>,
    /// A `[secrets]` name: the API token (github, gitlab) or a bearer token
    /// sent to the generic URL.
    #[serde(default)]
    pub token: Option<String>,
    /// github / gitlab: the API base, for GitHub Enterprise
    /// (`https://HOST/api/v3`) or a self-managed GitLab
    /// (`https://HOST/api/v4`). generic: the URL posted to (required).
    #[serde(default)]
    pub url: Option<HttpUrl>,
    /// Where people open the master (the status's `target_url` is
    /// `{build_url}/builds/{id}`); defaults to `http://{master.http_listen}`.
    #[serde(default)]
    pub build_url: Option<HttpUrl>,
    /// The status context's prefix: `{context}/{builder}`, plus the matrix
    /// cell. Defaults to `burst`.
    #[serde(default)]
    pub context: Option<String>,
}

impl ReporterConfig {
    /// The base URL requests go to.
    pub fn api_url(&self) -> String {
        let url = match (&self.url, self.kind) {
            (Some(url), _) => url.to_string(),
            (None, ReporterKind::Github) => GITHUB_API.to_owned(),
            (None, ReporterKind::Gitlab) => GITLAB_API.to_owned(),
            (None, ReporterKind::Generic) => String::new(),
        };
        url.trim_end_matches('/').to_owned()
    }

    pub fn context_prefix(&self) -> &str {
        self.context.as_deref().unwrap_or("burst")
    }
}

pub(crate) fn check(config: &Config) -> Vec<Issue> {
    let mut issues = Vec::new();
    let mut push = |path: KeyPath, message: String| issues.push(Issue { path, message });
    let mut names: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, r) in config.reporters.iter().enumerate() {
        let path = KeyPath::root().key("reporters").index(i);
        if !is_name(&r.name) {
            push(
                path.key("name"),
                format!("reporter name {:?} must match [a-z0-9_-]+", r.name),
            );
        } else if let Some(first) = names.insert(&r.name, i) {
            push(
                path.key("name"),
                format!(
                    "duplicate reporter name {:?} (also reporters[{first}])",
                    r.name
                ),
            );
        }
        if r.sources.is_empty() {
            push(
                path.key("sources"),
                "a reporter needs the sources whose builds it reports".into(),
            );
        }
        for (j, s) in r.sources.iter().enumerate() {
            if !config.sources.iter().any(|c| &c.name == s) {
                push(
                    path.key("sources").index(j),
                    format!("unknown source {s:?}"),
                );
            }
        }
        match &r.token {
            None if r.kind != ReporterKind::Generic => push(
                path.key("token"),
                format!(
                    "a {} reporter needs token = \"NAME\" (a [secrets] entry holding an API token)",
                    r.kind.as_str()
                ),
            ),
            Some(name) if !config.secrets.contains_key(name) => push(
                path.key("token"),
                format!("unknown secret {name:?} (declare it under [secrets])"),
            ),
            _ => {}
        }
        if r.kind == ReporterKind::Generic && r.url.is_none() {
            push(
                path.key("url"),
                "a generic reporter needs url = \"https://…\"".into(),
            );
        }
        for (key, url) in [("url", &r.url), ("build_url", &r.build_url)] {
            if let Some(why) = url.problem() {
                push(path.key(key), why);
            }
        }
        if let Some(c) = &r.context {
            if c.is_empty() || c.len() > 100 || c.chars().any(char::is_control) {
                push(
                    path.key("context"),
                    "must be 1 to 100 printable characters".into(),
                );
            }
        }
    }
    issues
}
