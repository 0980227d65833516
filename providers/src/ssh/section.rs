//! The ssh provider as the registry sees it: its section's checks, and the
//! provider built from it.

use std::sync::Arc;

use super::config::{SshHostConfig, SshPoolConfig};
use super::provider::SshProvider;
use super::settings::{HostSettings, SshSettings};
use super::validate;
use crate::config::{Context, Path, Problem, Problems};
use crate::section::Section;
use crate::{Provider, ProviderError};

impl Section for SshPoolConfig {
    fn absent() -> Option<Self> {
        None
    }

    fn missing(name: &str, _ctx: &Context) -> Problem {
        let mut out = Problems::new();
        out.push(
            &Path::root().key(name),
            "required when provider = \"ssh\": add [pools.NAME.ssh] and at least one [[pools.NAME.ssh.hosts]]",
        );
        out.into_vec().remove(0)
    }

    fn validate(&self, ctx: &Context, out: &mut Problems) {
        validate::check(self, ctx, out);
    }

    fn build(&self, ctx: &Context) -> Result<Arc<dyn Provider>, ProviderError> {
        Ok(Arc::new(SshProvider::new(settings(self, ctx))?))
    }
}

fn settings(ssh: &SshPoolConfig, ctx: &Context) -> SshSettings {
    let mut worker_binaries = ssh.worker_binaries.clone();
    if !worker_binaries.contains_key("linux-x86_64") {
        if let Some(local) = SshProvider::default_linux_worker() {
            worker_binaries.insert("linux-x86_64".to_owned(), local);
        }
    }
    SshSettings {
        master_id: ctx.master_id.clone(),
        pool: ctx.pool.clone(),
        hosts: ssh.hosts.iter().map(host_settings).collect(),
        known_hosts: ssh.known_hosts.clone(),
        host_key_check: ssh.host_key_check,
        connect_timeout: ssh.connect_timeout.get(),
        stop_grace: ssh.stop_grace,
        upload: ssh.upload,
        worker_binaries,
        env: ssh.env.clone(),
        control_dir: ctx.state_dir.join("ssh").join(&ctx.pool),
        backoff_min: ctx.backoff_min,
        backoff_max: ctx.backoff_max,
    }
}

fn host_settings(h: &SshHostConfig) -> HostSettings {
    HostSettings {
        name: h.display_name(),
        address: h.address.clone(),
        port: h.port,
        user: h.user.clone(),
        key_file: h.key_file.clone(),
        platform: h.platform,
        max_workers: h.max_workers.get(),
        install_dir: h
            .install_dir
            .clone()
            .unwrap_or_else(|| ".burst/bin".to_owned()),
        state_dir: h.state_dir.clone().unwrap_or_else(|| ".burst".to_owned()),
        wake: h.wake.clone(),
        sleep: h.sleep.clone(),
        wake_timeout: h.wake_timeout.get(),
        price_per_hour: h.price_per_hour,
    }
}
