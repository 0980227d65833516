//! How a build moves: queued → an attempt on a worker, one step at a time →
//! finished, or back to the queue when its worker is lost.

use std::sync::Arc;

use burst_common::error_chain::Chain;
use burst_proto::{
    run_step, worker_message, Argv, BuildEnded, CancelStep, MasterMessage, RunStep, StepFinished,
};
use tokio::time::Instant;

use super::actor::Scheduler;
use super::commit::OnFail;
use super::handle::{SchedError, Submitted};
use super::lost::{settle_cancelled_attempt, settle_interrupted_attempt, settle_lost_attempt};
use super::reason::StopReason;
use super::runner_jit::JitTake;
use super::secrets::add_secrets;
use super::state::step_parts;
use super::worker::WorkerState;
use crate::logs::{session_owner, StepRunId};
use crate::model::{
    now_millis, ArtifactWhen, Attempt, AttemptState, Build, BuildId, BuildState, Command,
    IdempotencyKey, InterruptReason, LostReason, NewBuild, StepRun, StepState, SubmitOnce,
};

/// Bookkeeping for a build that runs on a worker.
pub struct Running {
    pub worker_id: String,
    /// The worker session the step in flight was sent on: only that session
    /// may report its result.
    pub session: u64,
    /// 1-based attempt number.
    pub attempt: u32,
    /// Index of the step in flight.
    pub step: u32,
    /// A step failed (and was not allowed to): only `always_run` steps follow.
    pub failed: bool,
    pub timed_out: bool,
    pub cancel_requested: bool,
    /// What failed first, for the build's status.
    pub failure: Option<String>,
    /// The worker was declared lost: waiting for it to be surely gone.
    pub fence: Option<Fence>,
    /// Taken over from a previous run of the master, and the worker has not
    /// come back since: losing it now is the restart's doing, not the
    /// worker's (the attempt ends interrupted and uses no retry).
    pub restarted: bool,
}

/// Why and until when a lost worker's build waits before it is retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    pub worker_id: String,
    pub reason: LostReason,
    pub until: Instant,
}

impl Running {
    /// The step run in flight.
    pub fn step_id(&self, build: BuildId) -> StepRunId {
        StepRunId {
            build,
            attempt: self.attempt,
            index: self.step,
        }
    }
}

impl Scheduler {
    pub(super) async fn submit(
        &mut self,
        builds: Vec<NewBuild>,
        key: Option<IdempotencyKey>,
    ) -> Result<Submitted, SchedError> {
        if self.state.shutdown.is_some() {
            return Err(SchedError::ShuttingDown);
        }
        if let Some(fault) = self.health.fault() {
            return Err(SchedError::StoreFailing(fault));
        }
        let result = match &key {
            None => self
                .store
                .insert_builds(builds)
                .await
                .map(SubmitOnce::Created),
            Some(key) => self.store.insert_builds_once(builds, key).await,
        };
        let builds = match result {
            Ok(SubmitOnce::Created(builds)) => builds,
            Ok(SubmitOnce::Replayed { submit_id, builds }) => {
                return Ok(Submitted::Replayed { submit_id, builds })
            }
            Ok(SubmitOnce::Conflict) => {
                let key = key.map(|k| k.key).unwrap_or_default();
                return Err(SchedError::KeyReused(key));
            }
            Err(e) => {
                if e.is_fault() {
                    self.store_failed(&e);
                }
                return Err(SchedError::Store(Arc::new(e)));
            }
        };
        let ids = builds.iter().map(|b| b.id).collect();
        for build in builds {
            tracing::info!(build = build.id, builder = %build.builder, "build queued");
            self.metrics.build_submitted(&build.builder);
            self.state.queue.push_back(build.id);
            self.state.builds.insert(build.id, build);
        }
        Ok(Submitted::New(ids))
    }

