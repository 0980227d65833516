//! Config reload (SIGHUP, `POST /api/v1/config/reload`, `burst config
//! reload`): the file is read and checked again, then compared with the
//! config in force. Anything wrong (an invalid file, a key only a restart
//! can change: `config/fixed.rs`) refuses the whole reload and the old
//! config stays in force. Otherwise the scheduler takes the new pools in
//! one event (`scheduler/reconfigure.rs`) and the new config is put in
//! force for everything that reads it per request (submits, builders, the
//! janitor's `[retention]`). Running builds go on.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use burst_common::error_chain::Chain;
use serde::{Deserialize, Serialize};

use crate::config::{fixed_changes, load_file, ConfigError, LiveConfig, Problem};
use crate::metrics::{MeteredProvider, Metrics};
use crate::scheduler::{PoolChanges, SchedulerHandle};

/// What a reload changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadReport {
    /// The file read.
    pub config: String,
    #[serde(flatten)]
    pub pools: PoolChanges,
    /// The builders in force now.
    pub builders: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("failed to reload: the master runs on the embedded defaults, with no config file to read again (start it with --config FILE)")]
    NoFile,
    /// The new file is invalid, or changes what only a restart can; every
    /// problem is listed.
    #[error("failed to reload {}: {}; the old config stays in force", path.display(), what)]
    Refused {
        path: PathBuf,
        what: &'static str,
        problems: Vec<String>,
    },
    #[error("failed to reload {}: failed to set up pool {pool}: {detail}; the old config stays in force", path.display())]
    Pool {
        path: PathBuf,
        pool: String,
        detail: String,
    },
    #[error("failed to reload: the scheduler has stopped")]
    Stopped,
}

impl ReloadError {
    /// The file:line: key: message lines, when there are any.
    pub fn problems(&self) -> &[String] {
        match self {
            ReloadError::Refused { problems, .. } => problems,
            _ => &[],
        }
    }
}

/// What building a reloaded pool's provider needs, fixed at start.
pub struct PoolContext {
    pub master_id: String,
    pub state_dir: PathBuf,
    pub advertise_url: String,
    pub grpc_addr: SocketAddr,
    pub metrics: Arc<Metrics>,
}

pub struct Reloader {
    path: Option<PathBuf>,
    live: LiveConfig,
    scheduler: SchedulerHandle,
    pools: PoolContext,
    /// One reload at a time (a SIGHUP and an API call may meet).
    lock: tokio::sync::Mutex<()>,
}

impl Reloader {
    pub fn new(
        path: Option<PathBuf>,
        live: LiveConfig,
        scheduler: SchedulerHandle,
        pools: PoolContext,
    ) -> Self {
        Self {
            path,
            live,
            scheduler,
            pools,
            lock: tokio::sync::Mutex::new(()),
        }
    }

    pub async fn reload(&self) -> Result<ReloadReport, ReloadError> {
        let _one = self.lock.lock().await;
        let result = self.reload_locked().await;
        match &result {
            Ok(report) => tracing::info!(
                config = %report.config,
                added = ?report.pools.added,
                removed = ?report.pools.removed,
                changed = ?report.pools.changed,
                builders = report.builders.len(),
                "config reloaded"
            ),
            Err(e) => {
                tracing::error!(error = %Chain(e), "config reload refused");
                for problem in e.problems() {
                    tracing::error!("config reload refused: {problem}");
                }
            }
        }
        result
    }

    async fn reload_locked(&self) -> Result<ReloadReport, ReloadError> {
        let path = self.path.clone().ok_or(ReloadError::NoFile)?;
        let refused = |what, problems: Vec<String>| ReloadError::Refused {
            path: path.clone(),
            what,
            problems,
        };
        let mut new = match load_file(&path) {
            Ok(config) => config,
            Err(e @ ConfigError::Read { .. }) => {
                return Err(refused("cannot read it", vec![Chain(&e).to_string()]))
            }
            Err(e) => return Err(refused("the config is invalid", lines(e.problems()))),
        };
        // The same text the checks read, for the lines of fixed keys.
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let old = self.live.get();
        // Set up once at start, maybe by `--log-format`: kept (see fixed.rs).
        new.master.log_format = old.master.log_format;
        let fixed = fixed_changes(&old, &new, &text, &path);
        if !fixed.is_empty() {
            return Err(refused(
                "it changes settings only a restart can change",
                lines(&fixed),
            ));
        }
        let mut specs = super::run::pool_specs(
            &new,
            &self.pools.master_id,
            &self.pools.state_dir,
            &self.pools.advertise_url,
            self.pools.grpc_addr,
        )
        .map_err(|e| pool_error(&path, &e))?;
        for pool in &mut specs {
            pool.provider = MeteredProvider::wrap(
                pool.provider.clone(),
                &pool.name,
                self.pools.metrics.clone(),
            );
        }
        let changes = self
            .scheduler
            .reconfigure(specs)
            .await
            .map_err(|_| ReloadError::Stopped)?;
        self.scheduler
            .set_budget(new.budget.clone())
            .await
            .map_err(|_| ReloadError::Stopped)?;
        let builders = new.builders.iter().map(|b| b.name.clone()).collect();
        self.live.set(Arc::new(new));
        Ok(ReloadReport {
            config: path.display().to_string(),
            pools: changes,
            builders,
        })
    }
}

fn lines(problems: &[Problem]) -> Vec<String> {
    problems.iter().map(ToString::to_string).collect()
}

fn pool_error(path: &Path, e: &anyhow::Error) -> ReloadError {
    // `pool_specs` says "failed to set up pool NAME" with the cause below.
    let detail = e
        .chain()
        .skip(1)
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ");
    let pool = e
        .to_string()
        .strip_prefix("failed to set up pool ")
        .unwrap_or_default()
        .to_owned();
    ReloadError::Pool {
        path: path.to_owned(),
        pool,
        detail,
    }
}

/// Reloads on every SIGHUP until the master stops.
pub fn on_sighup(
    reloader: Arc<Reloader>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    use tokio::signal::unix::{signal, SignalKind};
    // Installed before this returns: a SIGHUP after start never kills the
    // master (the default action).
    let hup = signal(SignalKind::hangup());
    tokio::spawn(async move {
        let mut hup = match hup {
            Ok(hup) => hup,
            Err(e) => {
                tracing::warn!(error = %Chain(&e), "failed to install a SIGHUP handler; reload with `burst config reload`");
                return;
            }
        };
        loop {
            tokio::select! {
                got = hup.recv() => {
                    if got.is_none() {
                        return;
                    }
                    tracing::info!("SIGHUP received: reloading the config");
                    // Errors are logged by `reload`.
                    let _ = reloader.reload().await;
                }
                // The guard `wait_for` returns is not Send: dropped inside.
                _ = async { stop.wait_for(|s| *s).await.is_ok() } => return,
            }
        }
    })
}
