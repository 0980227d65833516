//! The SSH provider: workers as detached processes on a list of build
//! machines. Each launch picks the least loaded host that has room and is
//! not backing off; a host that fails backs off alone and the launch moves
//! on to the next one.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use burst_common::backoff::Backoff;
use burst_common::error_chain::Chain;
use openssh::Session;
use tokio::time::Instant;

use super::commands::{parse_health, parse_list, parse_number, Remote};
use super::connect::{connect, connect_or_wake};
use super::exec::{exec, Input};
use super::hosts::{HostState, WORDS};
use super::power;
use super::settings::SshSettings;
use super::upload::{ensure_worker, LocalSums};
use crate::host_choice::{self, Failure, SlotHost};
use crate::{Health, LaunchSpec, Launched, ListedInstance, Provider, ProviderError};
use burst_common::launch_env;

/// Start, probe, list and health commands are quick; stop adds the grace.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// Unix socket paths are limited to 104 bytes (macOS; 108 on Linux). The
/// openssh crate adds `/.ssh-connectionXXXXXX/master` to the control
/// directory, and ssh a 17-byte suffix while it sets the socket up.
const MAX_CONTROL_DIR: usize = 55;

pub struct SshProvider {
    settings: SshSettings,
    hosts: Vec<HostState>,
    sums: LocalSums,
}