    pub(super) async fn cancel(&mut self, id: BuildId) -> Result<BuildState, SchedError> {
        let build = self
            .state
            .builds
            .get_mut(&id)
            .ok_or(SchedError::NotActive(id))?;
        if build.state == BuildState::Queued {
            build.state = BuildState::Cancelled;
            build.reason = Some("cancelled before it started".into());
            build.finished_at = Some(now_millis());
            self.persist_build(id);
            return Ok(BuildState::Cancelled);
        }
        let Some(run) = self.state.running.get_mut(&id) else {
            return Ok(build.state);
        };
        run.cancel_requested = true;
        let step = StepRunId {
            build: id,
            attempt: run.attempt,
            index: run.step,
        };
        let (worker_id, session) = (run.worker_id.clone(), run.session);
        // A worker that is away gets the cancel when it comes back (see
        // `hello`); one being fenced off is cancelled by the fence.
        let on_fail = if run.fence.is_some() {
            OnFail::Ignore
        } else {
            OnFail::DropSession
        };
        if self.forget_jit(step) {
            // Never sent: the worker has nothing to cancel.
            let finished = StepFinished {
                step_run_id: step.to_string(),
                cancelled: true,
                ..Default::default()
            };
            self.step_finished(&worker_id, session, finished, Instant::now())
                .await;
        } else {
            let msg = MasterMessage {
                msg: Some(burst_proto::master_message::Msg::Cancel(CancelStep {
                    step_run_id: step.to_string(),
                })),
            };
            self.defer_send(&worker_id, msg, on_fail);
        }
        Ok(self
            .state
            .builds
            .get(&id)
            .map(|b| b.state)
            .unwrap_or(BuildState::Cancelled))
    }

    /// Starts new attempts of queued builds on idle workers (one plan's
    /// starts). Persist, then act: the attempts are saved, in one
    /// transaction, before their first steps leave the master, so a crash in
    /// between cannot hide a run. Returns false when the store refused them:
    /// the builds stay queued and the workers idle.
    pub(super) async fn start_builds(
        &mut self,
        starts: Vec<(BuildId, String)>,
        now: Instant,
    ) -> bool {
        let mut ready = Vec::with_capacity(starts.len());
        for (id, worker_id) in starts {
            if self.fail_without_secrets(id).await {
                continue;
            }
            if let Some((next, first_start)) = self.next_attempt(id, &worker_id) {
                ready.push((next, worker_id, first_start));
            }
        }
        if ready.is_empty() {
            return true;
        }
        let saved = {
            let builds: Vec<&Build> = ready.iter().map(|(b, _, _)| b).collect();
            self.store.save_builds(&builds).await
        };
        if let Err(e) = saved {
            let ids: Vec<BuildId> = ready.iter().map(|(b, _, _)| b.id).collect();
            tracing::error!(builds = ?ids, error = %Chain(&e), "failed to save the attempts; the builds stay queued");
            if e.is_fault() {
                self.store_failed(&e);
            }
            return false;
        }
        for (next, worker_id, first_start) in ready {
            self.begin_attempt(next, &worker_id, first_start, now).await;
        }
        true
    }

    /// The build as a new attempt on `worker_id` leaves it (not applied),
    /// and whether it is the build's first start.
    fn next_attempt(&self, id: BuildId, worker_id: &str) -> Option<(Build, bool)> {
        let (Some(build), Some(worker)) = (
            self.state.builds.get(&id),
            self.state.workers.get(worker_id),
        ) else {
            return None;
        };
        let pool = self.state.pools[worker.pool].name.clone();
        let mut next = build.clone();
        let number = next.attempts.len() as u32 + 1;
        let started = now_millis();
        next.attempts.push(Attempt {
            number,
            worker_id: worker_id.to_owned(),
            pool: pool.clone(),
            state: AttemptState::Running,
            reason: None,
            started_at: started,
            finished_at: None,
            steps: next
                .steps
                .iter()
                .enumerate()
                .map(|(i, s)| StepRun {
                    index: i as u32,
                    name: s.name.clone(),
                    state: if i == 0 {
                        StepState::Running
                    } else {
                        StepState::Pending
                    },
                    exit_code: None,
                    signal: None,
                    error: None,
                    started_at: (i == 0).then_some(started),
                    duration_ms: None,
                    log_bytes: 0,
                })
                .collect(),
        });
        next.state = BuildState::Running;
        next.reason = None;
        let first_start = next.started_at.is_none();
        next.started_at.get_or_insert(started);
        Some((next, first_start))
    }

