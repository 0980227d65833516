//! Graceful shutdown: no new builds, running ones get the grace period,
//! then every worker burst launched is terminated.

use tokio::sync::oneshot;
use tokio::time::Instant;

use super::actor::{Scheduler, ShutdownState};
use super::worker::WorkerState;
use crate::model::{now_millis, AttemptState, BuildState};

impl Scheduler {
    pub(super) fn begin_shutdown(&mut self, reply: oneshot::Sender<()>, now: Instant) {
        match &mut self.shutdown {
            Some(s) => s.waiters.push(reply),
            None => {
                tracing::info!(grace = ?self.settings.shutdown_grace, "shutting down: no new builds");
                self.shutdown = Some(ShutdownState {
                    deadline: now + self.settings.shutdown_grace,
                    waiters: vec![reply],
                });
            }
        }
    }

    pub(super) async fn reconcile_shutdown(&mut self, now: Instant) {
        let Some(deadline) = self.shutdown.as_ref().map(|s| s.deadline) else {
            return;
        };
        let grace_over = now >= deadline;
        let ids: Vec<(String, WorkerState, Option<i64>)> = self
            .workers
            .values()
            .map(|w| (w.id.clone(), w.state, w.build))
            .collect();
        for (id, state, build) in ids {
            match state {
                WorkerState::Terminating => {}
                WorkerState::Busy if !grace_over => {}
                _ => {
                    if let Some(build) = build {
                        self.cancel_for_shutdown(build).await;
                    }
                    self.terminate(&id, "master shutting down").await;
                }
            }
        }
    }

    /// The grace period ran out with the build still running.
    async fn cancel_for_shutdown(&mut self, id: i64) {
        let Some(run) = self.running.remove(&id) else {
            return;
        };
        self.logs
            .close_step(crate::logs::StepRunId {
                build: id,
                attempt: run.attempt,
                index: run.step,
            })
            .await;
        if let Some(build) = self.builds.get_mut(&id) {
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
        self.persist_build(id).await;
    }

    /// Shutdown is complete once every worker is gone; waiters are told.
    pub(super) fn shutdown_complete(&mut self) -> bool {
        if self.shutdown.is_none() || !self.workers.is_empty() {
            return false;
        }
        if let Some(s) = self.shutdown.take() {
            for w in s.waiters {
                let _ = w.send(());
            }
        }
        true
    }
}
