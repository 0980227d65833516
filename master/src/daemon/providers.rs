use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use burst_providers::docker::{self, DockerProvider, DockerSettings, HostSettings};
use burst_providers::local::{LocalProvider, LocalSettings};
use burst_providers::ssh::{
    HostKeyCheck, HostSettings as SshHostSettings, Platform, SshProvider, SshSettings,
};
use burst_providers::Provider;

use crate::config::{
    DockerPlatform, DockerPoolConfig, HostKeyCheckConfig, PoolConfig, ProviderKind, PullPolicy,
    SshHostConfig, SshPlatform, SshPoolConfig,
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
        ProviderKind::Docker => {
            let settings = docker_settings(name, &pool.docker, master_id)
                .with_context(|| format!("failed to set up pool {name}"))?;
            let provider = DockerProvider::new(settings)
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

fn host_settings(h: &SshHostConfig) -> SshHostSettings {
    let platform = match h.platform {
        SshPlatform::Linux => Platform::Linux,
        SshPlatform::Macos => Platform::Macos,
        SshPlatform::Windows => Platform::Windows,
    };
    SshHostSettings {
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

/// The provider's settings from a `[pools.NAME.docker]` section that
/// validation has accepted.
fn docker_settings(
    name: &str,
    d: &DockerPoolConfig,
    master_id: &str,
) -> anyhow::Result<DockerSettings> {
    let mut s = DockerSettings::new(master_id, name);
    s.image = d.image.clone();
    s.pull = match d.pull {
        PullPolicy::Never => docker::PullPolicy::Never,
        PullPolicy::IfMissing => docker::PullPolicy::IfMissing,
        PullPolicy::Always => docker::PullPolicy::Always,
    };
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
                let endpoint = docker::parse_endpoint(&h.endpoint, h.tls_dir.clone())
                    .map_err(anyhow::Error::msg)?;
                Ok(HostSettings {
                    name: h.name(i),
                    endpoint,
                    capacity: h.capacity,
                })
            })
            .collect::<anyhow::Result<_>>()?;
    }
    s.network = d.network.clone();
    s.binds = d.binds.clone();
    s.volumes = d.volumes.clone();
    s.env = d.env.clone();
    s.cpus = d.cpus;
    s.memory = d
        .memory
        .as_deref()
        .map(docker::parse_memory)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    s.labels = d.labels.clone();
    s.privileged = d.privileged;
    s.master_url = d.master_url.clone();
    s.platform = match d.platform {
        DockerPlatform::Linux => docker::Platform::Linux,
        DockerPlatform::Windows => docker::Platform::Windows,
    };
    s.worker_path = d.worker_path.clone();
    s.work_dir = d
        .work_dir
        .clone()
        .unwrap_or_else(|| s.platform.default_work_dir().to_owned());
    Ok(s)
}