    /// Applies a saved new attempt: the worker is busy, the first step goes.
    async fn begin_attempt(
        &mut self,
        next: Build,
        worker_id: &str,
        first_start: bool,
        now: Instant,
    ) {
        let id = next.id;
        let Some(attempt) = next.attempts.last() else {
            return;
        };
        let (number, started, pool) = (attempt.number, attempt.started_at, attempt.pool.clone());
        if first_start {
            self.metrics.build_started(&pool, next.created_at, started);
        }
        self.state.builds.insert(id, next);
        if let Some(worker) = self.state.workers.get_mut(worker_id) {
            worker.set_state(WorkerState::Busy, now);
            worker.build = Some(id);
        }
        tracing::info!(
            build = id,
            attempt = number,
            worker = worker_id,
            "build started"
        );
        self.state.queue.retain(|b| *b != id);
        self.state.running.insert(
            id,
            Running {
                worker_id: worker_id.to_owned(),
                session: 0,
                attempt: number,
                step: 0,
                failed: false,
                timed_out: false,
                cancel_requested: false,
                failure: None,
                fence: None,
                restarted: false,
            },
        );
        if self
            .state
            .builds
            .get(&id)
            .is_some_and(|b| b.steps.is_empty())
        {
            self.finish_attempt(id, now).await;
        } else {
            self.run_step(id, 0).await;
        }
    }

    /// Sends step `index` of a running build to its worker.
    pub(super) async fn run_step(&mut self, id: BuildId, index: u32) {
        let Some((build, run, worker)) = step_parts(
            &mut self.state.builds,
            &mut self.state.running,
            &self.state.workers,
            id,
        ) else {
            return;
        };
        let Some(spec) = build.steps.get(index as usize) else {
            return;
        };
        run.step = index;
        run.session = worker.session.as_ref().map_or(0, |s| s.id);
        let owner = session_owner(&run.worker_id, run.session);
        let step_id = StepRunId {
            build: id,
            attempt: run.attempt,
            index,
        };
        let stdin = match spec.runner.clone() {
            None => Vec::new(),
            Some(runner) => {
                let worker_id = run.worker_id.clone();
                match self.take_jit(step_id, &runner, &worker_id) {
                    JitTake::Send(stdin) => stdin,
                    JitTake::Wait => return,
                }
            }
        };
        // Looked up again: asking for a JIT config needed the whole actor.
        let Some((build, run, worker)) = step_parts(
            &mut self.state.builds,
            &mut self.state.running,
            &self.state.workers,
            id,
        ) else {
            return;
        };
        let Some(spec) = build.steps.get(index as usize) else {
            return;
        };
        let windows = worker.os.as_deref() == Some("windows");
        let command = match (&spec.command_windows, windows) {
            (Some(cmd), true) => cmd,
            _ => &spec.command,
        };
        let mut env = spec.env.clone();
        env.insert("BURST_BUILD_ID".into(), id.to_string());
        env.insert("BURST_BUILDER".into(), build.builder.clone());
        env.insert("BURST_ATTEMPT".into(), run.attempt.to_string());
        env.insert("BURST_STEP".into(), spec.name.clone());
        add_secrets(&mut env, spec, &self.state.settings.secrets);
        let msg = RunStep {
            step_run_id: step_id.to_string(),
            build_key: build_key(id),
            name: spec.name.clone(),
            command: Some(match command {
                Command::Script(s) => run_step::Command::Script(s.clone()),
                Command::Argv(a) => run_step::Command::Argv(Argv { args: a.clone() }),
                Command::Checkout(c) => run_step::Command::Checkout(checkout(c, &build.params)),
                Command::Cache(c) => {
                    let scope = cache_scope(&build.builder, c.per_branch, &build.params);
                    let token =
                        self.state
                            .settings
                            .cache_keys
                            .token(&step_id.to_string(), &scope, c.save);
                    run_step::Command::Cache(burst_proto::CacheStep {
                        save: c.save,
                        key: c.key.clone(),
                        restore_keys: c.restore_keys.clone(),
                        paths: c.paths.clone(),
                        scope,
                        token,
                    })
                }
            }),
            shell: spec.shell.clone().unwrap_or_default(),
            env: env.into_iter().collect(),
            working_dir: spec.working_dir.clone().unwrap_or_default(),
            timeout_ms: spec.timeout.map(|t| t.as_millis() as u64).unwrap_or(0),
            artifacts: spec
                .artifacts
                .as_ref()
                .map(|a| a.paths.clone())
                .unwrap_or_default(),
            artifacts_when: match spec.artifacts.as_ref().map(|a| a.when) {
                None | Some(ArtifactWhen::OnSuccess) => burst_proto::ArtifactWhen::OnSuccess,
                Some(ArtifactWhen::OnFailure) => burst_proto::ArtifactWhen::OnFailure,
                Some(ArtifactWhen::Always) => burst_proto::ArtifactWhen::Always,
            } as i32,
            artifact_limit: self.state.settings.artifact_limit,
            stdin,
        };
        let worker_id = run.worker_id.clone();
        if let Some(step) = build
            .attempts
            .last_mut()
            .and_then(|a| a.steps.get_mut(index as usize))
        {
            step.state = StepState::Running;
            step.started_at = Some(now_millis());
        }
        if let Err(e) = self.logs.open_step(step_id, &owner).await {
            tracing::error!(step = %step_id, error = %Chain(&e), "failed to open step log");
        }
        // Persist, then act: the message goes out once the turn's writes
        // are saved (a later step's start the store refuses is kept to save
        // later; the attempt itself, with its first step, was saved by
        // `start_builds`).
        if index > 0 {
            self.persist_build(id);
        }
        let run = MasterMessage {
            msg: Some(burst_proto::master_message::Msg::Run(msg)),
        };
        self.defer_send(&worker_id, run, OnFail::DropSession);
    }

