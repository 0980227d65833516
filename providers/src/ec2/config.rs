//! `[pools.NAME.ec2]`: workers as EC2 instances (docs/ec2.md). Required
//! when `provider = "ec2"`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::settings::{Market, Platform, TypeStrategy};
use crate::config::{AmiId, HttpUrl, Positive, SecurityGroupId, SubnetId, TemplateId};

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ec2PoolConfig {
    pub region: String,
    /// EC2 API endpoint instead of AWS's, e.g. a local moto in tests.
    #[serde(default)]
    pub endpoint_url: Option<HttpUrl>,
    /// Picks the user-data script: POSIX shell or PowerShell.
    #[serde(default)]
    pub platform: Platform,
    /// AMI id; may be left to the launch template (and overrides it).
    #[serde(default)]
    pub ami: Option<AmiId>,
    #[serde(default)]
    pub launch_template: Option<Ec2LaunchTemplate>,
    /// Tried as `instance_type_strategy` says; may be empty when the
    /// launch template names the type.
    #[serde(default)]
    pub instance_types: Vec<String>,
    #[serde(default)]
    pub instance_type_strategy: TypeStrategy,
    #[serde(default)]
    pub subnets: Vec<SubnetId>,
    #[serde(default)]
    pub security_groups: Vec<SecurityGroupId>,
    /// IAM instance profile name or ARN.
    #[serde(default)]
    pub instance_profile: Option<String>,
    #[serde(default)]
    pub key_name: Option<String>,
    /// GiB.
    #[serde(default)]
    pub root_volume_size: Option<u32>,
    #[serde(default)]
    pub root_volume_type: Option<String>,
    /// Defaults to the AMI's root device name.
    #[serde(default)]
    pub root_device_name: Option<String>,
    /// Extra tags on instances and volumes.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default)]
    pub market: Market,
    /// Spot error codes on which `spot_with_fallback` launches on-demand.
    #[serde(default = "defaults::fallback_on")]
    pub fallback_on: Vec<String>,
    /// USD per hour; unset = the on-demand price.
    #[serde(default)]
    pub spot_max_price: Option<f64>,
    /// The metadata service the worker polls for spot interruption notices.
    #[serde(default = "defaults::imds_url")]
    pub imds_url: String,
    /// USD per hour by instance type, for cost estimates.
    #[serde(default)]
    pub price_per_hour: BTreeMap<String, f64>,
    /// Retries of an EC2 call that failed transiently (throttling, 5xx).
    #[serde(default = "defaults::api_retries")]
    pub api_retries: u32,
    #[serde(default = "defaults::api_retry_min")]
    pub api_retry_min: Positive,
    #[serde(default = "defaults::api_retry_max", with = "humantime_serde")]
    pub api_retry_max: Duration,
}

/// A launch template by `id` or `name`, at `version` (default: the
/// template's default version).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Ec2LaunchTemplate {
    pub id: Option<TemplateId>,
    pub name: Option<String>,
    pub version: Option<String>,
}

mod defaults {
    use std::time::Duration;

    use crate::config::Positive;
    use crate::ec2::{contract, DEFAULT_FALLBACK_CODES};

    pub fn fallback_on() -> Vec<String> {
        DEFAULT_FALLBACK_CODES
            .iter()
            .map(|c| (*c).to_owned())
            .collect()
    }
    pub fn imds_url() -> String {
        contract::DEFAULT_IMDS_URL.to_owned()
    }
    pub fn api_retries() -> u32 {
        6
    }
    pub fn api_retry_min() -> Positive {
        Positive::new(Duration::from_millis(250))
    }
    pub fn api_retry_max() -> Duration {
        Duration::from_secs(20)
    }
}
