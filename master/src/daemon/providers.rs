use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use burst_providers::local::{LocalProvider, LocalSettings};
use burst_providers::Provider;

use crate::config::{PoolConfig, ProviderKind};

/// Builds the provider a pool's config names.
pub fn build(
    name: &str,
    pool: &PoolConfig,
    master_id: &str,
    state_dir: &Path,
) -> anyhow::Result<Arc<dyn Provider>> {
    match pool.provider {
        ProviderKind::Local => {
            let command = if pool.local.command.is_empty() {
                LocalProvider::default_command()?
            } else {
                pool.local.command.clone()
            };
            let settings = LocalSettings {
                master_id: master_id.to_owned(),
                pool: name.to_owned(),
                command,
                env: pool.local.env.clone(),
                work_root: state_dir.join("workers"),
                stop_grace: Duration::from_secs(5),
            };
            let provider = LocalProvider::new(settings)
                .with_context(|| format!("failed to set up pool {name}"))?;
            Ok(Arc::new(provider))
        }
    }
}
