//! Admitting a worker's session: who it is, whether its token is right, and
//! what happens when its session ends. A worker that comes back (after a
//! broken stream, or after a restart of the master) goes on with its step.

use burst_proto::{
    master_message, CancelStep, Hello, MasterMessage, Refused, Welcome, PROTOCOL_VERSION,
};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::actor::Scheduler;
use super::commit::OnFail;
use super::tokens::{self, TokenHash};
use super::worker::{Session, WorkerState};
use crate::logs::session_owner;
use crate::model::{InstanceState, LostReason};

/// A hello that passed the checks, before its `Welcome` is sent.
struct Admitted {
    resume: String,
}

impl Scheduler {
    pub(super) async fn hello(
        &mut self,
        hello: Hello,
        tx: mpsc::Sender<Box<MasterMessage>>,
        now: Instant,
    ) -> Result<u64, Refused> {
        let first = self
            .state
            .workers
            .get(&hello.worker_id)
            .is_some_and(|w| w.ledger.connected_at.is_none());
        let admitted = match self.admit(&hello) {
            Ok(admitted) => admitted,
            Err(refused) => {
                tracing::warn!(worker = %hello.worker_id, reason = %refused.reason, "refused a worker session");
                return Err(refused);
            }
        };
        // Persist, then act: the hash of the new resume token is saved before
        // the worker can hold it, so a restarted master still knows it.
        self.persist_worker(&hello.worker_id).await;
        let session = self.welcome(&hello, admitted, tx, now)?;
        tracing::info!(worker = %hello.worker_id, os = ?hello.platform.as_ref().map(|p| &p.os), "worker connected");
        if let Some(w) = self.state.workers.get(&hello.worker_id).filter(|_| first) {
            self.metrics.worker_connected(&w.ledger);
        }
        self.persist_worker(&hello.worker_id).await;
        self.resume_step(&hello, now).await;
        Ok(session)
    }

    /// Checks the hello and rotates the resume token (in memory and in the
    /// ledger row, which the caller saves).
    fn admit(&mut self, hello: &Hello) -> Result<Admitted, Refused> {
        let refuse = |reason: String| {
            Err(Refused {
                reason,
                fatal: true,
            })
        };
        if hello.protocol_version != PROTOCOL_VERSION {
            return refuse(format!(
                "incompatible protocol version {}: this master speaks version {PROTOCOL_VERSION}",
                hello.protocol_version
            ));
        }
        let Some(worker) = self.state.workers.get_mut(&hello.worker_id) else {
            return refuse(format!("unknown worker id {:?}", hello.worker_id));
        };
        let resuming = worker.resume_token.is_some();
        let known = |hash: &Option<TokenHash>| {
            hash.as_ref()
                .is_some_and(|h| tokens::matches(&hello.token, h))
        };
        let resumes = resuming && (known(&worker.resume_token) || known(&worker.resume_prev));
        // A connected worker may take over its own session with its resume
        // token (its old stream is half-open); nobody else gets in.
        let open = match worker.state {
            WorkerState::Launching | WorkerState::Connecting | WorkerState::Reconnecting => true,
            WorkerState::Idle | WorkerState::Busy => resumes,
            WorkerState::Terminating => false,
        };
        if !open {
            return refuse(format!(
                "worker {} is {} and takes no new session",
                worker.id,
                worker.state.as_str()
            ));
        }
        let ok = if resuming {
            resumes
        } else {
            tokens::matches(&hello.token, &worker.launch_token)
        };
        if !ok {
            return refuse(
                match (
                    resuming,
                    tokens::matches(&hello.token, &worker.launch_token),
                ) {
                    (false, _) => "wrong launch token",
                    (true, true) => "launch token already used",
                    (true, false) => "wrong resume token",
                }
                .into(),
            );
        }
        let resume = tokens::new_token();
        let presented = tokens::hash(&hello.token);
        // In memory the launch token stays spent; the ledger keeps it as the
        // previous token, for a master that dies before this Welcome leaves.
        worker.resume_prev = resuming.then_some(presented);
        worker.resume_token = Some(tokens::hash(&resume));
        worker.ledger.resume_prev_hash = Some(tokens::to_hex(&presented));
        worker.ledger.resume_hash = worker.resume_token.as_ref().map(tokens::to_hex);
        Ok(Admitted { resume })
    }