impl SshProvider {
    pub fn new(settings: SshSettings) -> Result<Self, ProviderError> {
        let fail = |m: String| {
            ProviderError::permanent(format!("failed to configure the ssh provider: {m}"))
        };
        if settings.hosts.is_empty() {
            return Err(fail("no hosts".into()));
        }
        for h in settings.hosts.iter().filter(|h| h.platform.is_windows()) {
            if let Some(why) = super::windows_path_problem(&h.state_dir) {
                return Err(fail(format!("host {}: state_dir {why}", h.name)));
            }
        }
        let dir = &settings.control_dir;
        if dir.as_os_str().len() > MAX_CONTROL_DIR {
            return Err(fail(format!(
                "the ssh control directory {} is longer than {MAX_CONTROL_DIR} bytes \
                 (unix socket paths are short); use a shorter master.state_dir",
                dir.display()
            )));
        }
        std::fs::create_dir_all(dir)
            .map_err(|e| fail(format!("cannot create {}: {e}", dir.display())))?;
        restrict(dir);
        // Sockets of a previous run of this pool are dead (or idle out).
        if let Ok(entries) = std::fs::read_dir(dir) {
            for entry in entries.flatten() {
                if entry
                    .file_name()
                    .to_string_lossy()
                    .starts_with(".ssh-connection")
                {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
        let hosts = settings
            .hosts
            .iter()
            .map(|h| {
                HostState::new(
                    h.clone(),
                    Remote::new(h, &settings.master_id, &settings.pool),
                    Backoff::new(settings.backoff_min, settings.backoff_max),
                )
            })
            .collect();
        Ok(Self {
            settings,
            hosts,
            sums: LocalSums::default(),
        })
    }

    /// The local worker binary for `linux-x86_64` when none is configured:
    /// the `burst-worker` next to the running executable.
    pub fn default_linux_worker() -> Option<PathBuf> {
        let exe = std::env::current_exe().ok()?;
        let candidate = exe.with_file_name("burst-worker");
        (cfg!(all(target_os = "linux", target_arch = "x86_64")) && candidate.is_file())
            .then_some(candidate)
    }

    fn host(&self, name: &str) -> Result<&HostState, ProviderError> {
        self.hosts.iter().find(|h| h.name() == name).ok_or_else(|| {
            ProviderError::permanent(format!(
                "failed to find ssh host {name:?}: it is no longer in the pool's config"
            ))
        })
    }

    /// The host's session, reconnecting if needed. Only launches `wake` a
    /// host: one that is off runs no workers to list, check or stop.
    async fn session(&self, host: &HostState, wake: bool) -> Result<Arc<Session>, ProviderError> {
        let mut guard = host.session.lock().await;
        if let Some(session) = guard.as_ref() {
            let check = tokio::time::timeout(self.settings.connect_timeout, session.check()).await;
            if matches!(check, Ok(Ok(()))) {
                return Ok(session.clone());
            }
            tracing::info!(host = %host.name(), "ssh connection lost; reconnecting");
            *guard = None;
        }
        // Each connection gets its own temporary directory in here.
        let control_dir = &self.settings.control_dir;
        let session = if wake {
            connect_or_wake(&self.settings, &host.cfg, control_dir).await?
        } else {
            connect(&self.settings, &host.cfg, control_dir).await?
        };
        let session = Arc::new(session);
        *guard = Some(session.clone());
        Ok(session)
    }

    /// `session`, backing the host off when it cannot be reached.
    async fn reach(&self, host: &HostState) -> Result<Arc<Session>, ProviderError> {
        self.session(host, false)
            .await
            .inspect_err(|e| self.host_failed(host, e))
    }

    /// Starts or extends the host's backoff.
    fn host_failed(&self, host: &HostState, err: &ProviderError) {
        let delay =
            host.slots()
                .lock()
                .quarantine(Instant::now(), err.to_string(), err.is_permanent());
        tracing::warn!(
            host = %host.name(),
            delay_secs = delay.as_secs_f64(),
            error = %Chain(err),
            "ssh host backs off"
        );
    }

    fn worker_env(&self, spec: &LaunchSpec) -> Vec<(String, String)> {
        let mut vars: Vec<(String, String)> = self
            .settings
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        vars.extend([
            (
                launch_env::STEP_ENV.to_owned(),
                launch_env::step_env_names(self.settings.env.keys()),
            ),
            (launch_env::MASTER_URL.to_owned(), spec.master_url.clone()),
            (launch_env::WORKER_ID.to_owned(), spec.worker_id.clone()),
            (launch_env::LABELS.to_owned(), spec.labels.join(",")),
            (launch_env::MASTER_ID.to_owned(), spec.master_id.clone()),
            (launch_env::POOL.to_owned(), spec.pool.clone()),
        ]);
        if let Some(pin) = &spec.master_pin {
            vars.push((launch_env::MASTER_PIN.to_owned(), pin.clone()));
        }
        vars
    }

    async fn launch_on(
        &self,
        host: &HostState,
        spec: &LaunchSpec,
    ) -> Result<Launched, ProviderError> {
        let session = self.session(host, true).await?;
        let installed = ensure_worker(&session, host, &self.settings, &self.sums).await?;
        let line = host.remote.start(&spec.worker_id, &self.worker_env(spec));
        if host.cfg.platform.is_windows() && line.len() > super::windows::MAX_COMMAND_LINE {
            return Err(ProviderError::permanent(format!(
                "failed to start a worker on ssh host {}: the start command is {} bytes, more than \
                 cmd.exe accepts; shorten the pool's env or paths",
                host.name(),
                line.len()
            )));
        }
        let out = exec(
            &session,
            host.name(),
            "start the worker",
            &line,
            Input::Line(&spec.token),
            COMMAND_TIMEOUT,
        )
        .await?;
        let pid = parse_number(&out, "burst-pid").ok_or_else(|| {
            ProviderError::transient(format!(
                "failed to start the worker on ssh host {}: no pid in {:?}",
                host.name(),
                power::tail(&out, 300)
            ))
        })?;
        tracing::info!(host = %host.name(), worker = %spec.worker_id, pid, uploaded = installed.uploaded, "started ssh worker");
        let mut details = serde_json::json!({
                "host": host.name(),
                "destination": host.cfg.destination(),
                "platform": host.cfg.platform.as_str(),
                "target": installed.target,
                "pid": pid,
                "worker_binary": host.remote.bin(),
                "worker_sha256": installed.sha256,
                "uploaded": installed.uploaded,
                "worker_dir": host.remote.worker_dir(&spec.worker_id),
        });
        if let Some(price) = host.cfg.price_per_hour {
            details["price_per_hour"] = price.into();
        }
        Ok(Launched {
            provider_id: format!("{}:{pid}", host.name()),
            details,
        })
    }

    /// Runs the host's sleep command once its last burst worker is gone.
    async fn sleep_if_idle(&self, host: &HostState, remote_left: u32) {
        if host.cfg.sleep.is_empty() || remote_left > 0 {
            return;
        }
        // Launches take this lock to connect: none can start mid-sleep.
        let mut guard = host.session.lock().await;
        if host.slots().lock().used() > 0 {
            return;
        }
        if let Some(session) = guard.take() {
            drop(session);
        }
        if let Err(e) =
            power::run("sleep", host.name(), &host.cfg.sleep, host.cfg.wake_timeout).await
        {
            tracing::warn!(host = %host.name(), error = %e, "sleep command failed");
        }
    }
}

/// The control directory holds sockets that grant shell access: owner only.
fn restrict(dir: &std::path::Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    }
    #[cfg(not(unix))]
    let _ = dir;
}

/// `host:pid` -> (host, pid). Host names may hold `:` (`10.0.0.5:2222`).
fn parse_provider_id(provider_id: &str) -> Result<(&str, u32), ProviderError> {
    provider_id
        .rsplit_once(':')
        .and_then(|(host, pid)| Some((host, pid.parse().ok()?)))
        .ok_or_else(|| {
            ProviderError::permanent(format!(
                "failed to parse ssh worker id {provider_id:?} (want host:pid)"
            ))
        })
}

#[async_trait]
impl Provider for SshProvider {
    fn kind(&self) -> &'static str {
        "ssh"
    }

    fn hosts(&self) -> Vec<crate::HostStatus> {
        host_choice::statuses(&self.hosts, Instant::now())
    }

    async fn launch(&self, spec: &LaunchSpec) -> Result<Launched, ProviderError> {
        // Whatever failed (connecting, waking, uploading, starting), the
        // host backs off and the launch moves on.
        host_choice::launch(
            &self.hosts,
            &spec.worker_id,
            &WORDS,
            |host| async move {
                self.launch_on(host, spec).await.map_err(|error| Failure {
                    error,
                    host_at_fault: true,
                })
            },
            |host, error| self.host_failed(host, error),
        )
        .await
    }

    async fn terminate(&self, worker_id: &str, provider_id: &str) -> Result<(), ProviderError> {
        let (name, pid) = parse_provider_id(provider_id)?;
        let host = self.host(name)?;
        // The slot frees now: a host that cannot be reached must not keep
        // its capacity tied up by a worker that is most likely gone with it.
        host.slots().lock().release(worker_id);
        let session = self.reach(host).await?;
        let grace = self.settings.stop_grace;
        let line = host.remote.stop(worker_id, pid, grace.as_secs().max(1));
        let out = exec(
            &session,
            name,
            "stop the worker",
            &line,
            Input::Nothing,
            COMMAND_TIMEOUT + grace,
        )
        .await?;
        tracing::info!(host = %name, worker = %worker_id, pid, "stopped ssh worker");
        self.sleep_if_idle(host, parse_number(&out, "burst-left").unwrap_or(1))
            .await;
        Ok(())
    }

    async fn list(&self) -> Result<Vec<ListedInstance>, ProviderError> {
        let mut found = Vec::new();
        let mut failures = Vec::new();
        for host in &self.hosts {
            let listed = async {
                let session = self.reach(host).await?;
                exec(
                    &session,
                    host.name(),
                    "list workers",
                    &host.remote.list(),
                    Input::Nothing,
                    COMMAND_TIMEOUT,
                )
                .await
            }
            .await;
            match listed {
                Ok(out) => {
                    for (worker_id, pid) in parse_list(&out) {
                        host.slots().lock().adopt(&worker_id);
                        found.push(ListedInstance {
                            worker_id,
                            provider_id: format!("{}:{pid}", host.name()),
                        });
                    }
                }
                Err(e) => failures.push(e.to_string()),
            }
        }
        // One unreachable host must not hide the orphans on the others.
        if !failures.is_empty() {
            tracing::warn!(errors = %failures.join("; "), "could not list workers on every ssh host");
            if found.is_empty() && failures.len() == self.hosts.len() {
                return Err(ProviderError::transient(format!(
                    "failed to list ssh workers: {}",
                    failures.join("; ")
                )));
            }
        }
        Ok(found)
    }

    async fn health(&self, worker_id: &str, provider_id: &str) -> Result<Health, ProviderError> {
        let (name, pid) = parse_provider_id(provider_id)?;
        let host = self.host(name)?;
        let backing_off = (host.slots().lock())
            .quarantined(Instant::now())
            .map(|(_, why)| why.to_owned());
        if let Some(why) = backing_off {
            return Err(ProviderError::transient(format!(
                "failed to check worker {worker_id}: ssh host {name} is backing off after: {why}"
            )));
        }
        let session = self.reach(host).await?;
        let out = exec(
            &session,
            name,
            "check the worker",
            &host.remote.health(worker_id, pid),
            Input::Nothing,
            COMMAND_TIMEOUT,
        )
        .await?;
        parse_health(&out, name).ok_or_else(|| {
            ProviderError::transient(format!(
                "failed to check worker {worker_id} on ssh host {name}: unexpected output {:?}",
                power::tail(&out, 300)
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::ssh::settings::{HostKeyCheck, HostSettings, Platform};

    fn settings(dir: &std::path::Path, caps: &[u32]) -> SshSettings {
        SshSettings {
            master_id: "m".into(),
            pool: "p".into(),
            hosts: caps
                .iter()
                .enumerate()
                .map(|(i, cap)| HostSettings {
                    name: format!("h{i}"),
                    address: "127.0.0.1".into(),
                    port: 1,
                    user: None,
                    key_file: None,
                    platform: Platform::Linux,
                    max_workers: *cap,
                    install_dir: ".burst/bin".into(),
                    state_dir: ".burst".into(),
                    wake: vec![],
                    sleep: vec![],
                    wake_timeout: Duration::from_secs(1),
                    price_per_hour: None,
                })
                .collect(),
            known_hosts: None,
            host_key_check: HostKeyCheck::Strict,
            connect_timeout: Duration::from_secs(1),
            stop_grace: Duration::from_secs(1),
            upload: true,
            worker_binaries: BTreeMap::new(),
            env: BTreeMap::new(),
            control_dir: dir.join("ctl"),
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(10),
        }
    }

    fn try_reserve(host: &HostState, worker_id: &str, now: Instant) -> bool {
        host.slots().lock().reserve(worker_id, now)
    }

    #[tokio::test]
    async fn candidates_spread_by_load_and_skip_full_or_backing_off_hosts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = SshProvider::new(settings(dir.path(), &[2, 1, 1])).expect("provider");
        let candidates = |now| host_choice::candidates(&p.hosts, now);
        let now = Instant::now();
        assert_eq!(candidates(now), vec![0, 1, 2]);
        assert!(try_reserve(&p.hosts[0], "a", now));
        // h0 is half full, h1 and h2 empty.
        assert_eq!(candidates(now), vec![1, 2, 0]);
        assert!(try_reserve(&p.hosts[1], "b", now));
        assert_eq!(candidates(now), vec![2, 0]);
        p.host_failed(&p.hosts[2], &ProviderError::transient("down"));
        assert_eq!(candidates(Instant::now()), vec![0]);
        assert!(try_reserve(&p.hosts[0], "c", now));
        assert!(candidates(Instant::now()).is_empty());
        let busy = host_choice::describe(&p.hosts, &WORDS, Instant::now());
        assert!(busy.contains("h0: 2/2 workers"), "{busy}");
        assert!(busy.contains("h2: backing off"), "{busy}");
    }

    #[tokio::test]
    async fn unreachable_hosts_back_off_and_the_error_names_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        // Port 1 on loopback: connection refused at once.
        let p = SshProvider::new(settings(dir.path(), &[1, 1])).expect("provider");
        let spec = LaunchSpec {
            worker_id: "p-1".into(),
            pool: "p".into(),
            master_id: "m".into(),
            master_url: "http://127.0.0.1:1".into(),
            master_pin: None,
            token: "secret".into(),
            labels: vec![],
        };
        let err = p.launch(&spec).await.expect_err("nothing listens");
        assert!(!err.is_permanent(), "{err}");
        assert!(
            err.message.contains("h0: failed to connect to ssh host h0"),
            "{err}"
        );
        assert!(
            err.message.contains("h1: failed to connect to ssh host h1"),
            "{err}"
        );
        assert!(!err.message.contains("secret"));
        // Both hosts now back off: the next launch fails without trying.
        let err = p.launch(&spec).await.expect_err("all backing off");
        assert!(err.message.contains("no host has room"), "{err}");
        assert_eq!(p.hosts[0].slots().lock().used(), 0);
    }

    #[test]
    fn a_tls_masters_pin_goes_with_the_contract_values() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = SshProvider::new(settings(dir.path(), &[1])).expect("provider");
        let mut spec = LaunchSpec {
            worker_id: "p-1".into(),
            pool: "p".into(),
            master_id: "m".into(),
            master_url: "https://127.0.0.1:1".into(),
            master_pin: Some("sha256:abc".into()),
            token: "secret".into(),
            labels: vec![],
        };
        let pin = (launch_env::MASTER_PIN.to_owned(), "sha256:abc".to_owned());
        assert!(p.worker_env(&spec).contains(&pin));
        spec.master_pin = None;
        assert!(!p
            .worker_env(&spec)
            .iter()
            .any(|(k, _)| k == launch_env::MASTER_PIN));
    }

    #[tokio::test]
    async fn hosts_refused_for_good_make_the_launch_fail_for_good() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = SshProvider::new(settings(dir.path(), &[1, 1])).expect("provider");
        let no_room = |now| host_choice::no_room(&p.hosts, "p-1", &WORDS, now);
        p.host_failed(
            &p.hosts[0],
            &ProviderError::permanent("failed to connect: host key"),
        );
        // One host is only busy: builds may still get it.
        assert!(try_reserve(&p.hosts[1], "a", Instant::now()));
        assert!(!no_room(Instant::now()).is_permanent());
        p.hosts[1].slots().lock().release("a");
        p.host_failed(
            &p.hosts[1],
            &ProviderError::permanent("failed to authenticate"),
        );
        let err = no_room(Instant::now());
        assert!(err.is_permanent(), "{err}");
        assert!(
            err.message.contains("host key") && err.message.contains("failed to authenticate"),
            "{err}"
        );
    }

    #[test]
    fn provider_ids() {
        assert_eq!(parse_provider_id("mini:42").ok(), Some(("mini", 42)));
        assert_eq!(
            parse_provider_id("10.0.0.5:2222:42").ok(),
            Some(("10.0.0.5:2222", 42))
        );
        assert!(parse_provider_id("mini").is_err());
        assert!(parse_provider_id("mini:x").is_err());
    }
}
