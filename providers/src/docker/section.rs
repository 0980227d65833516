//! The docker provider as the registry sees it: its section's checks, and
//! the provider built from it.

use std::sync::Arc;

use super::config::DockerPoolConfig;
use super::provider::DockerProvider;
use super::settings::{parse_endpoint, parse_memory, DockerSettings, HostSettings};
use super::validate;
use crate::config::{Context, Problems};
use crate::section::Section;
use crate::{Provider, ProviderError};

impl Section for DockerPoolConfig {
    fn absent() -> Option<Self> {
        Some(Self::default())
    }

    fn validate(&self, ctx: &Context, out: &mut Problems) {
        validate::check(self, ctx, out);
    }

    fn build(&self, ctx: &Context) -> Result<Arc<dyn Provider>, ProviderError> {
        Ok(Arc::new(DockerProvider::new(settings(self, ctx)?)?))
    }

    fn worker_urls(&self) -> Vec<String> {
        self.master_url.iter().cloned().collect()
    }
}

/// The provider's settings from a section that validation accepted.
fn settings(d: &DockerPoolConfig, ctx: &Context) -> Result<DockerSettings, ProviderError> {
    let invalid = |e: String| ProviderError::permanent(format!("failed to configure docker: {e}"));
    let mut s = DockerSettings::new(&ctx.master_id, &ctx.pool);
    s.image = d.image.clone();
    s.pull = d.pull;
    s.build_context = d.build_context.clone();
    if let Some(dockerfile) = &d.dockerfile {
        s.dockerfile = dockerfile.clone();
    }
    if !d.hosts.is_empty() {
        s.hosts = d
            .hosts
            .iter()
            .enumerate()
            .map(|(i, h)| {
                Ok(HostSettings {
                    name: h.name(i),
                    endpoint: parse_endpoint(&h.endpoint, h.tls_dir.clone()).map_err(invalid)?,
                    capacity: h.capacity.map(|c| c.get()),
                    price_per_hour: h.price_per_hour,
                })
            })
            .collect::<Result<_, ProviderError>>()?;
    }
    s.network = d.network.clone();
    s.binds = d.binds.clone();
    s.volumes = d.volumes.clone();
    s.cache_volumes = ctx.cache_volumes.clone();
    s.env = d.env.clone();
    s.cpus = d.cpus;
    s.memory = d
        .memory
        .as_deref()
        .map(parse_memory)
        .transpose()
        .map_err(invalid)?;
    s.labels = d.labels.clone();
    s.privileged = d.privileged;
    s.pids_limit = d.pids_limit.get();
    s.user = d.user.clone();
    s.master_url = d.master_url.clone();
    s.platform = d.platform;
    s.worker_path = d.worker_path.clone();
    s.work_dir = d
        .work_dir
        .clone()
        .unwrap_or_else(|| s.platform.default_work_dir().to_owned());
    Ok(s)
}
