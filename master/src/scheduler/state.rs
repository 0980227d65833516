//! Everything the scheduler knows, owned by the actor. `decide` reads it;
//! `apply` and the event handlers change it.

use std::collections::{BTreeMap, HashMap, VecDeque};

use tokio::sync::oneshot;
use tokio::time::Instant;

use super::actor::SchedulerSettings;
use super::builds::Running;
use super::pool::Pool;
use super::spend::Spend;
use super::worker::Worker;
use crate::metrics::accrued_cost;
use crate::model::{now_millis, Build, BuildId, WorkerView};

pub struct ShutdownState {
    pub deadline: Instant,
    pub waiters: Vec<oneshot::Sender<()>>,
}

pub struct State {
    pub settings: SchedulerSettings,
    /// In name order: the first pool that serves a build's labels gets it.
    /// Retired pools (gone from the config, see `retired.rs`) come last.
    pub pools: Vec<Pool>,
    pub workers: BTreeMap<String, Worker>,
    /// Queued and running builds; finished ones live only in the store.
    pub builds: HashMap<BuildId, Build>,
    pub queue: VecDeque<BuildId>,
    pub running: HashMap<BuildId, Running>,
    pub shutdown: Option<ShutdownState>,
    pub next_session: u64,
    /// Ended workers' spend and budget levels (`spend.rs`).
    pub spend: Spend,
}

impl State {
    pub fn new(settings: SchedulerSettings, mut pools: Vec<Pool>) -> Self {
        pools.sort_by(|a, b| a.name.cmp(&b.name));
        Self {
            settings,
            pools,
            workers: BTreeMap::new(),
            builds: HashMap::new(),
            queue: VecDeque::new(),
            running: HashMap::new(),
            shutdown: None,
            next_session: 1,
            spend: Spend::default(),
        }
    }

    pub fn worker_views(&self, now: Instant) -> Vec<WorkerView> {
        let millis = now_millis();
        self.workers
            .values()
            .map(|w| WorkerView {
                worker_id: w.id.clone(),
                pool: self.pools[w.pool].name.clone(),
                state: w.state.as_str().to_owned(),
                build: w.build,
                builds_done: w.builds_done,
                os: w.os.clone(),
                labels: w.labels.clone(),
                state_age_secs: now.saturating_duration_since(w.since).as_secs(),
                provider: w.ledger.provider.clone(),
                provider_id: w.ledger.provider_id.clone(),
                host: w
                    .ledger
                    .details
                    .get("host")
                    .and_then(|h| h.as_str())
                    .map(str::to_owned),
                launched_at: w.ledger.launched_at,
                // Absent, not $0, when the provider records no price.
                cost_dollars: w
                    .ledger
                    .details
                    .get("price_per_hour")
                    .is_some()
                    .then(|| accrued_cost(&w.ledger, millis)),
            })
            .collect()
    }
}

/// A running build, its bookkeeping and its worker, borrowed together
/// (from `State`'s fields, so its settings stay readable meanwhile).
pub fn step_parts<'a>(
    builds: &'a mut HashMap<BuildId, Build>,
    running: &'a mut HashMap<BuildId, Running>,
    workers: &'a BTreeMap<String, Worker>,
    id: BuildId,
) -> Option<(&'a mut Build, &'a mut Running, &'a Worker)> {
    let build = builds.get_mut(&id)?;
    let run = running.get_mut(&id)?;
    let worker = workers.get(&run.worker_id)?;
    Some((build, run, worker))
}
