//! Admitting a worker's session: who it is, whether its token is right, and
//! what happens when its session ends.

use burst_proto::{master_message, Hello, MasterMessage, Refused, Welcome, PROTOCOL_VERSION};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::actor::Scheduler;
use super::tokens;
use super::worker::{Session, WorkerState};
use crate::model::{now_millis, InstanceState, LostReason};

impl Scheduler {
    pub(super) async fn hello(
        &mut self,
        hello: Hello,
        tx: mpsc::Sender<MasterMessage>,
        now: Instant,
    ) -> Result<u64, Refused> {
        let first = self
            .state
            .workers
            .get(&hello.worker_id)
            .is_some_and(|w| w.ledger.connected_at.is_none());
        let result = self.admit(&hello, tx, now);
        match &result {
            Ok(_) => {
                tracing::info!(worker = %hello.worker_id, os = ?hello.platform.as_ref().map(|p| &p.os), "worker connected");
                if let Some(w) = self.state.workers.get(&hello.worker_id).filter(|_| first) {
                    self.metrics.worker_connected(&w.ledger);
                }
                self.persist_worker(&hello.worker_id).await;
            }
            Err(refused) => {
                tracing::warn!(worker = %hello.worker_id, reason = %refused.reason, "refused a worker session");
            }
        }
        result
    }

    fn admit(
        &mut self,
        hello: &Hello,
        tx: mpsc::Sender<MasterMessage>,
        now: Instant,
    ) -> Result<u64, Refused> {
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
        if !matches!(
            worker.state,
            WorkerState::Launching | WorkerState::Connecting | WorkerState::Reconnecting
        ) {
            return refuse(format!(
                "worker {} is {} and takes no new session",
                worker.id,
                worker.state.as_str()
            ));
        }
        match worker.resume_token {
            None if !tokens::matches(&hello.token, &worker.launch_token) => {
                return refuse("wrong launch token".into());
            }
            Some(_) if tokens::matches(&hello.token, &worker.launch_token) => {
                return refuse("launch token already used".into());
            }
            Some(resume) if !tokens::matches(&hello.token, &resume) => {
                return refuse("wrong resume token".into());
            }
            _ => {}
        }
        let resume = tokens::new_token();
        let welcome = Welcome {
            resume_token: resume.clone(),
            heartbeat_interval_ms: self.state.settings.heartbeat_interval.as_millis() as u64,
            master_id: self.state.settings.master_id.clone(),
        };
        // The welcome goes first on the session, before any step.
        if tx
            .try_send(MasterMessage {
                msg: Some(master_message::Msg::Welcome(welcome)),
            })
            .is_err()
        {
            return Err(Refused {
                reason: "session closed during hello".into(),
                fatal: false,
            });
        }
        let session = self.state.next_session;
        self.state.next_session += 1;
        worker.resume_token = Some(tokens::hash(&resume));
        worker.session = Some(Session { id: session, tx });
        worker.last_seen = now;
        worker.deadline = None;
        worker.os = hello.platform.as_ref().map(|p| p.os.clone());
        if !hello.labels.is_empty() {
            worker.labels = hello.labels.clone();
        }
        worker.set_state(WorkerState::Idle, now);
        worker.ledger.state = InstanceState::Connected;
        worker.ledger.connected_at.get_or_insert_with(now_millis);
        let pool = worker.pool;
        self.state.pools[pool].record_success();
        Ok(session)
    }

    /// The session ended. Its build (if any) is lost; the worker gets the
    /// heartbeat window to come back with its resume token.
    pub(super) async fn disconnected(&mut self, worker_id: &str, session: u64, now: Instant) {
        let Some(worker) = self.state.workers.get_mut(worker_id) else {
            return;
        };
        if worker.session.as_ref().map(|s| s.id) != Some(session) {
            return;
        }
        worker.session = None;
        if worker.state == WorkerState::Terminating {
            return;
        }
        tracing::warn!(worker = worker_id, "worker disconnected");
        let build = worker.build;
        worker.set_state(WorkerState::Reconnecting, now);
        worker.deadline = Some(now + self.state.settings.heartbeat_window());
        worker.next_health = now;
        if let Some(build) = build {
            let reason = LostReason::Disconnected {
                worker: worker_id.to_owned(),
            };
            self.lose_build(build, &reason).await;
        }
    }
}
