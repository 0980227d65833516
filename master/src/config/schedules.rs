//! `[[schedules]]`: builds started by the clock, with cron syntax in a
//! time zone. The runtime is `crate::triggers::schedule`.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use burst_common::env_policy;
use serde::Deserialize;

use super::locate::KeyPath;
use super::schema::Config;
use super::validate::{is_name, Issue};

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    /// `[a-z0-9_-]+`; its last run is kept under this name.
    pub name: String,
    /// Five fields (minute hour day-of-month month day-of-week), or a
    /// nickname such as `@daily`.
    pub cron: String,
    /// An IANA zone such as `Europe/Berlin`; default `UTC`. The cron fields
    /// are wall-clock times there, daylight saving included.
    #[serde(default)]
    pub timezone: Option<String>,
    pub builders: Vec<String>,
    /// A source and branch the builds are of: they get its `BURST_*`
    /// params (the head last seen by a poller or a push webhook).
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub branch: Option<String>,
    /// Skip a run when the branch has not moved since the last one.
    #[serde(default)]
    pub only_if_changed: bool,
    /// Declared params of the builders.
    #[serde(default)]
    pub params: BTreeMap<String, String>,
}

impl ScheduleConfig {
    pub fn tz(&self) -> Result<chrono_tz::Tz, String> {
        let name = self.timezone.as_deref().unwrap_or("UTC");
        chrono_tz::Tz::from_str(name).map_err(|_| {
            format!("unknown time zone {name:?} (use an IANA name such as \"Europe/Berlin\")")
        })
    }

    pub fn parsed_cron(&self) -> Result<croner::Cron, String> {
        croner::Cron::from_str(&self.cron)
            .map_err(|e| format!("{:?} is not a cron pattern: {e}", self.cron))
    }
}

pub(crate) fn check(config: &Config) -> Vec<Issue> {
    let mut issues = Vec::new();
    let mut push = |path: KeyPath, message: String| issues.push(Issue { path, message });
    let builders: BTreeSet<&str> = config.builders.iter().map(|b| b.name.as_str()).collect();
    let mut names: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, s) in config.schedules.iter().enumerate() {
        let path = KeyPath::root().key("schedules").index(i);
        if !is_name(&s.name) {
            push(
                path.key("name"),
                format!("schedule name {:?} must match [a-z0-9_-]+", s.name),
            );
        } else if let Some(first) = names.insert(&s.name, i) {
            push(
                path.key("name"),
                format!(
                    "duplicate schedule name {:?} (also schedules[{first}])",
                    s.name
                ),
            );
        }
        if let Err(why) = s.parsed_cron() {
            push(path.key("cron"), why);
        }
        if let Err(why) = s.tz() {
            push(path.key("timezone"), why);
        }
        if s.builders.is_empty() {
            push(
                path.key("builders"),
                "a schedule needs at least one builder".into(),
            );
        }
        for (j, b) in s.builders.iter().enumerate() {
            if !builders.contains(b.as_str()) {
                push(
                    path.key("builders").index(j),
                    format!("unknown builder {b:?}"),
                );
            }
        }
        match (&s.source, &s.branch) {
            (Some(src), _) if !config.sources.iter().any(|c| &c.name == src) => {
                push(path.key("source"), format!("unknown source {src:?}"));
            }
            (Some(_), None) => push(
                path.key("branch"),
                "a schedule with a source needs the branch it builds".into(),
            ),
            (None, Some(_)) => push(
                path.key("source"),
                "branch needs the source it is a branch of".into(),
            ),
            _ => {}
        }
        if s.only_if_changed && s.source.is_none() {
            push(
                path.key("only_if_changed"),
                "needs source and branch: the branch whose move makes a run worth it".into(),
            );
        }
        for (name, value) in &s.params {
            let at = path.key("params").key(name);
            if let Some(why) = env_policy::submit_refusal(name) {
                push(at, why);
                continue;
            }
            for b in config
                .builders
                .iter()
                .filter(|b| s.builders.contains(&b.name))
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;

    use crate::config::load_str_with_secret_env;

    #[test]
    fn broken_schedules_name_file_line_and_key() {
        let text = r#"[pools.local]
provider = "local"
[[builders]]
name = "b"
steps = [{ name = "s", run = "true" }]
[[schedules]]
name = "nightly"
cron = "0 25 * * *"
timezone = "Mars/Olympus"
builders = ["b", "nope"]
only_if_changed = true
"#;
        let err = load_str_with_secret_env(text, Path::new("t.toml"), &BTreeMap::new(), &|_| None)
            .unwrap_err();
        let got: Vec<String> = err.problems().iter().map(ToString::to_string).collect();
        for want in [
            "t.toml:8: schedules[0].cron: \"0 25 * * *\" is not a cron pattern",
            "t.toml:9: schedules[0].timezone: unknown time zone \"Mars/Olympus\"",
            "t.toml:10: schedules[0].builders[1]: unknown builder \"nope\"",
            "t.toml:11: schedules[0].only_if_changed: needs source and branch",
        ] {
            assert!(
                got.iter().any(|g| g.starts_with(want)),
                "missing {want:?} in {got:#?}"
            );
        }
        assert_eq!(got.len(), 4, "{got:#?}");
    }
}
