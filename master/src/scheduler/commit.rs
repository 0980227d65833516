//! Group commit. Build writes made while the actor handles a turn's events
//! (and the decisions that follow) are saved together, in one store
//! transaction, at the end of the turn. What depends on them waits in the
//! outbox until then: messages to workers (a step sent, a result
//! acknowledged, a cancel) and replies to callers. So "persist, then act"
//! holds as before, at the cost of one commit per turn instead of one per
//! change.
//!
//! A turn's writes the store refuses go to `Unsaved`, exactly as a single
//! write would; the outbox is released either way, as single writes were
//! (the scheduler keeps what was refused and saves it once the store works).
//! Starting an attempt is the exception, saved on its own before the step is
//! sent (`start_builds`): a start the store refuses leaves the build queued.

use std::collections::{BTreeMap, BTreeSet};

use burst_common::error_chain::Chain;
use burst_proto::MasterMessage;
use tokio::time::Instant;

use super::actor::Scheduler;
use crate::model::{Build, BuildId};

/// What one turn changed and what waits for it to be saved.
#[derive(Default)]
pub(super) struct Pending {
    /// Builds still held in `State::builds` whose newest version is unsaved.
    live: BTreeSet<BuildId>,
    /// Finished builds, out of `State::builds` already, until they are saved.
    finished: BTreeMap<BuildId, Build>,
    outbox: Vec<Deferred>,
}

impl Pending {
    pub(super) fn is_empty(&self) -> bool {
        self.live.is_empty() && self.finished.is_empty() && self.outbox.is_empty()
    }
}

enum Deferred {
    /// A message for the session the worker has now; dropped if the worker
    /// has another session by the time it goes out (its hello resent what
    /// was needed).
    Send {
        worker: String,
        session: Option<u64>,
        // Boxed: a RunStep is large, a reply is a pointer.
        msg: Box<MasterMessage>,
        on_fail: OnFail,
    },
    Reply(Box<dyn FnOnce() + Send>),
}

/// What a message that cannot be queued on its session leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum OnFail {
    /// Nothing: the worker learns it some other way.
    Ignore,
    /// The session is broken: the worker comes back without the message,
    /// and `hello` gives it what it still needs.
    DropSession,
}

impl Scheduler {
    /// Marks a build changed; it is saved at the end of the turn. A
    /// finished build leaves the scheduler's state now (it never runs
    /// again) and waits here until it is saved.
    pub(super) fn persist_build(&mut self, id: BuildId) {
        let Some(build) = self.state.builds.get(&id) else {
            return;
        };
        if !build.state.is_finished() {
            self.pending.live.insert(id);
            return;
        }
        self.metrics.build_finished(build);
        self.pending.live.remove(&id);
        if let Some(build) = self.state.builds.remove(&id) {
            self.pending.finished.insert(id, build);
        }
        self.state.queue.retain(|b| *b != id);
    }

    /// Queues a message for a worker's current session, to go out once
    /// this turn's writes are saved.
    pub(super) fn defer_send(&mut self, worker_id: &str, msg: MasterMessage, on_fail: OnFail) {
        let session = self
            .state
            .workers
            .get(worker_id)
            .and_then(|w| w.session.as_ref().map(|s| s.id));
        self.pending.outbox.push(Deferred::Send {
            worker: worker_id.to_owned(),
            session,
            msg: Box::new(msg),
            on_fail,
        });
    }

    /// Runs `reply` once this turn's writes are saved.
    pub(super) fn defer_reply(&mut self, reply: impl FnOnce() + Send + 'static) {
        self.pending.outbox.push(Deferred::Reply(Box::new(reply)));
    }

    /// Saves the turn's builds in one transaction, then lets out what
    /// waited for them.
    pub(super) async fn commit(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let pending = std::mem::take(&mut self.pending);
        let ids: Vec<BuildId> = pending
            .live
            .iter()
            .chain(pending.finished.keys())
            .copied()
            .collect();
        let result = {
            let builds: Vec<&Build> = pending
                .live
                .iter()
                .filter_map(|id| self.state.builds.get(id))
                .chain(pending.finished.values())
                .collect();
            self.store.save_builds(&builds).await
        };
        match result {
            Ok(()) => {
                for id in &ids {
                    self.unsaved.builds.remove(id);
                }
                // Saved finished, they never run again: their logs are final.
                for id in pending.finished.keys() {
                    self.logs.seal_build(*id);
                }
            }
            Err(e) if e.is_fault() => {
                tracing::error!(builds = ?ids, error = %Chain(&e), "failed to save builds; keeping them to save once the store works");
                for id in &pending.live {
                    if let Some(build) = self.state.builds.get(id) {
                        self.unsaved.builds.insert(*id, build.clone());
                    }
                }
                self.unsaved.builds.extend(pending.finished);
                self.store_failed(&e);
            }
            // One build the store refuses as such (not a fault of the store)
            // must not hold back the others: each is saved on its own.
            Err(_) => {
                let live: Vec<BuildId> = pending.live.iter().copied().collect();
                for id in live {
                    if let Some(build) = self.state.builds.get(&id).cloned() {
                        self.save_alone(build).await;
                    }
                }
                for (_, build) in pending.finished {
                    self.save_alone(build).await;
                }
            }
        }
        for id in ids {
            self.logs.notify(id);
        }
        self.release(pending.outbox);
    }

    async fn save_alone(&mut self, build: Build) {
        let id = build.id;
        match self.store.save_build(&build).await {
            Ok(()) => {
                self.unsaved.builds.remove(&id);
                if build.state.is_finished() {
                    self.logs.seal_build(id);
                }
            }
            Err(e) if e.is_fault() => {
                tracing::error!(build = id, error = %Chain(&e), "failed to save build; keeping it to save once the store works");
                self.unsaved.builds.insert(id, build);
                self.store_failed(&e);
            }
            Err(e) => tracing::error!(build = id, error = %Chain(&e), "failed to save build"),
        }
    }

    fn release(&mut self, outbox: Vec<Deferred>) {
        for deferred in outbox {
            match deferred {
                Deferred::Reply(reply) => reply(),
                Deferred::Send {
                    worker,
                    session,
                    msg,
                    on_fail,
                } => {
                    let dispatch =
                        matches!(msg.msg, Some(burst_proto::master_message::Msg::Run(_)));
                    let Some(w) = self.state.workers.get(&worker) else {
                        continue;
                    };
                    // A session that changed since: its hello resent what
                    // the worker still needed.
                    if w.session.as_ref().map(|s| s.id) != session {
                        continue;
                    }
                    let sent = w.send(*msg);
                    if dispatch {
                        crate::failpoint::crash_point(crate::failpoint::AFTER_DISPATCH);
                    }
                    if !sent && on_fail == OnFail::DropSession {
                        tracing::warn!(worker = %worker, "failed to send to a worker; waiting for it to reconnect");
                        self.drop_session(&worker, Instant::now());
                    }
                }
            }
        }
    }
}
