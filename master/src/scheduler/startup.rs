//! What a (re)started master does first: re-admit the workers its ledger
//! knows (they keep running their steps under their step lease and come
//! back), terminate everything else a previous run left behind, and take
//! back the builds it had not finished.

use std::collections::HashSet;

use burst_common::error_chain::Chain;
use burst_providers::ListedInstance;
use futures::future::join_all;

use tokio::time::Instant;

use super::actor::Scheduler;
use super::builds::Running;
use super::lost::settle_interrupted_attempt;
use super::pool::Pool;
use super::tokens;
use super::worker::{Worker, WorkerState};
use crate::logs::session_owner;
use crate::model::{
    AttemptState, Build, BuildState, Instance, InstanceState, InterruptReason, StepState,
    REAPED_AT_START,
};

impl Scheduler {
    pub(super) async fn startup(&mut self) {
        let now = Instant::now();
        let ledger = match self.store.live_instances().await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::error!(error = %Chain(&e), "failed to read the instance ledger; reconciling from provider listings only");
                Vec::new()
            }
        };
        self.retire_pools(&ledger);
        let (kept, ledger): (Vec<Instance>, Vec<Instance>) =
            ledger.into_iter().partition(|row| self.readmittable(row));
        for row in kept {
            self.readmit(row, now);
        }
        self.reap_orphans(ledger).await;
        self.resume_builds().await;
        self.seed_spend().await;
    }

    /// A pool gone from the config whose workers may come back gets a
    /// retired stand-in, after the config's pools (whose indices stay put):
    /// its workers are re-admitted like any other and drained.
    fn retire_pools(&mut self, ledger: &[Instance]) {
        for row in ledger
            .iter()
            .filter(|r| welcomed(r) && r.provider_id.is_some())
        {
            if self.state.pools.iter().any(|p| p.name == row.pool) {
                continue;
            }
            tracing::warn!(pool = %row.pool, "a pool that is no longer in the config has workers of the previous run; they finish their builds and are stopped");
            self.state
                .pools
                .push(Pool::retired(row.pool.clone(), &row.provider));
        }
    }

    /// A worker that was welcomed (it has a resume credential) and was not
    /// being terminated is waited for instead of terminated (drained, if
    /// its pool is retired).
    fn readmittable(&self, row: &Instance) -> bool {
        welcomed(row)
            && row.provider_id.is_some()
            && self.state.pools.iter().any(|p| p.name == row.pool)
    }

    /// Takes a worker of the previous run back as reconnecting. It has until
    /// its step lease surely ran out (and a heartbeat window) to come back;
    /// if it does not, it is terminated like any worker that did not
    /// reconnect (`decide`), and its build ends interrupted.
    fn readmit(&mut self, row: Instance, now: Instant) {
        let Some(pool) = self.state.pools.iter().position(|p| p.name == row.pool) else {
            return;
        };
        let settings = &self.state.settings;
        let lease_until = now + settings.step_lease;
        let deadline = lease_until + settings.lease_grace() + settings.heartbeat_window();
        tracing::info!(worker = %row.worker_id, pool = %row.pool, "waiting for a worker of the previous run to come back");
        let worker = Worker {
            id: row.worker_id.clone(),
            pool,
            provider: self.state.pools[pool].provider.clone(),
            state: WorkerState::Reconnecting,
            since: now,
            deadline: Some(deadline),
            // Spent long ago; no token hashes to all zeros.
            launch_token: [0; 32],
            resume_token: row.resume_hash.as_deref().and_then(tokens::from_hex),
            resume_prev: row.resume_prev_hash.as_deref().and_then(tokens::from_hex),
            lease_until,
            readmitted: true,
            session: None,
            last_seen: now,
            builds_done: 0,
            build: None,
            os: None,
            labels: self.state.pools[pool].cfg.labels.clone(),
            ledger: row,
            launch_returned: true,
            health_in_flight: false,
            next_health: now,
        };
        self.state.workers.insert(worker.id.clone(), worker);
    }

    /// Every other worker the ledger still calls live, and every worker a
    /// provider lists under this master's tag that is not re-admitted, is
    /// terminated. Its builds are requeued by `resume_builds`.
    async fn reap_orphans(&mut self, ledger: Vec<Instance>) {
        let mut jobs = Vec::new();
        for pool in &self.state.pools {
            let listed = match pool.provider.list().await {
                Ok(listed) => listed,
                Err(e) => {
                    tracing::error!(pool = %pool.name, error = %Chain(&e), "failed to list workers; orphans may remain until the next start");
                    Vec::new()
                }
            };
            let mut targets: Vec<ListedInstance> = listed
                .into_iter()
                .filter(|t| !self.state.workers.contains_key(&t.worker_id))
                .collect();
            for row in ledger.iter().filter(|r| r.pool == pool.name) {
                if let Some(pid) = &row.provider_id {
                    if !targets.iter().any(|t| t.worker_id == row.worker_id) {
                        targets.push(ListedInstance {
                            worker_id: row.worker_id.clone(),
                            provider_id: pid.clone(),
                        });
                    }
                }
            }
            for target in targets {
                let provider = pool.provider.clone();
                let pool_name = pool.name.clone();
                jobs.push(async move {
                    tracing::warn!(pool = %pool_name, worker = %target.worker_id, "terminating orphan from a previous run");
                    let result = provider.terminate(&target.worker_id, &target.provider_id).await;
                    (target, pool_name, result)
                });
            }
        }
        let reaper = format!("{REAPED_AT_START} {}", self.state.settings.master_id);
        // Rows settled here are final; the pass below must not rewrite them.
        let mut settled = HashSet::new();
        let kinds: Vec<(String, String)> = self
            .state
            .pools
            .iter()
            .map(|p| (p.name.clone(), p.provider.kind().to_owned()))
            .collect();
        let kind_of = |pool: &str| {
            kinds
                .iter()
                .find(|(name, _)| name == pool)
                .map(|(_, kind)| kind.clone())
                .unwrap_or_default()
        };
        for (target, pool, result) in join_all(jobs).await {
            let mut row = ledger
                .iter()
                .find(|r| r.worker_id == target.worker_id)
                .cloned()
                .unwrap_or_else(|| {
                    // Listed by the provider but never recorded: record it now.
                    Instance {
                        worker_id: target.worker_id.clone(),
                        pool: pool.clone(),
                        provider: kind_of(&pool),
                        provider_id: Some(target.provider_id.clone()),
                        state: InstanceState::Terminating,
                        details: serde_json::Value::Null,
                        error: Some("found at the provider but missing from the ledger".into()),
                        launched_at: self.state.settings.clock.millis(Instant::now()),
                        connected_at: None,
                        terminated_at: None,
                        ended_by: None,
                        resume_hash: None,
                        resume_prev_hash: None,
                    }
                });
            row.provider_id.get_or_insert(target.provider_id.clone());
            match result {
                Ok(()) => {
                    self.metrics.orphan_reaped(&pool);
                    row.state = InstanceState::Gone;
                    row.terminated_at = Some(self.state.settings.clock.millis(Instant::now()));
                    row.ended_by = Some(reaper.clone());
                }
                Err(e) => {
                    tracing::error!(worker = %target.worker_id, error = %Chain(&e), "failed to terminate orphan; will retry at next start");
                    row.state = InstanceState::Terminating;
                    row.error = Some(Chain(&e).to_string());
                }
            }
            settled.insert(row.worker_id.clone());
            self.persist_instance(row).await;
        }
        // Rows with no provider handle that no provider listed never got as
        // far as a launch the provider could see: nothing is left of them.
        let never_listed = ledger
            .into_iter()
            .filter(|r| r.provider_id.is_none() && !settled.contains(&r.worker_id));
        for mut row in never_listed {
            row.state = InstanceState::Failed;
            row.error
                .get_or_insert_with(|| "master stopped while the launch was in flight".into());
            row.terminated_at = Some(self.state.settings.clock.millis(Instant::now()));
            row.ended_by = Some(format!(
                "settled at start by master {}: its provider lists no such worker",
                self.state.settings.master_id
            ));
            self.persist_instance(row).await;
        }
    }

    /// Queued builds wait again; builds that were running are requeued as
    /// interrupted: a restart never uses up a retry.
    async fn resume_builds(&mut self) {
        let builds = match self.store.unfinished_builds().await {
            Ok(builds) => builds,
            Err(e) => {
                tracing::error!(error = %Chain(&e), "failed to load unfinished builds");
                return;
            }
        };
        for mut build in builds {
            let id = build.id;
            let interrupted = build
                .attempts
                .last()
                .is_some_and(|a| a.state == AttemptState::Running);
            if build.state == BuildState::Running && interrupted && self.resume_build(&build).await
            {
                self.state.builds.insert(id, build);
                continue;
            }
            if build.state == BuildState::Running && interrupted {
                settle_interrupted_attempt(&mut build, &InterruptReason::MasterRestarted);
            } else if build.state == BuildState::Running {
                // Running with no running attempt cannot be resumed as is.
                build.state = BuildState::Queued;
            }
            let queued = build.state == BuildState::Queued;
            self.state.builds.insert(id, build);
            if queued {
                self.state.queue.push_back(id);
            }
            self.persist_build(id);
        }
        if !self.state.queue.is_empty() {
            tracing::info!(builds = self.state.queue.len(), "resumed queued builds");
        }
    }

    /// A running build whose worker was re-admitted goes on as the same
    /// attempt once the worker is back. False when it cannot (no such
    /// worker, or no step in flight).
    async fn resume_build(&mut self, build: &Build) -> bool {
        let Some(attempt) = build.attempts.last() else {
            return false;
        };
        let Some(worker) = self.state.workers.get(&attempt.worker_id) else {
            return false;
        };
        if worker.build.is_some() || worker.state != WorkerState::Reconnecting {
            return false;
        }
        let Some(step) = attempt.steps.iter().find(|s| s.state == StepState::Running) else {
            return false;
        };
        let mut run = Running {
            worker_id: attempt.worker_id.clone(),
            session: 0,
            attempt: attempt.number,
            step: step.index,
            failed: false,
            timed_out: false,
            cancel_requested: false,
            failure: None,
            fence: None,
            restarted: true,
        };
        // What the steps before it decided: only `always_run` steps follow
        // a failure.
        for (done, spec) in attempt.steps.iter().zip(&build.steps) {
            if done.index >= step.index || spec.continue_on_failure || run.failed {
                continue;
            }
            if matches!(
                done.state,
                StepState::Failed | StepState::TimedOut | StepState::Cancelled
            ) {
                run.failed = true;
                run.timed_out = done.state == StepState::TimedOut;
                run.failure = Some(match &done.error {
                    Some(error) => format!("step {} failed: {error}", spec.name),
                    None => format!("step {} {}", spec.name, done.state.as_str()),
                });
            }
        }
        let id = run.step_id(build.id);
        let owner = session_owner(&attempt.worker_id, 0);
        if let Err(e) = self.logs.reopen_step(id, &owner).await {
            tracing::error!(step = %id, error = %Chain(&e), "failed to reopen a step log; the build runs again");
            return false;
        }
        tracing::info!(build = build.id, attempt = attempt.number, worker = %attempt.worker_id, "build waits for its worker to come back");
        if let Some(w) = self.state.workers.get_mut(&attempt.worker_id) {
            w.build = Some(build.id);
        }
        self.state.running.insert(build.id, run);
        true
    }
}

/// The worker was welcomed (it holds a resume credential) and was not being
/// terminated.
fn welcomed(row: &Instance) -> bool {
    matches!(
        row.state,
        InstanceState::Launched | InstanceState::Connected
    ) && row
        .resume_hash
        .as_deref()
        .and_then(tokens::from_hex)
        .is_some()
}