    /// Sends the `Welcome` (first on the session, before any step) and
    /// takes the session.
    fn welcome(
        &mut self,
        hello: &Hello,
        admitted: Admitted,
        tx: mpsc::Sender<Box<MasterMessage>>,
        now: Instant,
    ) -> Result<u64, Refused> {
        let session = self.state.next_session;
        let owner = session_owner(&hello.worker_id, session);
        let lease = self.state.settings.step_lease;
        let mut welcome = Welcome {
            resume_token: admitted.resume,
            heartbeat_interval_ms: self.state.settings.heartbeat_interval.as_millis() as u64,
            master_id: self.state.settings.master_id.clone(),
            step_lease_ms: u64::try_from(lease.as_millis()).unwrap_or(u64::MAX),
            resume_offsets: Default::default(),
        };
        let build = self
            .state
            .workers
            .get(&hello.worker_id)
            .and_then(|w| w.build);
        if let Some(run) = build.and_then(|b| Some((b, self.state.running.get(&b)?))) {
            let (id, run) = run;
            let step = run.step_id(id);
            // From here only the new session may add to the step's log.
            let offset = self.logs.take_over(step, &owner).unwrap_or(0);
            welcome.resume_offsets.insert(step.to_string(), offset);
        }
        let sent = tx.try_send(Box::new(MasterMessage {
            msg: Some(master_message::Msg::Welcome(welcome)),
        }));
        if sent.is_err() {
            return Err(Refused {
                reason: "session closed during hello".into(),
                fatal: false,
            });
        }
        self.state.next_session += 1;
        let Some(worker) = self.state.workers.get_mut(&hello.worker_id) else {
            return Err(Refused {
                reason: "the worker left during hello".into(),
                fatal: false,
            });
        };
        worker.session = Some(Session { id: session, tx });
        worker.last_seen = now;
        worker.lease_until = now + lease;
        worker.readmitted = false;
        worker.deadline = None;
        worker.os = hello.platform.as_ref().map(|p| p.os.clone());
        if !hello.labels.is_empty() {
            worker.labels = hello.labels.clone();
        }
        let state = if worker.build.is_some() {
            WorkerState::Busy
        } else {
            WorkerState::Idle
        };
        if worker.state != state {
            worker.set_state(state, now);
        }
        worker.ledger.state = InstanceState::Connected;
        worker
            .ledger
            .connected_at
            .get_or_insert_with(|| self.state.settings.clock.millis(now));
        let pool = worker.pool;
        self.state.pools[pool].record_success();
        Ok(session)
    }

    /// A worker came back with a build in flight: it goes on as the same
    /// attempt. The step it no longer has is sent again if it never got it
    /// (nothing of it arrived), and lost otherwise.
    async fn resume_step(&mut self, hello: &Hello, now: Instant) {
        let Some(worker) = self.state.workers.get(&hello.worker_id) else {
            return;
        };
        let Some(session) = worker.session.as_ref().map(|s| s.id) else {
            return;
        };
        let Some(id) = worker.build else {
            return;
        };
        let Some(run) = self.state.running.get_mut(&id) else {
            return;
        };
        run.session = session;
        run.restarted = false;
        let step = run.step_id(id).to_string();
        let cancel = run.cancel_requested;
        let has = hello.running_steps.contains(&step) || hello.finished_steps.contains(&step);
        // The same owner `welcome` gave the log: this only reads the offset.
        let owner = session_owner(&hello.worker_id, session);
        let offset = self.logs.take_over(run.step_id(id), &owner).unwrap_or(0);
        let index = run.step;
        if has {
            tracing::info!(build = id, step = %step, offset, "worker resumed its step");
            if cancel {
                let cancel = master_message::Msg::Cancel(CancelStep { step_run_id: step });
                self.defer_send(
                    &hello.worker_id,
                    MasterMessage { msg: Some(cancel) },
                    OnFail::Ignore,
                );
            }
        } else if offset == 0 {
            tracing::info!(build = id, step = %step, "worker never got its step; sending it again");
            self.run_step(id, index).await;
        } else {
            let reason = LostReason::Disconnected {
                worker: hello.worker_id.clone(),
            };
            self.lose_build(id, &reason).await;
            if let Some(w) = self.state.workers.get_mut(&hello.worker_id) {
                w.set_state(WorkerState::Idle, now);
            }
        }
    }

    /// The session ended. The worker gets the heartbeat window to come back
    /// with its resume token; its build waits (its step goes on under the
    /// step lease).
    pub(super) async fn disconnected(&mut self, worker_id: &str, session: u64, now: Instant) {
        let Some(worker) = self.state.workers.get(worker_id) else {
            return;
        };
        if worker.session.as_ref().map(|s| s.id) != Some(session) {
            return;
        }
        self.drop_session(worker_id, now);
    }

    /// Forgets the worker's session (broken or unusable) and waits for it to
    /// reconnect.
    pub(super) fn drop_session(&mut self, worker_id: &str, now: Instant) {
        let window = self.state.settings.heartbeat_window();
        let Some(worker) = self.state.workers.get_mut(worker_id) else {
            return;
        };
        worker.session = None;
        if matches!(
            worker.state,
            WorkerState::Terminating | WorkerState::Reconnecting
        ) {
            return;
        }
        tracing::warn!(worker = worker_id, build = ?worker.build, "worker disconnected; waiting for it to come back");
        worker.set_state(WorkerState::Reconnecting, now);
        worker.deadline = Some(now + window);
        worker.next_health = now;
    }
}
