//! The Docker provider: one container per worker, placed on the emptiest
//! healthy host of the pool.

use std::collections::{BTreeSet, HashMap};

use async_trait::async_trait;
use bollard::models::{ContainerCreateBody, ContainerStateStatusEnum, HostConfig};
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, CreateContainerOptionsBuilder, InspectContainerOptions,
    ListContainersOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
    StartContainerOptions,
};
use bollard::Docker;
use futures::StreamExt;
use tokio::time::Instant;

use super::errors::{self, Class};
use super::hosts::{Host, Hosts, WORDS};
use super::image;
use super::labels::{
    cache_volume_filter, pool_filter, LABEL_CACHE, LABEL_MASTER, LABEL_POOL, LABEL_WORKER,
};
use super::platform::{self, Platform, WorkerVars};
use super::settings::{DockerSettings, PullPolicy};
use super::url::{plan, with_host, Plan};
use crate::host_choice::{self, Failure, SlotHost};
use crate::{Health, LaunchSpec, Launched, ListedInstance, Provider, ProviderError};

/// Log lines a failed start reports.
const LOG_TAIL: &str = "20";

pub struct DockerProvider {
    settings: DockerSettings,
    hosts: Hosts,
}

/// A failed API call on `host`: the host is at fault when it is down.
fn api_failure(what: &str, host: &Host, e: bollard::errors::Error) -> Failure {
    Failure {
        host_at_fault: errors::class(&e) == Class::HostDown,
        error: errors::provider_error(what, host.name(), e),
    }
}

impl DockerProvider {
    pub fn new(settings: DockerSettings) -> Result<Self, ProviderError> {
        let bad = |m: String| {
            ProviderError::permanent(format!("failed to configure the docker provider: {m}"))
        };
        if settings.image.trim().is_empty() {
            return Err(bad("empty image".into()));
        }
        if settings.hosts.is_empty() {
            return Err(bad("no hosts".into()));
        }
        if settings.privileged && settings.platform == Platform::Windows {
            return Err(bad("windows containers cannot run privileged".into()));
        }
        if settings.privileged {
            tracing::warn!(
                pool = %settings.pool,
                "docker containers run privileged: a step can take over the docker host"
            );
        }
        let mut names = BTreeSet::new();
        for host in &settings.hosts {
            if host.name.is_empty() || host.name.contains('/') {
                return Err(bad(format!(
                    "host name {:?} must be non-empty without '/'",
                    host.name
                )));
            }
            if !names.insert(host.name.as_str()) {
                return Err(bad(format!("duplicate host name {:?}", host.name)));
            }
        }
        let hosts = Hosts::new(
            settings.hosts.clone(),
            settings.api_timeout,
            settings.quarantine_min,
            settings.quarantine_max,
        );
        Ok(Self { settings, hosts })
    }

    fn container_name(worker_id: &str) -> String {
        format!("burst-{worker_id}")
    }

    /// The host's name and the container id in one handle.
    fn provider_id(host: &Host, container_id: &str) -> String {
        format!("{}/{container_id}", host.name())
    }

    fn parse_provider_id(provider_id: &str) -> Result<(&str, &str), ProviderError> {
        provider_id
            .rsplit_once('/')
            .filter(|(h, c)| !h.is_empty() && !c.is_empty())
            .ok_or_else(|| {
                ProviderError::permanent(format!(
                    "failed to parse docker provider id {provider_id:?} (want HOST/CONTAINER)"
                ))
            })
    }

    fn host(&self, name: &str) -> Result<&Host, ProviderError> {
        self.hosts.by_name(name).map(AsRef::as_ref).ok_or_else(|| {
            ProviderError::permanent(format!(
                "failed to find docker host {name:?} in the pool's settings: it was removed \
                 from the config; remove its burst containers by hand"
            ))
        })
    }

    /// The URL the worker on `host` dials.
    async fn worker_url(&self, host: &Host, spec: &LaunchSpec) -> Result<String, ProviderError> {
        let s = &self.settings;
        let decided = plan(
            &spec.master_url,
            s.master_url.as_deref(),
            s.network.as_deref(),
            host.settings.endpoint.is_local(),
        )
        .map_err(ProviderError::permanent)?;
        match decided {
            Plan::Use(url) => Ok(url),
            Plan::Gateway => {
                let gateway = host.gateway(s.network.as_deref()).await?;
                with_host(&spec.master_url, Some(gateway)).map_err(ProviderError::permanent)
            }
        }
    }

