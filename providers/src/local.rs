//! Workers as processes on the master's own machine: the embedded default.
//!
//! Each worker runs in its own process group, so terminating it takes its
//! steps along. Workers are found again after a master crash by the
//! environment the provider gave them (`BURST_MASTER_ID`, `BURST_POOL`,
//! `BURST_WORKER_ID`), read back from `/proc`: no pid file can go stale.

mod config;
mod procfs;
#[cfg(unix)]
mod run_as;
mod step_scan;
mod worker_log;

pub use config::LocalPoolConfig;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use burst_common::launch_env;

use crate::{Health, LaunchSpec, Launched, ListedInstance, Provider, ProviderError};

/// Settings of one local pool.
#[derive(Debug, Clone)]
pub struct LocalSettings {
    pub master_id: String,
    pub pool: String,
    /// Program and leading arguments; the worker's flags come from the
    /// environment, so a wrapper like `wine burst-worker.exe` works too.
    pub command: Vec<String>,
    pub env: BTreeMap<String, String>,
    /// The master's variables the worker inherits, when set; it gets no
    /// others.
    pub inherit_env: Vec<String>,
    /// Each worker gets `<work_root>/<worker_id>`, removed on terminate.
    pub work_root: PathBuf,
    /// How long a worker may take to exit after SIGTERM before SIGKILL.
    pub stop_grace: Duration,
    /// The user steps run as (the worker, like the master, runs as root);
    /// `None` = the master's own user.
    pub user: Option<RunAs>,
}

/// A resolved local user, checked at config time; the worker resolves the
/// name again on its side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAs {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

pub struct LocalProvider {
    settings: LocalSettings,
    step_scans: step_scan::StepScans,
}

impl LocalProvider {
    pub fn new(settings: LocalSettings) -> Result<Self, ProviderError> {
        if settings.command.is_empty() {
            return Err(ProviderError::permanent(
                "failed to configure the local provider: empty worker command",
            ));
        }
        let master_id = settings.master_id.clone();
        let step_scans = step_scan::StepScans::new(std::sync::Arc::new(move || {
            procfs::step_groups_by_worker(&master_id)
        }));
        Ok(Self {
            settings,
            step_scans,
        })
    }

    /// `burst-worker` next to the running executable, where `cargo build`
    /// and release archives put it.
    pub fn default_command() -> Result<Vec<String>, ProviderError> {
        let exe = std::env::current_exe().map_err(|e| {
            ProviderError::permanent(format!("failed to locate the running executable: {e}"))
        })?;
        let name = format!("burst-worker{}", std::env::consts::EXE_SUFFIX);
        let candidate = exe.with_file_name(&name);
        if candidate.is_file() {
            return Ok(vec![candidate.to_string_lossy().into_owned()]);
        }
        Err(ProviderError::permanent(format!(
            "failed to find {name} next to {}: build it with `cargo build --workspace --bins`, \
             or set `command` in the pool's [pools.NAME.local] section",
            exe.display()
        )))
    }

    fn work_dir(&self, worker_id: &str) -> PathBuf {
        self.settings.work_root.join(worker_id)
    }
}

/// Writes the token line into the worker's stdin and closes it.
async fn hand_over_token(
    child: &mut tokio::process::Child,
    token: &str,
) -> Result<(), ProviderError> {
    use tokio::io::AsyncWriteExt;
    let Some(mut stdin) = child.stdin.take() else {
        return Err(ProviderError::transient(
            "failed to hand the worker its token: no stdin pipe",
        ));
    };
    let line = format!("{token}\n");
    let written = async {
        stdin.write_all(line.as_bytes()).await?;
        stdin.shutdown().await
    };
    written.await.map_err(|e| {
        let _ = child.start_kill();
        ProviderError::transient(format!("failed to hand the worker its token: {e}")).with_source(e)
    })
}

