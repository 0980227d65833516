use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use burst_providers::local::{LocalProvider, LocalSettings};
use burst_providers::ssh::{HostKeyCheck, HostSettings, Platform, SshProvider, SshSettings};
use burst_providers::Provider;

use crate::config::{
    HostKeyCheckConfig, PoolConfig, ProviderKind, SshHostConfig, SshPlatform, SshPoolConfig,
};

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
        ProviderKind::Ssh => {
            let ssh = pool.ssh.as_ref().with_context(|| {
                format!("failed to set up pool {name}: no [pools.{name}.ssh] section")
            })?;
            let settings = ssh_settings(name, pool, ssh, master_id, state_dir);
            let provider = SshProvider::new(settings)
                .with_context(|| format!("failed to set up pool {name}"))?;
            Ok(Arc::new(provider))
        }
    }
}

fn ssh_settings(
    name: &str,
    pool: &PoolConfig,
    ssh: &SshPoolConfig,
    master_id: &str,
    state_dir: &Path,
) -> SshSettings {
    let mut worker_binaries = ssh.worker_binaries.clone();
    if !worker_binaries.contains_key("linux-x86_64") {
        if let Some(local) = SshProvider::default_linux_worker() {
            worker_binaries.insert("linux-x86_64".to_owned(), local);
        }
    }
    SshSettings {
        master_id: master_id.to_owned(),
        pool: name.to_owned(),
        hosts: ssh.hosts.iter().map(host_settings).collect(),
        known_hosts: ssh.known_hosts.clone(),
        host_key_check: match ssh.host_key_check {
            HostKeyCheckConfig::Strict => HostKeyCheck::Strict,
            HostKeyCheckConfig::AcceptNew => HostKeyCheck::AcceptNew,
        },
        connect_timeout: ssh.connect_timeout,
        stop_grace: ssh.stop_grace,
        upload: ssh.upload,
        worker_binaries,
        env: ssh.env.clone(),
        control_dir: state_dir.join("ssh").join(name),
        backoff_min: pool.backoff_min,
        backoff_max: pool.backoff_max,
    }
}

fn host_settings(h: &SshHostConfig) -> HostSettings {
    let platform = match h.platform {
        SshPlatform::Linux => Platform::Linux,
        SshPlatform::Macos => Platform::Macos,
        SshPlatform::Windows => Platform::Windows,
    };
    HostSettings {
        name: h.display_name(),
        address: h.address.clone(),
        port: h.port,
        user: h.user.clone(),
        key_file: h.key_file.clone(),
        platform,
        max_workers: h.max_workers,
        install_dir: h
            .install_dir
            .clone()
            .unwrap_or_else(|| ".burst/bin".to_owned()),
        state_dir: h.state_dir.clone().unwrap_or_else(|| ".burst".to_owned()),
        wake: h.wake.clone(),
        sleep: h.sleep.clone(),
        wake_timeout: h.wake_timeout,
    }
}
