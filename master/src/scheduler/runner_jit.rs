//! Runner steps (`StepSpec::runner`): a GitHub Actions runner's
//! just-in-time config is asked for when the step is about to be sent, by
//! a task (GitHub may be slow or rate-limit us; the actor never waits on
//! it), and goes out in the step's `stdin` once it is here. The config is
//! a secret: it is kept only in memory until it is sent, never stored or
//! logged.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use burst_proto::StepFinished;
use tokio::time::Instant;

use super::actor::Scheduler;
use super::events::Event;
use crate::logs::StepRunId;
use crate::model::{BuildId, RunnerStep};

/// Where JIT configs come from (the GitHub runner manager; a fake in tests).
#[async_trait]
pub trait RunnerConfigs: Send + Sync + 'static {
    /// A config for a runner that will run on `worker_id` for `build`.
    /// Retries what can be retried; an error is final and fails the step.
    async fn jit_config(
        &self,
        runner: &RunnerStep,
        build: BuildId,
        worker_id: &str,
    ) -> Result<JitConfig, String>;
}

/// A JIT config. `Debug` never shows it.
pub struct JitConfig(pub String);

impl std::fmt::Debug for JitConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "JitConfig({} bytes)", self.0.len())
    }
}

/// Steps waiting for their config, and configs waiting for their step.
#[derive(Default)]
pub struct JitState {
    source: Option<Arc<dyn RunnerConfigs>>,
    pending: HashSet<StepRunId>,
    ready: HashMap<StepRunId, JitConfig>,
}

/// What `run_step` does with a runner step.
pub(super) enum JitTake {
    /// Send it with this stdin.
    Send(Vec<u8>),
    /// Asked for (now or earlier); the step goes when the config is here.
    Wait,
}

impl Scheduler {
    /// Runner steps get their JIT configs from `source`.
    pub fn with_runner_configs(mut self, source: Arc<dyn RunnerConfigs>) -> Self {
        self.jit.source = Some(source);
        self
    }

    /// The config for runner step `step` if it is here; otherwise asks
    /// for it once.
    pub(super) fn take_jit(
        &mut self,
        step: StepRunId,
        runner: &RunnerStep,
        worker_id: &str,
    ) -> JitTake {
        if let Some(config) = self.jit.ready.remove(&step) {
            return JitTake::Send(config.0.into_bytes());
        }
        if !self.jit.pending.insert(step) {
            return JitTake::Wait;
        }
        let tx = self.events_tx.clone();
        let worker_id = worker_id.to_owned();
        let source = self.jit.source.clone();
        let runner = runner.clone();
        tracing::info!(step = %step, worker = %worker_id, "asking for a GitHub runner config");
        tokio::spawn(async move {
            let result = match source {
                Some(source) => source.jit_config(&runner, step.build, &worker_id).await,
                None => {
                    Err("this master has no [github] section to get a runner config from".into())
                }
            };
            let _ = tx
                .send(Event::Jit {
                    step,
                    worker_id,
                    result,
                })
                .await;
        });
        JitTake::Wait
    }

    /// A step waiting for its config is over before it was sent (a
    /// cancel): true if `step` was one.
    pub(super) fn forget_jit(&mut self, step: StepRunId) -> bool {
        self.jit.ready.remove(&step);
        self.jit.pending.remove(&step)
    }

    /// A config task ended: the step goes, or fails with the reason, if it
    /// is still this worker's current step.
    pub(super) async fn on_jit(
        &mut self,
        step: StepRunId,
        worker_id: &str,
        result: Result<JitConfig, String>,
        now: Instant,
    ) {
        if !self.jit.pending.remove(&step) {
            // Cancelled meanwhile; an unused registration is removed by
            // the manager's reconcile.
            return;
        }
        let Some(run) = self.state.running.get(&step.build) else {
            return;
        };
        let current = run.worker_id == worker_id
            && run.attempt == step.attempt
            && run.step == step.index
            && run.fence.is_none();
        if !current {
            return;
        }
        let session = run.session;
        match result {
            Ok(config) => {
                self.jit.ready.insert(step, config);
                self.run_step(step.build, step.index).await;
            }
            Err(why) => {
                tracing::warn!(step = %step, worker = worker_id, "failed to get a GitHub runner config: {why}");
                let finished = StepFinished {
                    step_run_id: step.to_string(),
                    error: format!("failed to get a GitHub runner config: {why}"),
                    ..Default::default()
                };
                self.step_finished(worker_id, session, finished, now).await;
            }
        }
    }
}
