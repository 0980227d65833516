//! Settings of one EC2 pool, as the provider uses them (derived from its
//! config section in `section.rs`).

use std::collections::BTreeMap;
use std::time::Duration;

/// Error codes on which a spot launch falls back to on-demand by default.
pub const DEFAULT_FALLBACK_CODES: &[&str] = &[
    "InsufficientInstanceCapacity",
    "SpotMaxPriceTooLow",
    "MaxSpotInstanceCountExceeded",
];

/// Which purchase option a pool uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Market {
    Spot,
    OnDemand,
    /// Spot first; on-demand when spot fails with a fallback code.
    #[default]
    SpotWithFallback,
}

/// The worker's OS: picks the user-data template and the spot price product.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Platform {
    #[default]
    Linux,
    Windows,
}

/// How the instance type list is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TypeStrategy {
    /// Always the first type; the next ones only when it has no capacity.
    #[default]
    InOrder,
    /// Each launch starts at the next type (round robin), spreading workers
    /// over capacity pools so one interruption wave takes fewer of them.
    Diversified,
}

/// A launch template, by id or name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LaunchTemplateRef {
    Id {
        id: String,
        version: Option<String>,
    },
    Name {
        name: String,
        version: Option<String>,
    },
}

/// Size and type of the root volume; the device name comes from the AMI
/// unless given.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RootVolume {
    pub size_gib: Option<i32>,
    pub volume_type: Option<String>,
    pub device_name: Option<String>,
}

/// Retries of EC2 API calls that failed transiently (throttling, 5xx,
/// connection errors).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetrySettings {
    /// Retries after the first try.
    pub max_retries: usize,
    pub min_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetrySettings {
    fn default() -> Self {
        Self {
            max_retries: 6,
            min_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(20),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Ec2Settings {
    pub master_id: String,
    pub pool: String,
    pub region: String,
    /// Talk to this endpoint instead of AWS (tests use a local moto).
    pub endpoint_url: Option<String>,
    pub platform: Platform,
    pub ami: Option<String>,
    pub launch_template: Option<LaunchTemplateRef>,
    /// Empty only with a launch template that names the type.
    pub instance_types: Vec<String>,
    pub type_strategy: TypeStrategy,
    /// Tried in order (rotated like the types when diversified).
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
    /// Name or ARN.
    pub instance_profile: Option<String>,
    pub key_name: Option<String>,
    pub root_volume: RootVolume,
    /// Extra tags on instances and volumes.
    pub tags: BTreeMap<String, String>,
    pub market: Market,
    pub fallback_codes: Vec<String>,
    /// USD per hour, as EC2 wants it ("0.05").
    pub spot_max_price: Option<String>,
    /// Handed to the worker for the spot interruption watch.
    pub imds_url: String,
    /// USD per hour by instance type, for on-demand cost estimates (and
    /// spot ones when the price history has nothing).
    pub price_per_hour: BTreeMap<String, f64>,
    pub retry: RetrySettings,
}
