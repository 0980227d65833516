//! `[simulate]`: what `burst simulate` needs beyond the pools themselves:
//! the wall-clock time a trace starts at (warm periods are wall-clock
//! times) and, per pool, how the simulated provider behaves. The daemon
//! ignores the table; `burst simulate` reads it (`crate::simulate`).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer};

use super::locate::KeyPath;
use super::schema::Config;
use super::validate::Issue;

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SimulateConfig {
    /// When second 0 of a trace is (RFC 3339); default Monday
    /// 2026-11-30T00:00:00Z, so a trace's days are weekdays from Monday.
    pub start: Option<Rfc3339>,
    /// Pool name -> its simulated provider; a pool not listed boots in
    /// [`SimPoolConfig::default`]'s time, never fails and costs nothing.
    pub pools: BTreeMap<String, SimPoolConfig>,
}

/// `[simulate.pools.NAME]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SimPoolConfig {
    /// From launch to the worker's hello: `"45s"` (fixed) or `"30s..90s"`
    /// (uniform between the two).
    pub boot: BootTime,
    /// The share of launches that fail (a transient provider error), 0 to 1.
    pub failure_rate: f64,
    /// Dollars per instance-hour, booting and idle included. Unset: the
    /// simulation counts no cost for this pool and says so.
    pub price_per_hour: Option<f64>,
}

impl Default for SimPoolConfig {
    fn default() -> Self {
        Self {
            boot: BootTime::fixed(Duration::from_secs(60)),
            failure_rate: 0.0,
            price_per_hour: None,
        }
    }
}

/// A boot-time distribution: uniform over `min..=max` (equal: fixed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootTime {
    pub min: Duration,
    pub max: Duration,
}

impl BootTime {
    pub fn fixed(d: Duration) -> Self {
        Self { min: d, max: d }
    }
}

impl std::str::FromStr for BootTime {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let parse = |part: &str| {
            humantime::parse_duration(part.trim())
                .map_err(|e| format!("{part:?} is not a duration like \"45s\": {e}"))
        };
        let boot = match s.split_once("..") {
            Some((min, max)) => Self {
                min: parse(min)?,
                max: parse(max)?,
            },
            None => Self::fixed(parse(s)?),
        };
        if boot.min > boot.max {
            return Err(format!(
                "{s:?}: the shortest boot is longer than the longest"
            ));
        }
        Ok(boot)
    }
}

impl fmt::Display for BootTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |d| humantime::format_duration(d).to_string();
        if self.min == self.max {
            f.write_str(&show(self.min))
        } else {
            write!(f, "{}..{}", show(self.min), show(self.max))
        }
    }
}

impl<'de> Deserialize<'de> for BootTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// An RFC 3339 time in the file, e.g. `"2026-11-30T00:00:00Z"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rfc3339(pub DateTime<Utc>);

impl<'de> Deserialize<'de> for Rfc3339 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|t| Rfc3339(t.with_timezone(&Utc)))
            .map_err(|e| serde::de::Error::custom(format!("{text:?} is not an RFC 3339 time: {e}")))
    }
}

pub(crate) fn check(config: &Config) -> Vec<Issue> {
    let path = KeyPath::root().key("simulate").key("pools");
    let mut issues = Vec::new();
    for (name, pool) in &config.simulate.pools {
        let path = path.key(name);
        if !config.pools.contains_key(name) {
            issues.push(Issue {
                path: path.clone(),
                message: format!("no pool {name:?} in [pools] to simulate"),
            });
        }
        if !(0.0..1.0).contains(&pool.failure_rate) {
            issues.push(Issue {
                path: path.key("failure_rate"),
                message: "must be at least 0 and below 1".into(),
            });
        }
        if pool
            .price_per_hour
            .is_some_and(|p| !(p >= 0.0 && p.is_finite()))
        {
            issues.push(Issue {
                path: path.key("price_per_hour"),
                message: "must be a price of 0 or more".into(),
            });
        }
    }
    issues
}

#[cfg(test)]
mod tests;
