//! The steps this worker runs right now. They outlive a session: a step goes
//! on while the master is away, under its step lease.

use std::collections::HashMap;
use std::time::Duration;

use burst_proto::RunStep;
use tokio::sync::mpsc;

use tokio::task::JoinSet;

use crate::step::{self, StepContext, Stop, StopSignal};

pub(crate) struct RunningSteps {
    ctx: StepContext,
    /// Stop handles by step run id. An entry goes once its task has dropped
    /// its end, i.e. after its `StepFinished` was journaled.
    stops: HashMap<String, mpsc::Sender<Stop>>,
    /// Step tasks, plus the small tasks that send rejections.
    tasks: JoinSet<()>,
}

impl RunningSteps {
    pub(crate) fn new(ctx: StepContext) -> Self {
        Self {
            ctx,
            stops: HashMap::new(),
            tasks: JoinSet::new(),
        }
    }

    /// Starts `run` unless a step with its id is already running or its
    /// result is still waiting for the master.
    pub(crate) fn start(&mut self, run: RunStep) {
        self.prune();
        if self.stops.contains_key(&run.step_run_id) || !self.ctx.journal.open(&run.step_run_id) {
            tracing::warn!(step = %run.step_run_id, "ignoring RunStep for a step that is already running or done");
            return;
        }
        // Room for a cancel followed by a shutdown.
        let (tx, rx) = mpsc::channel(2);
        self.stops.insert(run.step_run_id.clone(), tx);
        let stop = StopSignal::new(rx, self.ctx.lease.clone());
        self.tasks.spawn(step::run(run, self.ctx.clone(), stop));
    }

    /// Answers a step that will not run with a `StepFinished` carrying `error`.
    pub(crate) fn reject(&mut self, step_run_id: String, error: String) {
        tracing::warn!(step = %step_run_id, "rejecting step: {error}");
        if self.ctx.journal.open(&step_run_id) {
            self.ctx.journal.finish(step::rejected(step_run_id, error));
        }
    }

    /// The master no longer wants the step: kill it, report nothing.
    pub(crate) fn supersede(&mut self, step_run_id: &str) {
        if self.stops.remove(step_run_id).is_some() {
            tracing::warn!(step = %step_run_id, "the master no longer wants this step; killing it");
        }
    }

    /// Asks one step to stop; false if it is not running.
    pub(crate) fn stop(&mut self, step_run_id: &str, why: Stop) -> bool {
        self.prune();
        match self.stops.get(step_run_id) {
            Some(tx) => {
                let _ = tx.try_send(why);
                true
            }
            None => false,
        }
    }

    pub(crate) fn stop_all(&mut self, why: Stop) {
        for tx in self.stops.values() {
            let _ = tx.try_send(why);
        }
    }

    /// Kills every step without a report, by dropping its stop handle
    /// (which, unlike a message, cannot be crowded out by earlier cancels).
    pub(crate) fn lose_all(&mut self) {
        self.stops.clear();
    }

    /// Ids of the running steps.
    pub(crate) fn ids(&mut self) -> Vec<String> {
        self.prune();
        let mut ids: Vec<String> = self.stops.keys().cloned().collect();
        ids.sort();
        ids
    }

    pub(crate) fn len(&mut self) -> usize {
        self.prune();
        self.stops.len()
    }

    /// Whether any step task is still going.
    pub(crate) fn has_tasks(&self) -> bool {
        !self.tasks.is_empty()
    }

    /// Waits for one task to end.
    pub(crate) async fn next_done(&mut self) {
        if let Some(Err(e)) = self.tasks.join_next().await {
            tracing::error!("step task failed: {e}");
        }
        self.prune();
    }

    /// Waits up to `bound` for every task to end, then aborts the rest
    /// (which kills their processes).
    pub(crate) async fn wait_all(&mut self, bound: Duration) {
        let all = async {
            while self.has_tasks() {
                self.next_done().await;
            }
        };
        if tokio::time::timeout(bound, all).await.is_err() {
            tracing::warn!("steps did not stop within {bound:?}; aborting them");
            self.tasks.abort_all();
            while self.tasks.join_next().await.is_some() {}
        }
        self.stops.clear();
    }

    fn prune(&mut self) {
        self.stops.retain(|_, tx| !tx.is_closed());
    }
}