    fn container_body(&self, spec: &LaunchSpec, url: &str) -> ContainerCreateBody {
        let s = &self.settings;
        let process = platform::process(
            s.platform,
            s.worker_path.as_deref(),
            &s.work_dir,
            &s.env,
            &WorkerVars {
                master_url: url,
                master_pin: spec.master_pin.as_deref(),
                worker_id: &spec.worker_id,
                labels: &spec.labels,
                master_id: &spec.master_id,
                pool: &spec.pool,
            },
        );
        let mut labels: HashMap<String, String> = s.labels.clone().into_iter().collect();
        labels.insert(LABEL_MASTER.to_owned(), spec.master_id.clone());
        labels.insert(LABEL_POOL.to_owned(), spec.pool.clone());
        labels.insert(LABEL_WORKER.to_owned(), spec.worker_id.clone());
        let hardening = platform::hardening(s.platform, s.privileged, s.pids_limit);
        let host_config = HostConfig {
            security_opt: hardening.security_opt,
            cap_drop: hardening.cap_drop,
            cap_add: hardening.cap_add,
            pids_limit: hardening.pids_limit,
            binds: {
                let mut binds = s.binds.clone();
                binds.extend(
                    s.cache_volumes
                        .iter()
                        .map(|v| format!("{}:{}", v.name, v.target)),
                );
                (!binds.is_empty()).then_some(binds)
            },
            network_mode: s.network.clone(),
            nano_cpus: s.cpus.map(|c| (c * 1e9).round() as i64),
            memory: s.memory.and_then(|m| i64::try_from(m).ok()),
            privileged: Some(s.privileged),
            ..Default::default()
        };
        ContainerCreateBody {
            image: Some(s.image.clone()),
            entrypoint: process.entrypoint,
            env: Some(process.env),
            working_dir: process.working_dir,
            // The token arrives on stdin (see `hand_over_token`), then the
            // worker's stdin closes.
            open_stdin: Some(true),
            stdin_once: Some(true),
            attach_stdin: Some(true),
            labels: Some(labels),
            volumes: (!s.volumes.is_empty()).then(|| s.volumes.clone()),
            user: s.user.clone(),
            host_config: Some(host_config),
            ..Default::default()
        }
    }

    async fn launch_on(&self, host: &Host, spec: &LaunchSpec) -> Result<Launched, Failure> {
        let s = &self.settings;
        let began = Instant::now();
        let docker = host.client().await.map_err(|error| Failure {
            host_at_fault: !error.is_permanent(),
            error,
        })?;
        let url = self.worker_url(host, spec).await.map_err(|error| Failure {
            host_at_fault: !error.is_permanent(),
            error,
        })?;
        if s.pull == PullPolicy::Always && s.build_context.is_none() {
            image::refresh(host, docker, &s.image).await?;
        }
        self.ensure_cache_volumes(docker, host, spec).await?;
        let name = Self::container_name(&spec.worker_id);
        let body = self.container_body(spec, &url);
        let create = || {
            let options = CreateContainerOptionsBuilder::new().name(&name).build();
            docker.create_container(Some(options), body.clone())
        };
        let created = match create().await {
            Ok(created) => created,
            Err(e)
                if errors::is_not_found(&e) && !image::exists(host, docker, &s.image).await? =>
            {
                image::provide(host, docker, s).await?;
                create()
                    .await
                    .map_err(|e| api_failure("create a container", host, e))?
            }
            Err(e) => return Err(api_failure("create a container", host, e)),
        };
        let id = created.id;
        if let Err(failure) = start_with_token(docker, &id, &spec.token, host).await {
            // Nothing is left behind: the created container goes too.
            if let Err(rm) = remove(docker, &id).await {
                tracing::warn!(container = %id, host = host.name(), error = %rm, "failed to remove a container that did not start");
            }
            return Err(failure);
        }
        tracing::debug!(worker = %spec.worker_id, host = host.name(), container = %id, %url, "container started");
        let mut details = serde_json::json!({
                "host": host.name(),
                "container_id": id,
                "container_name": name,
                "image": s.image,
                "master_url": url,
                // Create + start as the engine took them: the bulk of a cold start.
                "launch_ms": began.elapsed().as_millis() as u64,
        });
        if let Some(price) = host.settings.price_per_hour {
            details["price_per_hour"] = price.into();
        }
        Ok(Launched {
            provider_id: Self::provider_id(host, &id),
            details,
        })
    }