    /// Routes a control message from a worker's current session.
    pub(super) async fn on_worker_message(
        &mut self,
        worker_id: &str,
        session: u64,
        msg: worker_message::Msg,
        now: Instant,
    ) {
        let Some(worker) = self.state.workers.get_mut(worker_id) else {
            return;
        };
        if worker.session.as_ref().map(|s| s.id) != Some(session) {
            if let worker_message::Msg::Finished(f) = &msg {
                tracing::warn!(
                    target: "audit",
                    worker = worker_id,
                    session,
                    step = %f.step_run_id,
                    "refused a result from a stale session"
                );
            } else {
                tracing::debug!(
                    worker = worker_id,
                    "ignoring a message from a stale session"
                );
            }
            return;
        }
        worker.last_seen = now;
        match msg {
            worker_message::Msg::Finished(mut f) => {
                // Stored, shown and logged from here on: never with a secret.
                f.error = self.logs.mask().mask_str(&f.error);
                let step = f.step_run_id.clone();
                self.step_finished(worker_id, session, f, now).await;
                // Accepted or refused, the worker may forget it: it is saved
                // (persist, then acknowledge) or was never wanted.
                let ack = burst_proto::master_message::Msg::ResultAck(burst_proto::ResultAck {
                    step_run_id: step,
                });
                self.defer_send(worker_id, MasterMessage { msg: Some(ack) }, OnFail::Ignore);
            }
            worker_message::Msg::Heartbeat(_) => self.renew_lease(worker_id, now),
            // The session's reader stores these; they never reach the actor.
            worker_message::Msg::Artifact(_) => {}
            worker_message::Msg::Notice(n) => {
                tracing::warn!(worker = worker_id, detail = %n.detail, "worker reports its host is going away");
                if let Some(w) = self.state.workers.get(worker_id) {
                    if let Some(build) = w.build {
                        let reason = LostReason::Interrupted {
                            worker: worker_id.to_owned(),
                            detail: n.detail.clone(),
                        };
                        let until = w.lease_until + self.state.settings.lease_grace();
                        self.fence_build(build, reason, until);
                    }
                }
                self.terminate(worker_id, &StopReason::InterruptionNotice)
                    .await;
            }
            // Liveness is recorded above; output goes straight to the log store.
            worker_message::Msg::Output(_) | worker_message::Msg::Hello(_) => {}
        }
    }

