//! One replay: the real scheduler actor (`crate::scheduler::Scheduler`)
//! with a `MemoryStore`, on a current-thread tokio runtime whose clock is
//! paused, so a week passes in seconds; simulated providers and workers
//! (`provider.rs`, `world.rs`); the trace's jobs submitted at their times
//! through the scheduler's handle, as the API does.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use super::error::SimError;
use super::provider::SimProvider;
use super::trace::Timed;
use super::world::{World, RUN_MS};
use crate::config::{PoolConfig, SimPoolConfig};
use crate::logs::LogStore;
use crate::model::{BuildId, Command, NewBuild, StepSpec};
use crate::scheduler::{PoolSpec, Scheduler, SchedulerSettings, WallClock, POOL_LABEL};
use crate::store::MemoryStore;

/// Simulated workers beat this often: no simulated worker is ever lost, so
/// heartbeats only renew step leases, and fewer of them replay faster.
const HEARTBEAT: Duration = Duration::from_secs(60);
/// Past the horizon, how long the replay waits for builds still queued or
/// running before it stops and reports them unfinished.
const OVERRUN: Duration = Duration::from_secs(7 * 24 * 3600);

/// What one replay runs.
#[derive(Debug, Clone)]
pub struct Setup {
    /// The policy's pools, in the config's (name) order.
    pub pools: Vec<(String, PoolConfig)>,
    /// Each pool's simulated provider, by name.
    pub sim: BTreeMap<String, SimPoolConfig>,
    /// Wall-clock time of second 0 (warm periods read it).
    pub start: DateTime<Utc>,
    pub jobs: Vec<Timed>,
    /// The replay lasts at least this long (idle workers count until then).
    pub horizon: Duration,
    pub seed: u64,
}

/// A worker's life in seconds from the start.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerSpan {
    pub id: String,
    pub pool: usize,
    pub launched: Duration,
    pub connected: Option<Duration>,
    pub ended: Duration,
    pub busy: Vec<(Duration, Duration)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BuildSpan {
    pub id: BuildId,
    /// Index into the setup's jobs.
    pub job: usize,
    pub submitted: Duration,
    /// Its pool and first step, once it started.
    pub started: Option<(usize, Duration)>,
    pub finished: Option<Duration>,
}

/// Everything a replay recorded; `report.rs` reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct Timeline {
    pub pools: Vec<String>,
    pub workers: Vec<WorkerSpan>,
    pub builds: Vec<BuildSpan>,
    /// Failed launches per pool.
    pub failed_launches: Vec<u32>,
    /// Builds' starts in order, with the worker each ran on.
    pub starts: Vec<(BuildId, String)>,
    pub end: Duration,
}

/// Replays `setup` on a paused clock; returns what happened.
pub fn replay(setup: &Setup) -> Result<Timeline, SimError> {
    check_labels(setup)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .map_err(SimError::Runtime)?;
    rt.block_on(drive(setup))
}

/// Every job's labels must be served by some pool, or it would wait forever.
fn check_labels(setup: &Setup) -> Result<(), SimError> {
    for job in &setup.jobs {
        // As `Pool::serves`: a pool's labels, or its own `burst:pool=NAME`.
        let served = setup.pools.iter().any(|(name, p)| {
            job.labels
                .iter()
                .all(|l| p.labels.contains(l) || l.strip_prefix(POOL_LABEL) == Some(name.as_str()))
        });
        if !served {
            return Err(SimError::Unserved {
                line: job.line,
                labels: job.labels.clone(),
            });
        }
    }
    Ok(())
}

fn settings(start: DateTime<Utc>) -> SchedulerSettings {
    SchedulerSettings {
        master_id: "simulated".into(),
        advertise_url: "http://simulated.invalid".into(),
        master_pin: None,
        heartbeat_interval: HEARTBEAT,
        heartbeat_misses: 3,
        step_lease: 10 * HEARTBEAT,
        shutdown_grace: Duration::ZERO,
        // No simulated worker dies while it boots.
        health_interval: Duration::from_secs(3600),
        secrets: Default::default(),
        clock: WallClock::pinned(start),
        artifact_limit: 0,
        cache_keys: Default::default(),
        // Replays compare policies, not spend caps: no budget holds a launch.
        budget: Default::default(),
    }
}

