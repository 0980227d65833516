//! `[retention]`: how long finished builds and their logs are kept. The
//! janitor (`crate::janitor`) applies it.

use std::time::Duration;

use burst_providers::config::{AtLeastOne, Check, Positive};
use serde::Deserialize;

use super::locate::KeyPath;
use super::schema::Config;
use super::validate::Issue;
use crate::model::{Millis, RetentionRule};

/// A finished build is kept while it is younger than `max_age` *or* among
/// its builder's `keep_last` newest finished builds, whichever keeps more.
/// Neither set (the default): everything is kept.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Finished builds younger than this are kept (`"30d"`, `"12h"`).
    pub max_age: Option<Positive>,
    /// Each builder's newest finished builds kept, however old.
    pub keep_last: Option<AtLeastOne>,
    /// How often the janitor looks.
    pub interval: Positive,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            max_age: None,
            keep_last: None,
            interval: Positive::secs(600),
        }
    }
}

impl RetentionConfig {
    /// The rule a pass at `now` applies.
    pub fn rule(&self, now: Millis) -> RetentionRule {
        RetentionRule {
            finished_before: self.max_age.map(|age| {
                let age = i64::try_from(age.get().as_millis()).unwrap_or(i64::MAX);
                now.saturating_sub(age)
            }),
            keep_last: self.keep_last.map(AtLeastOne::get),
        }
    }

    pub fn enabled(&self) -> bool {
        self.max_age.is_some() || self.keep_last.is_some()
    }

    pub fn interval(&self) -> Duration {
        self.interval.get()
    }
}

pub(crate) fn check(config: &Config) -> Vec<Issue> {
    let path = KeyPath::root().key("retention");
    let r = &config.retention;
    let fields: [(&str, Option<String>); 3] = [
        ("max_age", r.max_age.problem()),
        ("keep_last", r.keep_last.problem()),
        ("interval", r.interval.problem()),
    ];
    fields
        .into_iter()
        .filter_map(|(key, problem)| {
            problem.map(|message| Issue {
                path: path.key(key),
                message,
            })
        })
        .collect()
}