    pub(super) async fn step_finished(
        &mut self,
        worker_id: &str,
        session: u64,
        f: StepFinished,
        now: Instant,
    ) {
        let Ok(step_id) = f.step_run_id.parse::<StepRunId>() else {
            tracing::warn!(worker = worker_id, step = %f.step_run_id, "refused a result with a malformed step id");
            return;
        };
        let current = self.state.running.get(&step_id.build).is_some_and(|r| {
            r.worker_id == worker_id
                && r.session == session
                && r.attempt == step_id.attempt
                && r.step == step_id.index
                && r.fence.is_none()
        });
        if !current {
            // Audit: a result from anywhere but the session the step was
            // sent on is a stale worker at best, a forged one at worst.
            tracing::warn!(
                target: "audit",
                worker = worker_id,
                session,
                step = %step_id,
                "refused a result for a step that was not sent to this worker session"
            );
            return;
        }
        if f.lease_expired {
            // Not the step's doing, nor the worker's: runs again, no retry used.
            let reason = InterruptReason::LeaseExpired {
                worker: worker_id.to_owned(),
            };
            self.interrupt_build(step_id.build, &reason).await;
            if let Some(w) = self.state.workers.get_mut(worker_id) {
                w.set_state(WorkerState::Idle, now);
            }
            return;
        }
        let log_bytes = self.logs.close_step(step_id).await;
        let (Some(build), Some(run)) = (
            self.state.builds.get_mut(&step_id.build),
            self.state.running.get_mut(&step_id.build),
        ) else {
            return;
        };
        let spec = &build.steps[step_id.index as usize];
        let state = if !f.error.is_empty() {
            StepState::Failed
        } else if f.cancelled {
            StepState::Cancelled
        } else if f.timed_out {
            StepState::TimedOut
        } else if f.exit_code == Some(0) {
            StepState::Succeeded
        } else {
            StepState::Failed
        };
        if state != StepState::Succeeded && !spec.continue_on_failure && !run.failed {
            run.failed = true;
            run.timed_out = state == StepState::TimedOut;
            run.failure = Some(describe_failure(&spec.name, state, &f));
        }
        let (failed, cancel) = (run.failed, run.cancel_requested);
        if let Some(attempt) = build.attempts.last_mut() {
            if let Some(step) = attempt.steps.get_mut(step_id.index as usize) {
                step.state = state;
                step.exit_code = f.exit_code;
                step.signal = f.signal;
                step.error = (!f.error.is_empty()).then(|| f.error.clone());
                step.duration_ms = Some(f.duration_ms);
                step.log_bytes = log_bytes;
            }
            // Steps after a failure or a cancel are skipped, except clean-up.
            let mut next = None;
            for j in (step_id.index + 1) as usize..build.steps.len() {
                if !(failed || cancel) || build.steps[j].always_run {
                    next = Some(j as u32);
                    break;
                }
                if let Some(step) = attempt.steps.get_mut(j) {
                    step.state = StepState::Skipped;
                }
            }
            match next {
                Some(j) => self.run_step(step_id.build, j).await,
                None => self.finish_attempt(step_id.build, now).await,
            }
        }
    }

    /// The attempt ran all its steps: settle the build and free the worker.
    async fn finish_attempt(&mut self, id: BuildId, now: Instant) {
        let Some(run) = self.state.running.remove(&id) else {
            return;
        };
        let Some(build) = self.state.builds.get_mut(&id) else {
            return;
        };
        let (state, attempt_state, reason) = if run.cancel_requested {
            (
                BuildState::Cancelled,
                AttemptState::Cancelled,
                Some("cancelled".to_owned()),
            )
        } else if run.timed_out {
            (
                BuildState::TimedOut,
                AttemptState::TimedOut,
                run.failure.clone(),
            )
        } else if run.failed {
            (
                BuildState::Failed,
                AttemptState::Failed,
                run.failure.clone(),
            )
        } else {
            (BuildState::Succeeded, AttemptState::Succeeded, None)
        };
        if let Some(attempt) = build.attempts.last_mut() {
            attempt.state = attempt_state;
            attempt.finished_at = Some(now_millis());
            attempt.reason = reason.clone();
        }
        build.state = state;
        build.reason = reason;
        build.finished_at = Some(now_millis());
        tracing::info!(build = id, state = state.as_str(), "build finished");
        self.persist_build(id);
        self.end_workspace(id, &run.worker_id);
        self.release_worker(&run.worker_id, now).await;
    }

    /// Tells the worker to remove the build's directory, unless its pool
    /// keeps workspaces. (A worker that is gone takes its dirs along.)
    fn end_workspace(&mut self, id: BuildId, worker_id: &str) {
        let Some(worker) = self.state.workers.get(worker_id) else {
            return;
        };
        if self.state.pools[worker.pool].cfg.keep_workspace {
            return;
        }
        let ended = MasterMessage {
            msg: Some(burst_proto::master_message::Msg::BuildEnded(BuildEnded {
                build_key: build_key(id),
            })),
        };
        self.defer_send(worker_id, ended, OnFail::Ignore);
    }