#[async_trait]
impl Provider for LocalProvider {
    fn kind(&self) -> &'static str {
        "local"
    }

    async fn launch(&self, spec: &LaunchSpec) -> Result<Launched, ProviderError> {
        let s = &self.settings;
        let work_dir = self.work_dir(&spec.worker_id);
        tokio::fs::create_dir_all(&work_dir).await.map_err(|e| {
            ProviderError::transient(format!(
                "failed to create work dir {}: {e}",
                work_dir.display()
            ))
            .with_source(e)
        })?;
        let (stdout, stderr) = worker_log::open(&s.work_root, &spec.worker_id)?;
        let mut cmd = tokio::process::Command::new(&s.command[0]);
        let inherited = s
            .inherit_env
            .iter()
            .filter_map(|name| std::env::var_os(name).map(|v| (name, v)));
        cmd.args(&s.command[1..])
            // A cleared environment: the master's own (cloud credentials,
            // tokens) is none of a build's business.
            .env_clear()
            .envs(inherited)
            .envs(&s.env)
            .env(
                launch_env::STEP_ENV,
                launch_env::step_env_names(s.env.keys()),
            )
            .env(launch_env::MASTER_URL, &spec.master_url)
            .envs(
                spec.master_pin
                    .iter()
                    .map(|pin| (launch_env::MASTER_PIN, pin)),
            )
            .env(launch_env::WORKER_ID, &spec.worker_id)
            // The token goes through a pipe: the environment and argv show
            // in /proc to every process of the same user.
            .env(launch_env::TOKEN_FILE, launch_env::TOKEN_STDIN)
            .env(launch_env::LABELS, spec.labels.join(","))
            .env(launch_env::WORK_DIR, &work_dir)
            .env(launch_env::MASTER_ID, &spec.master_id)
            .env(launch_env::POOL, &spec.pool)
            .stdin(std::process::Stdio::piped())
            .stdout(stdout)
            .stderr(stderr)
            .kill_on_drop(false);
        // Its own process group: killing the group takes its steps along, and
        // a Ctrl-C at the master's terminal does not reach it directly.
        #[cfg(unix)]
        cmd.process_group(0);
        // The worker (root) runs its steps as that user.
        if let Some(user) = &s.user {
            cmd.env(launch_env::STEP_USER, &user.name);
        }
        let mut child = cmd.spawn().map_err(|e| {
            let msg = format!("failed to start worker process {:?}: {e}", s.command[0]);
            let err = if e.kind() == std::io::ErrorKind::NotFound {
                ProviderError::permanent(msg)
            } else {
                ProviderError::transient(msg)
            };
            err.with_source(e)
        })?;
        let pid = child.id().ok_or_else(|| {
            ProviderError::transient("failed to read the worker's pid: it exited at once")
        })?;
        hand_over_token(&mut child, &spec.token).await?;
        // Reap the child so it never lingers as a zombie.
        let worker_id = spec.worker_id.clone();
        tokio::spawn(async move {
            match child.wait().await {
                Ok(status) => tracing::debug!(%worker_id, %status, "local worker exited"),
                Err(e) => tracing::warn!(%worker_id, error = %e, "failed to wait for local worker"),
            }
        });
        Ok(Launched {
            provider_id: pid.to_string(),
            details: serde_json::json!({ "pid": pid, "work_dir": work_dir }),
        })
    }

    async fn terminate(&self, worker_id: &str, provider_id: &str) -> Result<(), ProviderError> {
        // Only signal a pid that still carries this worker's id: pids are
        // reused, and a stale ledger row must never kill a stranger.
        let pid: i32 = provider_id.parse().map_err(|_| {
            ProviderError::permanent(format!("failed to parse local worker pid {provider_id:?}"))
        })?;
        if procfs::worker_id_of(pid).as_deref() == Some(worker_id) {
            procfs::stop_group(pid, self.settings.stop_grace).await?;
        }
        // Steps run in process groups of their own, which a worker that died
        // abruptly (SIGKILL, OOM) could not stop. Found after the worker
        // stopped, so it starts none after the look.
        for group in self.step_scans.groups_of(worker_id).await? {
            procfs::stop_group(group, self.settings.stop_grace).await?;
        }
        let work_dir = self.work_dir(worker_id);
        if let Err(e) = tokio::fs::remove_dir_all(&work_dir).await {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(%worker_id, error = %e, "failed to remove local worker dir");
            }
        }
        Ok(())
    }

    async fn list(&self) -> Result<Vec<ListedInstance>, ProviderError> {
        let (master_id, pool) = (self.settings.master_id.clone(), self.settings.pool.clone());
        tokio::task::spawn_blocking(move || procfs::find_workers(&master_id, &pool))
            .await
            .map_err(|e| ProviderError::transient(format!("failed to scan processes: {e}")))?
    }

    async fn health(&self, worker_id: &str, provider_id: &str) -> Result<Health, ProviderError> {
        let Ok(pid) = provider_id.parse::<i32>() else {
            return Ok(Health::Exited {
                detail: format!("bad pid {provider_id:?}"),
            });
        };
        if procfs::worker_id_of(pid).as_deref() == Some(worker_id) {
            Ok(Health::Running)
        } else {
            Ok(Health::Exited {
                detail: format!("worker process {pid} is gone"),
            })
        }
    }
}
