//! `[[pools.NAME.schedule]]`: warm periods. During a period (cron patterns
//! in a time zone) the pool keeps the period's `min_idle` (and, if given,
//! `max_workers`); `warmup` starts it that long early. The scheduler's side
//! is `scheduler/warm.rs`.
//!
//! Patterns and zones are parsed while the file is read but refused only in
//! validation, so every problem of a file is reported at once, with its line.

use std::str::FromStr;
use std::time::Duration;

use chrono_tz::Tz;
use croner::Cron;
use serde::Deserialize;

use super::locate::KeyPath;
use super::pool::PoolConfig;
use super::validate::Issue;

/// One `[[pools.NAME.schedule]]` entry.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(from = "RawWarmPeriod")]
pub struct WarmPeriod {
    /// Five-field cron patterns; a minute that matches any of them is in
    /// the period (GitLab's `periods`), e.g. `"* 8-17 * * mon-fri"`.
    pub periods: Vec<Pattern>,
    /// IANA zone the patterns are wall-clock times in; default UTC.
    pub timezone: Result<Tz, String>,
    pub min_idle: u32,
    pub max_workers: Option<u32>,
    /// Launch the period's spares this long before it starts.
    pub warmup: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Pattern {
    pub text: String,
    pub cron: Result<Cron, String>,
}

impl Pattern {
    /// Parsed now; a bad pattern keeps its error for `check` to report
    /// with its line.
    pub fn new(text: impl Into<String>) -> Self {
        let text = text.into();
        Self {
            cron: Cron::from_str(&text).map_err(|e| format!("{text:?} is not a cron pattern: {e}")),
            text,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWarmPeriod {
    periods: Vec<String>,
    #[serde(default)]
    timezone: Option<String>,
    min_idle: u32,
    #[serde(default)]
    max_workers: Option<u32>,
    #[serde(default, with = "humantime_serde")]
    warmup: Option<Duration>,
}

impl From<RawWarmPeriod> for WarmPeriod {
    fn from(raw: RawWarmPeriod) -> Self {
        let zone = raw.timezone.unwrap_or_else(|| "UTC".to_owned());
        Self {
            periods: raw.periods.into_iter().map(Pattern::new).collect(),
            timezone: Tz::from_str(&zone).map_err(|_| {
                format!("unknown time zone {zone:?} (use an IANA name such as \"Europe/Berlin\")")
            }),
            min_idle: raw.min_idle,
            max_workers: raw.max_workers,
            warmup: raw.warmup.unwrap_or_default(),
        }
    }
}

/// The longest warm-up: a day ahead is already a standing pool.
const MAX_WARMUP: Duration = Duration::from_secs(24 * 3600);

/// Problems of a pool's `schedule` entries and idle scaling.
pub(crate) fn check(path: &KeyPath, pool: &PoolConfig) -> Vec<Issue> {
    let mut issues = Vec::new();
    let mut push = |path: KeyPath, message: String| issues.push(Issue { path, message });
    let max = pool.max_workers.get();
    for (i, w) in pool.schedule.iter().enumerate() {
        let path = path.key("schedule").index(i);
        if w.periods.is_empty() {
            push(
                path.key("periods"),
                "needs at least one cron pattern, e.g. \"* 8-17 * * mon-fri\"".into(),
            );
        }
        for (j, p) in w.periods.iter().enumerate() {
            if let Err(why) = &p.cron {
                push(path.key("periods").index(j), why.clone());
            } else if p.text.split_whitespace().count() != 5 {
                // A seconds field would make a period a few seconds a minute.
                push(
                    path.key("periods").index(j),
                    format!(
                        "{:?}: a period is five fields (minute hour day month weekday)",
                        p.text
                    ),
                );
            }
        }
        if let Err(why) = &w.timezone {
            push(path.key("timezone"), why.clone());
        }
        let cap = w.max_workers.unwrap_or(max);
        if w.max_workers == Some(0) {
            push(path.key("max_workers"), "must be at least 1".into());
        } else if w.min_idle > cap {
            push(
                path.key("min_idle"),
                format!("must not exceed max_workers (got {} > {cap})", w.min_idle),
            );
        }
        if w.warmup > MAX_WARMUP {
            push(
                path.key("warmup"),
                format!(
                    "must be at most 24h (got {})",
                    humantime::format_duration(w.warmup)
                ),
            );
        }
    }
    let factor = pool.idle_scale_factor;
    if !factor.is_finite() || factor < 0.0 {
        push(
            path.key("idle_scale_factor"),
            format!("must be a number of at least 0 (got {factor})"),
        );
    }
    if let Some(limit) = pool.idle_scale_limit {
        if limit > max {
            push(
                path.key("idle_scale_limit"),
                format!("must not exceed max_workers (got {limit} > {max})"),
            );
        }
    }
    issues
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;

    use crate::config::load_str_with_secret_env;

    fn load(pool: &str) -> Result<crate::config::Config, Vec<String>> {
        let text = format!(
            "[pools.local]\nprovider = \"local\"\nmax_workers = 4\n{pool}\n[[builders]]\n\
             name = \"b\"\nsteps = [{{ name = \"s\", run = \"true\" }}]\n"
        );
        load_str_with_secret_env(&text, Path::new("t.toml"), &BTreeMap::new(), &|_| None)
            .map_err(|e| e.problems().iter().map(ToString::to_string).collect())
    }

    #[test]
    fn a_schedule_is_read_with_its_defaults() {
        let config = load(
            "[[pools.local.schedule]]\nperiods = [\"* 8-17 * * mon-fri\"]\n\
             timezone = \"Europe/Berlin\"\nmin_idle = 2\nwarmup = \"5m\"\n",
        )
        .unwrap();
        let w = &config.pools["local"].schedule[0];
        assert_eq!(w.min_idle, 2);
        assert_eq!(w.max_workers, None);
        assert_eq!(w.warmup.as_secs(), 300);
        assert_eq!(w.timezone, Ok(chrono_tz::Europe::Berlin));
        assert!(w.periods[0].cron.is_ok());
    }

    #[test]
    fn broken_schedules_name_file_line_and_key() {
        let got = load(
            "idle_scale_factor = -1.0\nidle_scale_limit = 9\n\
             [[pools.local.schedule]]\nperiods = [\"* 25 * * *\", \"0 * * * * *\"]\n\
             timezone = \"Mars/Olympus\"\nmin_idle = 5\nwarmup = \"2days\"\n\
             [[pools.local.schedule]]\nperiods = []\nmin_idle = 1\nmax_workers = 0\n",
        )
        .unwrap_err();
        for want in [
            "t.toml:4: pools.local.idle_scale_factor: must be a number of at least 0",
            "t.toml:5: pools.local.idle_scale_limit: must not exceed max_workers (got 9 > 4)",
            "t.toml:7: pools.local.schedule[0].periods[0]: \"* 25 * * *\" is not a cron pattern",
            "t.toml:7: pools.local.schedule[0].periods[1]: \"0 * * * * *\": a period is five fields",
            "t.toml:8: pools.local.schedule[0].timezone: unknown time zone \"Mars/Olympus\"",
            "t.toml:9: pools.local.schedule[0].min_idle: must not exceed max_workers (got 5 > 4)",
            "t.toml:10: pools.local.schedule[0].warmup: must be at most 24h",
            "t.toml:12: pools.local.schedule[1].periods: needs at least one cron pattern",
            "t.toml:14: pools.local.schedule[1].max_workers: must be at least 1",
        ] {
            assert!(
                got.iter().any(|g| g.starts_with(want)),
                "missing {want:?} in {got:#?}"
            );
        }
        assert_eq!(got.len(), 9, "{got:#?}");
    }

    #[test]
    fn an_unknown_schedule_key_names_its_line() {
        let got = load(
            "[[pools.local.schedule]]\nperiods = [\"* * * * *\"]\nmin_idle = 1\nmin_idel = 2\n",
        )
        .unwrap_err();
        assert!(
            got.iter()
                .any(|g| g.starts_with("t.toml:7") && g.contains("min_idel")),
            "{got:#?}"
        );
    }
}