    /// A worker finished a build: idle again, or recycled after `max_builds`.
    async fn release_worker(&mut self, worker_id: &str, now: Instant) {
        let Some(worker) = self.state.workers.get_mut(worker_id) else {
            return;
        };
        worker.build = None;
        worker.builds_done += 1;
        worker.set_state(WorkerState::Idle, now);
        let max = self.state.pools[worker.pool].cfg.max_builds;
        if max > 0 && worker.builds_done >= max {
            self.terminate(worker_id, &StopReason::Recycled { after: max })
                .await;
        }
    }

    /// The build's worker is gone: record the lost attempt, then retry the
    /// build while retries remain. The caller deals with the worker.
    pub(super) async fn lose_build(&mut self, id: BuildId, reason: &LostReason) {
        let Some(run) = self.state.running.remove(&id) else {
            return;
        };
        let step_id = StepRunId {
            build: id,
            attempt: run.attempt,
            index: run.step,
        };
        self.logs.close_step(step_id).await;
        if let Some(w) = self.state.workers.get_mut(&run.worker_id) {
            w.build = None;
        }
        let Some(build) = self.state.builds.get_mut(&id) else {
            return;
        };
        if run.restarted && !run.cancel_requested {
            // Its worker never came back after the restart: not its fault.
            settle_interrupted_attempt(build, &InterruptReason::MasterRestarted);
            tracing::warn!(build = id, %reason, "worker did not come back after the restart; build requeued");
            self.state.queue.push_front(id);
        } else if settle_lost_attempt(build, reason, run.cancel_requested) {
            tracing::warn!(build = id, %reason, "worker lost; build requeued");
            self.state.queue.push_front(id);
        }
        self.persist_build(id);
    }

    /// Ends the build's attempt interrupted (no retry used) and requeues it,
    /// or ends it cancelled when a cancel was asked for.
    async fn interrupt_build(&mut self, id: BuildId, reason: &InterruptReason) {
        let Some(run) = self.state.running.remove(&id) else {
            return;
        };
        self.logs.close_step(run.step_id(id)).await;
        if let Some(w) = self.state.workers.get_mut(&run.worker_id) {
            w.build = None;
        }
        let Some(build) = self.state.builds.get_mut(&id) else {
            return;
        };
        if run.cancel_requested {
            settle_cancelled_attempt(build, reason);
        } else {
            tracing::warn!(build = id, %reason, "attempt interrupted; build requeued");
            settle_interrupted_attempt(build, reason);
            self.state.queue.push_front(id);
        }
        self.persist_build(id);
    }

    /// The build's worker is declared lost. Fencing: its step may still run
    /// there until the worker's lease runs out, so the build is retried only
    /// once the provider confirms the worker gone (`worker_gone`) or at
    /// `until`, whichever comes first. Its results are refused from now on.
    pub(super) fn fence_build(&mut self, id: BuildId, reason: LostReason, until: Instant) {
        let Some(run) = self.state.running.get_mut(&id) else {
            return;
        };
        if run.fence.is_some() {
            return;
        }
        tracing::warn!(build = id, worker = %run.worker_id, %reason, "worker lost; the build is retried once the worker is surely gone");
        run.fence = Some(Fence {
            worker_id: run.worker_id.clone(),
            reason,
            until,
        });
    }

    /// The provider confirmed the worker gone: builds fenced off it are
    /// lost now.
    pub(super) async fn worker_gone(&mut self, worker_id: &str) {
        let mut fenced: Vec<(BuildId, LostReason)> = self
            .state
            .running
            .iter()
            .filter_map(|(id, run)| {
                let fence = run.fence.as_ref()?;
                (fence.worker_id == worker_id).then(|| (*id, fence.reason.clone()))
            })
            .collect();
        fenced.sort_by_key(|(id, _)| *id);
        for (id, reason) in fenced {
            self.lose_build(id, &reason).await;
        }
    }

    /// Queues a message for a worker's session, if it has one.
    pub(super) fn send_to(&self, worker_id: &str, msg: burst_proto::master_message::Msg) -> bool {
        self.state
            .workers
            .get(worker_id)
            .is_some_and(|w| w.send(MasterMessage { msg: Some(msg) }))
    }