fn new_build(job_index: usize, cell: u32, job: &Timed) -> NewBuild {
    let step = StepSpec {
        name: "run".into(),
        command: Command::Script("true".into()),
        command_windows: None,
        shell: None,
        env: BTreeMap::from([(RUN_MS.to_owned(), job.duration.as_millis().to_string())]),
        working_dir: None,
        timeout: None,
        continue_on_failure: false,
        always_run: false,
        secrets: Vec::new(),
        artifacts: None,
        runner: None,
    };
    NewBuild {
        submit_id: format!("job-{job_index}"),
        builder: "simulated".into(),
        cell: BTreeMap::from([("cell".to_owned(), cell.to_string())]),
        params: BTreeMap::new(),
        labels: job.labels.clone(),
        steps: vec![step],
        retries: 1,
        submitted_by: None,
    }
}

/// The replay's step logs stay empty, but the real `LogStore` still makes,
/// syncs and seals a file per step: in memory (tmpfs) that costs little,
/// on a disk it triples a replay's time.
fn log_dir() -> std::io::Result<tempfile::TempDir> {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(dir) = tempfile::Builder::new().prefix("burst-sim").tempdir_in(shm) {
            return Ok(dir);
        }
    }
    tempfile::Builder::new().prefix("burst-sim").tempdir()
}

async fn drive(setup: &Setup) -> Result<Timeline, SimError> {
    let t0 = Instant::now();
    let world = World::new(HEARTBEAT);
    let pools = setup
        .pools
        .iter()
        .enumerate()
        .map(|(i, (name, config))| {
            let sim = setup.sim.get(name).cloned().unwrap_or_default();
            PoolSpec {
                name: name.clone(),
                config: config.clone(),
                provider: Arc::new(SimProvider::new(i, sim, setup.seed, world.clone())),
            }
        })
        .collect();
    let dir = log_dir().map_err(SimError::TempDir)?;
    let (scheduler, handle) = Scheduler::new(
        settings(setup.start),
        pools,
        Arc::new(MemoryStore::new()),
        Arc::new(LogStore::new(dir.path())),
    );
    world.attach(handle.clone());
    let task = tokio::spawn(scheduler.with_seed(setup.seed).run());

    let mut submitted: Vec<(BuildId, usize, Duration)> = Vec::new();
    for (i, job) in setup.jobs.iter().enumerate() {
        tokio::time::sleep_until(t0 + job.at).await;
        let at = Instant::now() - t0;
        let builds = (0..job.matrix).map(|c| new_build(i, c, job)).collect();
        let ids = handle.submit(builds).await.map_err(SimError::Submit)?;
        submitted.extend(ids.into_iter().map(|id| (id, i, at)));
    }
    tokio::time::sleep_until(t0 + setup.horizon).await;
    let give_up = Instant::now() + OVERRUN;
    while world.finished_count() < submitted.len() && Instant::now() < give_up {
        let _ = tokio::time::timeout_at(give_up, world.finished.notified()).await;
    }
    let end = Instant::now();
    task.abort();

    let super::world::Snapshot {
        workers,
        starts,
        finished,
        failed,
    } = world.snapshot();
    let since = |t: Instant| t.saturating_duration_since(t0);
    let started: BTreeMap<BuildId, (usize, Duration)> = starts
        .iter()
        .map(|s| (s.build, (s.pool, since(s.at))))
        .collect();
    Ok(Timeline {
        pools: setup.pools.iter().map(|(n, _)| n.clone()).collect(),
        workers: workers
            .into_iter()
            .map(|w| WorkerSpan {
                pool: w.pool,
                launched: since(w.launched),
                connected: w.connected.map(since),
                ended: since(w.ended.unwrap_or(end)),
                busy: w
                    .busy
                    .iter()
                    .map(|(a, b)| (since(*a), since(b.unwrap_or(end))))
                    .collect(),
                id: w.id,
            })
            .collect(),
        builds: submitted
            .into_iter()
            .map(|(id, job, at)| BuildSpan {
                id,
                job,
                submitted: at,
                started: started.get(&id).copied(),
                finished: finished.get(&id).map(|t| since(*t)),
            })
            .collect(),
        failed_launches: (0..setup.pools.len())
            .map(|p| failed.get(&p).copied().unwrap_or(0))
            .collect(),
        starts: starts.into_iter().map(|s| (s.build, s.worker)).collect(),
        end: since(end),
    })
}

#[cfg(test)]
mod tests;
