use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use burst_providers::docker::{self, DockerProvider, DockerSettings, HostSettings};
use burst_providers::ec2::{
    Ec2Provider, Ec2Settings, LaunchTemplateRef, Market, Platform, RetrySettings, RootVolume,
    TypeStrategy,
};
use burst_providers::local::{LocalProvider, LocalSettings};
use burst_providers::ssh::{
    HostKeyCheck, HostSettings as SshHostSettings, Platform as SshHostPlatform, SshProvider,
    SshSettings,
};
use burst_providers::Provider;

use crate::config::{
    DockerPlatform, DockerPoolConfig, Ec2Market, Ec2Platform, Ec2PoolConfig, Ec2TypeStrategy,
    HostKeyCheckConfig, PoolConfig, ProviderKind, PullPolicy, SshHostConfig, SshPlatform,
    SshPoolConfig,
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
        ProviderKind::Ec2 => {
            let ec2 = pool.ec2.as_ref().with_context(|| {
                format!("failed to set up pool {name}: no [pools.{name}.ec2] section")
            })?;
            let provider = Ec2Provider::new(ec2_settings(name, master_id, ec2))
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
        SshPlatform::Linux => SshHostPlatform::Linux,
        SshPlatform::Macos => SshHostPlatform::Macos,
        SshPlatform::Windows => SshHostPlatform::Windows,
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

/// The provider's view of `[pools.NAME.ec2]`.
pub fn ec2_settings(name: &str, master_id: &str, c: &Ec2PoolConfig) -> Ec2Settings {
    let launch_template = c.launch_template.as_ref().and_then(|lt| {
        let version = lt.version.clone();
        match (&lt.id, &lt.name) {
            (Some(id), _) => Some(LaunchTemplateRef::Id {
                id: id.clone(),
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
        master_id: master_id.to_owned(),
        pool: name.to_owned(),
        region: c.region.clone(),
        endpoint_url: c.endpoint_url.clone(),
        platform: match c.platform {
            Ec2Platform::Linux => Platform::Linux,
            Ec2Platform::Windows => Platform::Windows,
        },
        ami: c.ami.clone(),
        launch_template,
        instance_types: c.instance_types.clone(),
        type_strategy: match c.instance_type_strategy {
            Ec2TypeStrategy::InOrder => TypeStrategy::InOrder,
            Ec2TypeStrategy::Diversified => TypeStrategy::Diversified,
        },
        subnets: c.subnets.clone(),
        security_groups: c.security_groups.clone(),
        instance_profile: c.instance_profile.clone(),
        key_name: c.key_name.clone(),
        root_volume: RootVolume {
            size_gib: c.root_volume_size.and_then(|s| i32::try_from(s).ok()),
            volume_type: c.root_volume_type.clone(),
            device_name: c.root_device_name.clone(),
        },
        tags: c.tags.clone(),
        market: match c.market {
            Ec2Market::Spot => Market::Spot,
            Ec2Market::OnDemand => Market::OnDemand,
            Ec2Market::SpotWithFallback => Market::SpotWithFallback,
        },
        fallback_codes: c.fallback_on.clone(),
        spot_max_price: c.spot_max_price.map(|p| p.to_string()),
        imds_url: c.imds_url.clone(),
        price_per_hour: c.price_per_hour.clone(),
        retry: RetrySettings {
            max_retries: c.api_retries as usize,
            min_delay: c.api_retry_min,
            max_delay: c.api_retry_max,
        },
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