    /// Renews the worker's step lease (in answer to its heartbeat).
    pub(super) fn renew_lease(&mut self, worker_id: &str, now: Instant) {
        let lease = self.state.settings.step_lease;
        let renewal = burst_proto::master_message::Msg::Lease(burst_proto::Lease {
            step_lease_ms: u64::try_from(lease.as_millis()).unwrap_or(u64::MAX),
        });
        if self.send_to(worker_id, renewal) {
            if let Some(w) = self.state.workers.get_mut(worker_id) {
                w.lease_until = now + lease;
            }
        }
    }
}

/// The directory a build's steps share on their worker.
fn build_key(id: BuildId) -> String {
    format!("build-{id}")
}

fn describe_failure(name: &str, state: StepState, f: &StepFinished) -> String {
    match state {
        StepState::TimedOut => format!("step {name} timed out"),
        StepState::Cancelled => format!("step {name} was cancelled"),
        _ if !f.error.is_empty() => format!("step {name} failed: {}", f.error),
        _ => match (f.exit_code, f.signal) {
            (Some(code), _) => format!("step {name} failed with exit code {code}"),
            (None, Some(sig)) => format!("step {name} was killed by signal {sig}"),
            (None, None) => format!("step {name} failed"),
        },
    }
}

/// The worker's checkout of `spec` for a build with `params`: the
/// repository is the step's `url` or the build's `BURST_REPO_URL`, the
/// revision its `BURST_REVISION` (either empty when the build has none:
/// the worker fails the step, naming what is missing).
fn checkout(
    spec: &crate::model::CheckoutSpec,
    params: &std::collections::BTreeMap<String, String>,
) -> burst_proto::Checkout {
    let param = |name: &str| params.get(name).cloned().unwrap_or_default();
    burst_proto::Checkout {
        url: spec
            .url
            .clone()
            .unwrap_or_else(|| param(crate::triggers::REPO_URL)),
        revision: param(crate::triggers::REVISION),
        full_history: spec.full,
        submodules: spec.submodules,
        token_env: spec.secret.clone().unwrap_or_default(),
    }
}

/// Where a builder's caches are kept: per builder, and per branch when the
/// cache asks (a build with no branch shares the builder's).
fn cache_scope(
    builder: &str,
    per_branch: bool,
    params: &std::collections::BTreeMap<String, String>,
) -> String {
    match params.get(crate::triggers::source_params::BRANCH) {
        Some(branch) if per_branch => format!("{builder}@{branch}"),
        _ => builder.to_owned(),
    }
}

#[cfg(test)]
mod checkout_tests {
    use super::checkout;
    use crate::model::CheckoutSpec;

    #[test]
    fn a_checkout_takes_the_builds_source_unless_the_step_names_a_url() {
        let params = [
            (
                "BURST_REPO_URL".to_owned(),
                "https://github.com/acme/app.git".to_owned(),
            ),
            ("BURST_REVISION".to_owned(), "a".repeat(40)),
        ]
        .into();
        let spec = CheckoutSpec {
            secret: Some("GIT_TOKEN".into()),
            submodules: true,
            ..Default::default()
        };
        let c = checkout(&spec, &params);
        assert_eq!(c.url, "https://github.com/acme/app.git");
        assert_eq!(c.revision, "a".repeat(40));
        assert!(c.submodules && !c.full_history);
        // The env entry's name, never the value: the value is in `env`.
        assert_eq!(c.token_env, "GIT_TOKEN");
        let own = CheckoutSpec {
            url: Some("file:///srv/app.git".into()),
            full: true,
            ..Default::default()
        };
        let c = checkout(&own, &params);
        assert_eq!(c.url, "file:///srv/app.git");
        assert!(c.full_history && c.token_env.is_empty());
        // A build without source params: empty, for the worker to refuse.
        let c = checkout(&spec, &Default::default());
        assert!(c.url.is_empty() && c.revision.is_empty());
    }
}

#[cfg(test)]
mod cache_scope_tests {
    use super::cache_scope;

    #[test]
    fn caches_are_kept_per_builder_and_per_branch_when_asked() {
        let on_main = [("BURST_BRANCH".to_owned(), "feature/x".to_owned())].into();
        let none = Default::default();
        assert_eq!(cache_scope("web", false, &on_main), "web");
        assert_eq!(cache_scope("web", true, &on_main), "web@feature/x");
        // A build without a branch shares the builder's caches.
        assert_eq!(cache_scope("web", true, &none), "web");
    }
}
