//! Graceful shutdown: no new builds, running ones get the grace period,
//! then every worker burst launched is terminated (decided in `decide.rs`).

use tokio::sync::oneshot;
use tokio::time::Instant;

use super::actor::Scheduler;
use super::state::ShutdownState;
use crate::model::{now_millis, AttemptState, BuildState};

impl Scheduler {
    pub(super) fn begin_shutdown(&mut self, reply: oneshot::Sender<()>, now: Instant) {
        match &mut self.state.shutdown {
            Some(s) => s.waiters.push(reply),
            None => {
                tracing::info!(grace = ?self.state.settings.shutdown_grace, "shutting down: no new builds");
                self.state.shutdown = Some(ShutdownState {
                    deadline: now + self.state.settings.shutdown_grace,
                    waiters: vec![reply],
                });
            }
        }
    }

    /// The grace period ran out with the build still running.
    pub(super) async fn cancel_for_shutdown(&mut self, id: i64) {
        let Some(run) = self.state.running.remove(&id) else {
            return;
        };
        self.logs
            .close_step(crate::logs::StepRunId {
                build: id,
                attempt: run.attempt,
                index: run.step,
            })
            .await;
        if let Some(build) = self.state.builds.get_mut(&id) {
            let reason = "cancelled: the master shut down before the build finished".to_owned();
            if let Some(attempt) = build.attempts.last_mut() {
                attempt.state = AttemptState::Cancelled;
                attempt.reason = Some(reason.clone());
                attempt.finished_at = Some(now_millis());
            }
            build.state = BuildState::Cancelled;
            build.reason = Some(reason);
            build.finished_at = Some(now_millis());
        }
        self.persist_build(id);
    }

    /// Shutdown is complete once every worker is gone; waiters are told.
    pub(super) fn shutdown_complete(&mut self) -> bool {
        if self.state.shutdown.is_none() || !self.state.workers.is_empty() {
            return false;
        }
        if let Some(s) = self.state.shutdown.take() {
            for w in s.waiters {
                let _ = w.send(());
            }
        }
        true
    }
}