    /// Creates the pool's cache volumes on `host`, labelled as burst's, so
    /// the janitor can find them (creating one that exists changes nothing).
    async fn ensure_cache_volumes(
        &self,
        docker: &Docker,
        host: &Host,
        spec: &LaunchSpec,
    ) -> Result<(), Failure> {
        for v in &self.settings.cache_volumes {
            let labels = HashMap::from([
                (LABEL_MASTER.to_owned(), spec.master_id.clone()),
                (LABEL_POOL.to_owned(), spec.pool.clone()),
                (LABEL_CACHE.to_owned(), v.name.clone()),
            ]);
            let request = bollard::models::VolumeCreateRequest {
                name: Some(v.name.clone()),
                labels: Some(labels),
                ..Default::default()
            };
            docker
                .create_volume(request)
                .await
                .map_err(|e| api_failure("create a cache volume", host, e))?;
        }
        Ok(())
    }

    /// `exited with code 1: <error>; last log lines: ...`
    async fn exit_detail(
        docker: &Docker,
        id: &str,
        code: Option<i64>,
        oom: bool,
        error: Option<String>,
    ) -> String {
        let mut detail = format!(
            "container {} exited with code {}",
            short(id),
            code.map_or_else(|| "?".to_owned(), |c| c.to_string())
        );
        if oom {
            detail.push_str(" (killed: out of memory)");
        }
        if let Some(error) = error.filter(|e| !e.is_empty()) {
            detail.push_str(&format!(": {error}"));
        }
        let options = LogsOptionsBuilder::new()
            .stdout(true)
            .stderr(true)
            .tail(LOG_TAIL)
            .build();
        let mut logs = Vec::new();
        let mut stream = docker.logs(id, Some(options));
        while let Some(item) = stream.next().await {
            match item {
                Ok(chunk) => logs.extend_from_slice(chunk.as_ref()),
                Err(e) => {
                    logs.extend_from_slice(format!("(failed to read the logs: {e})").as_bytes());
                    break;
                }
            }
        }
        let logs = String::from_utf8_lossy(&logs);
        let logs = logs.trim_end();
        if logs.is_empty() {
            detail.push_str("; it logged nothing");
        } else {
            detail.push_str(&format!("; last log lines:\n{logs}"));
        }
        detail
    }
}

/// Starts the container and writes the token line to its stdin, which then
/// closes (`stdin_once`): neither its environment nor its command line, which
/// `docker inspect` shows, carries the token.
async fn start_with_token(
    docker: &Docker,
    id: &str,
    token: &str,
    host: &Host,
) -> Result<(), Failure> {
    use tokio::io::AsyncWriteExt;
    let options = AttachContainerOptionsBuilder::default()
        .stdin(true)
        .stream(true)
        .build();
    let attached = docker
        .attach_container(id, Some(options))
        .await
        .map_err(|e| api_failure("attach to a container's stdin", host, e))?;
    docker
        .start_container(id, None::<StartContainerOptions>)
        .await
        .map_err(|e| api_failure("start a container", host, e))?;
    let mut input = attached.input;
    let line = format!("{token}\n");
    let written = async {
        input.write_all(line.as_bytes()).await?;
        input.flush().await?;
        input.shutdown().await
    };
    written.await.map_err(|e| Failure {
        host_at_fault: true,
        error: ProviderError::transient(format!(
            "failed to hand the worker its token on docker host {}: {e}",
            host.name()
        ))
        .with_source(e),
    })
}

fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

/// Force-removes a container with its anonymous volumes; gone is success.
async fn remove(docker: &Docker, id: &str) -> Result<(), bollard::errors::Error> {
    let options = RemoveContainerOptionsBuilder::new()
        .force(true)
        .v(true)
        .build();
    match docker.remove_container(id, Some(options)).await {
        Err(e) if errors::is_not_found(&e) => Ok(()),
        other => other,
    }
}

