//! `[pools.NAME]`: the scheduling settings every pool has, and the one
//! provider section its `provider` key names.
//!
//! Read by hand rather than derived: the section keys come from the
//! provider registry, and each value is handed to its type with
//! `next_value`, so toml keeps its spans (and errors their lines).

use std::fmt;
use std::sync::LazyLock;
use std::time::Duration;

use burst_providers::config::{AtLeastOne, Positive};
use burst_providers::{ProviderConfig, ProviderKind, ProviderSection};
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::cost::{BillingConfig, PoolBudget, Teardown};
use super::warm::WarmPeriod;

#[derive(Debug, Clone, PartialEq)]
pub struct PoolConfig {
    /// `provider = "…"` and its `[pools.NAME.<provider>]` section.
    pub provider: ProviderSection,
    pub labels: Vec<String>,
    /// Hard cap on workers of this pool at once, in any state.
    pub max_workers: AtLeastOne,
    /// Idle workers kept warm; 0 scales to zero.
    pub min_idle: u32,
    /// Launches in flight (launched but not yet connected) at once.
    pub max_starting: AtLeastOne,
    pub idle_timeout: Positive,
    /// From launch to the worker's hello.
    pub start_timeout: Positive,
    /// Recycle a worker after this many builds; 0 = never, 1 = a fresh worker
    /// per build.
    pub max_builds: u32,
    /// Keep each build's workspace on its worker when the build ends; by
    /// default the worker removes it, so a reused worker holds no old build.
    pub keep_workspace: bool,
    /// First delay after a failed launch; doubles with jitter up to
    /// `backoff_max`. Zero would retry a failing launch in a tight loop.
    pub backoff_min: Positive,
    pub backoff_max: Duration,
    /// `[[pools.NAME.schedule]]`: warm periods; the last one in force wins.
    pub schedule: Vec<WarmPeriod>,
    /// Spares kept as a fraction of busy workers (GitLab's `scale_factor`),
    /// on top of `min_idle`; 0 keeps none.
    pub idle_scale_factor: f64,
    /// Caps the spares `idle_scale_factor` keeps; default `max_workers`.
    pub idle_scale_limit: Option<u32>,
    /// What a worker of this pool costs an hour, for pools whose provider
    /// records no price (EC2 does); see `cost.rs`.
    pub price_per_hour: Option<f64>,
    pub billing: BillingConfig,
    pub teardown: Teardown,
    pub budget: PoolBudget,
    /// Per hour, for this pool's workers in flight at once.
    pub max_spend_rate: Option<f64>,
}

impl PoolConfig {
    /// A pool of `provider` with every other setting at its default.
    pub fn new(provider: ProviderSection) -> Self {
        Self {
            provider,
            labels: Vec::new(),
            max_workers: AtLeastOne::new(4),
            min_idle: 0,
            max_starting: AtLeastOne::new(4),
            idle_timeout: Positive::secs(300),
            start_timeout: Positive::secs(120),
            max_builds: 0,
            keep_workspace: false,
            backoff_min: Positive::secs(1),
            backoff_max: Duration::from_secs(300),
            schedule: Vec::new(),
            idle_scale_factor: 0.0,
            idle_scale_limit: None,
            price_per_hour: None,
            billing: BillingConfig::default(),
            teardown: Teardown::Idle,
            budget: PoolBudget::default(),
            max_spend_rate: None,
        }
    }
}

/// The keys of a pool's table that are not provider sections.
const COMMON: &[&str] = &[
    "provider",
    "labels",
    "max_workers",
    "min_idle",
    "max_starting",
    "idle_timeout",
    "start_timeout",
    "max_builds",
    "keep_workspace",
    "backoff_min",
    "backoff_max",
    "schedule",
    "idle_scale_factor",
    "idle_scale_limit",
    "price_per_hour",
    "billing",
    "teardown",
    "budget",
    "max_spend_rate",
];

/// Every key a pool's table may hold, for "expected one of" messages.
static KEYS: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    COMMON
        .iter()
        .copied()
        .chain(ProviderKind::names().iter().copied())
        .collect()
});

enum Key {
    Common(&'static str),
    Section(ProviderKind),
}

// A key is refused while it is read, so the error carries the key's span.
impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a pool setting or provider section")
            }
            fn visit_str<E: de::Error>(self, key: &str) -> Result<Key, E> {
                if let Some(common) = COMMON.iter().find(|c| **c == key) {
                    return Ok(Key::Common(common));
                }
                ProviderKind::from_name(key)
                    .map(Key::Section)
                    .ok_or_else(|| E::unknown_field(key, &KEYS))
            }
        }
        d.deserialize_identifier(KeyVisitor)
    }
}

/// A duration written like "30s".
struct Humantime(Duration);

impl<'de> Deserialize<'de> for Humantime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        humantime_serde::deserialize(d).map(Humantime)
    }
}

impl<'de> Deserialize<'de> for PoolConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(PoolVisitor)
    }
}

struct PoolVisitor;

impl<'de> Visitor<'de> for PoolVisitor {
    type Value = PoolConfig;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a pool table")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<PoolConfig, A::Error> {
        let mut kind: Option<ProviderKind> = None;
        let mut sections: Vec<ProviderConfig> = Vec::new();
        // Defaults first; each key read overrides one.
        let mut pool = PoolConfig::new(ProviderSection::from_sections(ProviderKind::Local, vec![]));
        let mut seen: Vec<&'static str> = Vec::new();
        while let Some(key) = map.next_key::<Key>()? {
            let name = match key {
                // Every section is read as its own type, wherever it sits:
                // the one `provider` names is kept, the others are strays.
                Key::Section(k) => {
                    sections.push(ProviderConfig::next_value(k, &mut map)?);
                    continue;
                }
                Key::Common(name) => name,
            };
            if seen.contains(&name) {
                return Err(de::Error::duplicate_field(name));
            }
            seen.push(name);
            match name {
                "provider" => kind = Some(map.next_value()?),
                "labels" => pool.labels = map.next_value()?,
                "max_workers" => pool.max_workers = map.next_value()?,
                "min_idle" => pool.min_idle = map.next_value()?,
                "max_starting" => pool.max_starting = map.next_value()?,
                "idle_timeout" => pool.idle_timeout = map.next_value()?,
                "start_timeout" => pool.start_timeout = map.next_value()?,
                "max_builds" => pool.max_builds = map.next_value()?,
                "keep_workspace" => pool.keep_workspace = map.next_value()?,
                "backoff_min" => pool.backoff_min = map.next_value()?,
                "backoff_max" => pool.backoff_max = map.next_value::<Humantime>()?.0,
                "schedule" => pool.schedule = map.next_value()?,
                "idle_scale_factor" => pool.idle_scale_factor = map.next_value()?,
                "idle_scale_limit" => pool.idle_scale_limit = Some(map.next_value()?),
                "price_per_hour" => pool.price_per_hour = Some(map.next_value()?),
                "billing" => pool.billing = map.next_value()?,
                "teardown" => pool.teardown = map.next_value()?,
                "budget" => pool.budget = map.next_value()?,
                "max_spend_rate" => pool.max_spend_rate = Some(map.next_value()?),
                _ => return Err(de::Error::unknown_field(name, &KEYS)),
            }
        }
        let kind = kind.ok_or_else(|| de::Error::missing_field("provider"))?;
        pool.provider = ProviderSection::from_sections(kind, sections);
        Ok(pool)
    }
}
