//! The ec2 provider as the registry sees it: its section's checks, and the
//! provider built from it.

use std::sync::Arc;

use super::config::Ec2PoolConfig;
use super::provider::Ec2Provider;
use super::settings::{Ec2Settings, LaunchTemplateRef, RetrySettings, RootVolume};
use super::validate;
use crate::config::{Context, Path, Problem, Problems};
use crate::section::Section;
use crate::{Provider, ProviderError};

impl Section for Ec2PoolConfig {
    fn absent() -> Option<Self> {
        None
    }

    fn missing(name: &str, ctx: &Context) -> Problem {
        let mut out = Problems::new();
        out.push(
            &Path::root().key("provider"),
            format!(
                "provider = {name:?} needs a [pools.{}.{name}] section",
                ctx.pool
            ),
        );
        out.into_vec().remove(0)
    }

    fn validate(&self, _ctx: &Context, out: &mut Problems) {
        validate::check(self, out);
    }

    fn build(&self, ctx: &Context) -> Result<Arc<dyn Provider>, ProviderError> {
        Ok(Arc::new(Ec2Provider::new(settings(self, ctx))?))
    }
}

/// The provider's view of a section that validation accepted.
fn settings(c: &Ec2PoolConfig, ctx: &Context) -> Ec2Settings {
    let launch_template = c.launch_template.as_ref().and_then(|lt| {
        let version = lt.version.clone();
        match (&lt.id, &lt.name) {
            (Some(id), _) => Some(LaunchTemplateRef::Id {
                id: id.as_str().to_owned(),
                version,
            }),
            (None, Some(name)) => Some(LaunchTemplateRef::Name {
                name: name.clone(),
                version,
            }),
            (None, None) => None,
        }
    });
    Ec2Settings {
        master_id: ctx.master_id.clone(),
        pool: ctx.pool.clone(),
        region: c.region.clone(),
        endpoint_url: c.endpoint_url.as_ref().map(|u| u.as_str().to_owned()),
        platform: c.platform,
        ami: c.ami.as_ref().map(|a| a.as_str().to_owned()),
        launch_template,
        instance_types: c.instance_types.clone(),
        type_strategy: c.instance_type_strategy,
        subnets: c.subnets.iter().map(|s| s.as_str().to_owned()).collect(),
        security_groups: c
            .security_groups
            .iter()
            .map(|s| s.as_str().to_owned())
            .collect(),
        instance_profile: c.instance_profile.clone(),
        key_name: c.key_name.clone(),
        root_volume: RootVolume {
            size_gib: c.root_volume_size.and_then(|s| i32::try_from(s).ok()),
            volume_type: c.root_volume_type.clone(),
            device_name: c.root_device_name.clone(),
        },
        tags: c.tags.clone(),
        market: c.market,
        fallback_codes: c.fallback_on.clone(),
        spot_max_price: c.spot_max_price.map(|p| p.to_string()),
        imds_url: c.imds_url.clone(),
        price_per_hour: c.price_per_hour.clone(),
        retry: RetrySettings {
            max_retries: c.api_retries as usize,
            min_delay: c.api_retry_min.get(),
            max_delay: c.api_retry_max,
        },
    }
}