#[async_trait]
impl Provider for DockerProvider {
    fn kind(&self) -> &'static str {
        "docker"
    }

    fn hosts(&self) -> Vec<crate::HostStatus> {
        host_choice::statuses(self.hosts.all(), Instant::now())
    }

    async fn launch(&self, spec: &LaunchSpec) -> Result<Launched, ProviderError> {
        host_choice::launch(
            self.hosts.all(),
            &spec.worker_id,
            &WORDS,
            |host| self.launch_on(host, spec),
            |host, error| {
                host.quarantine(error);
            },
        )
        .await
    }

    async fn terminate(&self, worker_id: &str, provider_id: &str) -> Result<(), ProviderError> {
        let (host_name, id) = Self::parse_provider_id(provider_id)?;
        let host = self.host(host_name)?;
        let docker = host.client().await?;
        remove(docker, id).await.map_err(|e| {
            errors::provider_error(&format!("remove container {}", short(id)), host.name(), e)
        })?;
        host.slots().lock().release(worker_id);
        tracing::debug!(
            worker = worker_id,
            host = host.name(),
            container = short(id),
            "container removed"
        );
        Ok(())
    }

    async fn remove_cache_volumes(&self, keep: &[String]) -> Result<Vec<String>, ProviderError> {
        let filters = cache_volume_filter(&self.settings.master_id, &self.settings.pool);
        let mut removed = Vec::new();
        for host in self.hosts.all() {
            let docker = host.client().await?;
            let options = bollard::query_parameters::ListVolumesOptionsBuilder::new()
                .filters(&filters)
                .build();
            let listed = docker
                .list_volumes(Some(options))
                .await
                .map_err(|e| errors::provider_error("list volumes", host.name(), e))?;
            for v in listed.volumes.unwrap_or_default() {
                if keep.contains(&v.name) {
                    continue;
                }
                match docker
                    .remove_volume(
                        &v.name,
                        None::<bollard::query_parameters::RemoveVolumeOptions>,
                    )
                    .await
                {
                    Ok(()) => {
                        tracing::info!(volume = %v.name, host = host.name(), "removed a cache volume no builder uses");
                        removed.push(v.name);
                    }
                    // 409: mounted by a container; never taken from under it.
                    Err(bollard::errors::Error::DockerResponseServerError {
                        status_code: 409,
                        ..
                    }) => {
                        tracing::info!(volume = %v.name, host = host.name(), "kept a cache volume in use");
                    }
                    Err(e) => {
                        tracing::warn!(volume = %v.name, host = host.name(), error = %e, "failed to remove a cache volume");
                    }
                }
            }
        }
        Ok(removed)
    }

    async fn list(&self) -> Result<Vec<ListedInstance>, ProviderError> {
        let filters = pool_filter(&self.settings.master_id, &self.settings.pool);
        let mut found = Vec::new();
        let mut failures = Vec::new();
        for host in self.hosts.all() {
            let listed = async {
                let docker = host.client().await?;
                let options = ListContainersOptionsBuilder::new()
                    .all(true)
                    .filters(&filters)
                    .build();
                docker
                    .list_containers(Some(options))
                    .await
                    .map_err(|e| errors::provider_error("list containers", host.name(), e))
            }
            .await;
            match listed {
                Ok(containers) => {
                    for c in containers {
                        let worker = c.labels.as_ref().and_then(|l| l.get(LABEL_WORKER)).cloned();
                        if let (Some(worker_id), Some(id)) = (worker, c.id) {
                            host.slots().lock().adopt(&worker_id);
                            found.push(ListedInstance {
                                worker_id,
                                provider_id: Self::provider_id(host, &id),
                            });
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(host = host.name(), error = %e, "failed to list a docker host's containers");
                    failures.push(e);
                }
            }
        }
        // A partial listing still lets the others be reconciled.
        if failures.len() == self.hosts.all().len() {
            if let Some(first) = failures.into_iter().next() {
                return Err(first);
            }
        }
        Ok(found)
    }

    async fn health(&self, _worker_id: &str, provider_id: &str) -> Result<Health, ProviderError> {
        let (host_name, id) = Self::parse_provider_id(provider_id)?;
        let host = self.host(host_name)?;
        let docker = host.client().await?;
        let inspect = match docker
            .inspect_container(id, None::<InspectContainerOptions>)
            .await
        {
            Ok(inspect) => inspect,
            Err(e) if errors::is_not_found(&e) => {
                return Ok(Health::Exited {
                    detail: format!(
                        "container {} on docker host {} is gone",
                        short(id),
                        host.name()
                    ),
                })
            }
            Err(e) => {
                return Err(errors::provider_error(
                    "inspect a container",
                    host.name(),
                    e,
                ))
            }
        };
        let state = inspect.state.unwrap_or_default();
        match state.status {
            Some(ContainerStateStatusEnum::EXITED | ContainerStateStatusEnum::DEAD) => {
                let detail = Self::exit_detail(
                    docker,
                    id,
                    state.exit_code,
                    state.oom_killed.unwrap_or(false),
                    state.error,
                )
                .await;
                Ok(Health::Exited { detail })
            }
            _ => Ok(Health::Running),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docker::settings::HostSettings;
    use burst_common::launch_env;

    fn provider() -> DockerProvider {
        let mut s = DockerSettings::new("m1", "pool-a");
        s.env.insert("CI".into(), "1".into());
        s.env.insert(launch_env::WORKER_ID.into(), "spoofed".into());
        s.labels.insert("team".into(), "infra".into());
        s.binds = vec!["/cache:/cache:ro".into()];
        s.volumes = vec!["/scratch".into()];
        s.cpus = Some(1.5);
        s.memory = Some(512 << 20);
        s.network = Some("ci".into());
        match DockerProvider::new(s) {
            Ok(p) => p,
            Err(e) => panic!("{e}"),
        }
    }

    fn spec() -> LaunchSpec {
        LaunchSpec {
            worker_id: "pool-a-0011aabb".into(),
            pool: "pool-a".into(),
            master_id: "m1".into(),
            master_url: "http://127.0.0.1:8481".into(),
            master_pin: Some("sha256:pin".into()),
            token: "secret".into(),
            labels: vec!["linux".into(), "docker".into()],
        }
    }

    #[test]
    fn container_carries_labels_env_and_limits() {
        let p = provider();
        let body = p.container_body(&spec(), "http://172.17.0.1:8481");
        let labels = body.labels.unwrap_or_default();
        assert_eq!(labels.get(LABEL_MASTER).map(String::as_str), Some("m1"));
        assert_eq!(labels.get(LABEL_POOL).map(String::as_str), Some("pool-a"));
        assert_eq!(
            labels.get(LABEL_WORKER).map(String::as_str),
            Some("pool-a-0011aabb")
        );
        assert_eq!(labels.get("team").map(String::as_str), Some("infra"));
        let vars = body.env.unwrap_or_default();
        assert!(vars.contains(&"BURST_MASTER_URL=http://172.17.0.1:8481".to_owned()));
        assert!(vars.contains(&"BURST_LABELS=linux,docker".to_owned()));
        assert!(vars.contains(&"BURST_WORK_DIR=/work".to_owned()));
        assert!(vars.contains(&"CI=1".to_owned()));
        // Docker keeps the last of duplicate variables: burst's own id wins.
        let ids: Vec<&String> = vars
            .iter()
            .filter(|v| v.starts_with("BURST_WORKER_ID="))
            .collect();
        assert_eq!(
            ids.last().map(|s| s.as_str()),
            Some("BURST_WORKER_ID=pool-a-0011aabb")
        );
        let hc = body.host_config.unwrap_or_default();
        assert_eq!(hc.nano_cpus, Some(1_500_000_000));
        assert_eq!(hc.memory, Some(512 << 20));
        assert_eq!(hc.privileged, Some(false));
        assert_eq!(
            hc.security_opt,
            Some(vec!["no-new-privileges:true".to_owned()])
        );
        assert_eq!(hc.cap_drop, Some(vec!["ALL".to_owned()]));
        assert_eq!(
            hc.cap_add,
            Some(platform::LINUX_CAPABILITIES.map(str::to_owned).to_vec())
        );
        assert_eq!(hc.pids_limit, Some(4096));
        // The token goes through stdin, never into what `docker inspect` shows.
        assert_eq!(body.open_stdin, Some(true));
        assert_eq!(body.stdin_once, Some(true));
        assert!(vars.contains(&"BURST_TOKEN_FILE=-".to_owned()));
        assert!(!vars.iter().any(|v| v.contains("secret")), "{vars:?}");
        assert_eq!(body.user, None);
        assert_eq!(hc.network_mode.as_deref(), Some("ci"));
        assert_eq!(hc.binds, Some(vec!["/cache:/cache:ro".to_owned()]));
        assert_eq!(body.volumes, Some(vec!["/scratch".to_owned()]));
        assert_eq!(body.image.as_deref(), Some("burst-worker:latest"));
        // Linux keeps the image's entrypoint and working directory.
        assert_eq!(body.entrypoint, None);
        assert_eq!(body.cmd, None);
        assert_eq!(body.working_dir, None);
    }

    #[test]
    fn a_windows_container_runs_the_exe() {
        let mut s = DockerSettings::new("m1", "pool-a");
        s.platform = Platform::Windows;
        s.work_dir = Platform::Windows.default_work_dir().to_owned();
        s.binds = vec![r"C:\cache:C:\cache:ro".into()];
        s.cpus = Some(2.0);
        s.memory = Some(1 << 30);
        let p = match DockerProvider::new(s) {
            Ok(p) => p,
            Err(e) => panic!("{e}"),
        };
        let body = p.container_body(&spec(), "http://10.0.0.2:8481");
        assert_eq!(
            body.entrypoint,
            Some(vec![r"C:\burst\burst-worker.exe".to_owned()])
        );
        assert_eq!(body.cmd, None);
        assert_eq!(body.working_dir.as_deref(), Some(r"C:\burst\work"));
        let vars = body.env.unwrap_or_default();
        assert!(vars.contains(&r"BURST_WORK_DIR=C:\burst\work".to_owned()));
        assert!(vars.contains(&"BURST_TOKEN_FILE=-".to_owned()));
        assert!(!vars.iter().any(|v| v.contains("secret")), "{vars:?}");
        assert!(vars.contains(&"BURST_MASTER_PIN=sha256:pin".to_owned()));
        let hc = body.host_config.unwrap_or_default();
        assert_eq!(hc.nano_cpus, Some(2_000_000_000));
        assert_eq!(hc.memory, Some(1 << 30));
        assert_eq!(hc.privileged, Some(false));
        assert_eq!(hc.binds, Some(vec![r"C:\cache:C:\cache:ro".to_owned()]));
    }

    #[test]
    fn provider_ids_round_trip() {
        let p = provider();
        let host = &p.hosts.all()[0];
        let id = DockerProvider::provider_id(host, "abc123");
        assert_eq!(id, "local/abc123");
        assert!(matches!(
            DockerProvider::parse_provider_id(&id),
            Ok(("local", "abc123"))
        ));
        assert!(DockerProvider::parse_provider_id("abc").is_err());
        assert!(DockerProvider::parse_provider_id("/abc").is_err());
        assert!(p.host("elsewhere").is_err());
    }

    #[test]
    fn settings_are_checked() {
        let mut s = DockerSettings::new("m", "p");
        s.hosts.push(HostSettings::local());
        assert!(DockerProvider::new(s).is_err_and(|e| e.message.contains("duplicate host")));
        let mut s = DockerSettings::new("m", "p");
        s.hosts.clear();
        assert!(DockerProvider::new(s).is_err());
        let mut s = DockerSettings::new("m", "p");
        s.image = " ".into();
        assert!(DockerProvider::new(s).is_err());
        let mut s = DockerSettings::new("m", "p");
        s.platform = Platform::Windows;
        s.privileged = true;
        assert!(DockerProvider::new(s).is_err_and(|e| e.message.contains("privileged")));
    }

    #[tokio::test]
    async fn an_unreachable_host_is_transient_and_quarantined() {
        // Port 9 on loopback: nothing listens, the connection is refused.
        let mut s = DockerSettings::new("m", "p");
        s.hosts = vec![HostSettings {
            name: "down".into(),
            endpoint: crate::docker::Endpoint::Http("tcp://127.0.0.1:9".into()),
            capacity: Some(2),
            price_per_hour: None,
        }];
        let p = match DockerProvider::new(s) {
            Ok(p) => p,
            Err(e) => panic!("{e}"),
        };
        let err = match p.launch(&spec()).await {
            Ok(l) => panic!("launched {l:?}"),
            Err(e) => e,
        };
        assert!(!err.is_permanent(), "{err}");
        assert!(err.message.contains("docker host down"), "{err}");
        // Quarantined: the next launch does not even try it.
        let again = match p.launch(&spec()).await {
            Ok(l) => panic!("launched {l:?}"),
            Err(e) => e,
        };
        assert!(again.message.contains("quarantined"), "{again}");
        assert!(!again.is_permanent());
        assert!(p.list().await.is_err(), "the only host is down");
    }
}
