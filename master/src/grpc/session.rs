use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use burst_common::error_chain::Chain;
use burst_proto::worker_service_server::WorkerService;
use burst_proto::{master_message, worker_message, Heartbeat, MasterMessage, WorkerMessage};
use futures::Stream;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status, Streaming};

use crate::logs::{LogStore, StepRunId};
use crate::scheduler::SchedulerHandle;

/// How long a new stream may take to say hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// Output proves a worker alive; the scheduler hears of it this often.
const LIVENESS_EVERY: Duration = Duration::from_secs(1);
/// Messages the scheduler may queue for one worker.
const OUTBOUND_QUEUE: usize = 64;

pub struct WorkerGrpc {
    scheduler: SchedulerHandle,
    logs: Arc<LogStore>,
}

impl WorkerGrpc {
    pub fn new(scheduler: SchedulerHandle, logs: Arc<LogStore>) -> Self {
        Self { scheduler, logs }
    }
}

type Outbound = Pin<Box<dyn Stream<Item = Result<MasterMessage, Status>> + Send>>;

#[tonic::async_trait]
impl WorkerService for WorkerGrpc {
    type SessionStream = Outbound;

    async fn session(
        &self,
        request: Request<Streaming<WorkerMessage>>,
    ) -> Result<Response<Outbound>, Status> {
        let peer = request
            .remote_addr()
            .map(|a| a.to_string())
            .unwrap_or_else(|| "unknown".into());
        let mut inbound = request.into_inner();
        let hello = match tokio::time::timeout(HELLO_TIMEOUT, inbound.message()).await {
            Ok(Ok(Some(WorkerMessage {
                msg: Some(worker_message::Msg::Hello(hello)),
            }))) => hello,
            Ok(Ok(_)) => {
                tracing::warn!(%peer, "refused a session that did not start with a hello");
                return Err(Status::invalid_argument(
                    "the first message of a session must be a hello",
                ));
            }
            Ok(Err(status)) => return Err(status),
            Err(_) => {
                tracing::warn!(%peer, "refused a session that sent no hello in time");
                return Err(Status::deadline_exceeded("no hello within 10s"));
            }
        };
        let worker_id = hello.worker_id.clone();
        let (tx, rx) = mpsc::channel(OUTBOUND_QUEUE);
        let outbound: Outbound = Box::pin(ReceiverStream::new(rx).map(Ok));
        match self.scheduler.hello(hello, tx.clone()).await {
            Ok(session) => {
                // Only the scheduler's copy keeps the stream open from here.
                drop(tx);
                let pump = Pump {
                    scheduler: self.scheduler.clone(),
                    logs: self.logs.clone(),
                    worker_id,
                    session,
                };
                tokio::spawn(pump.run(inbound));
            }
            Err(refused) => {
                tracing::warn!(%peer, worker = %worker_id, reason = %refused.reason, "worker refused");
                let _ = tx.try_send(MasterMessage {
                    msg: Some(master_message::Msg::Refused(refused)),
                });
            }
        }
        Ok(Response::new(outbound))
    }
}

/// Reads one session's messages: output goes straight to the log store
/// (awaiting each write is the master's half of backpressure), the rest to
/// the scheduler.
struct Pump {
    scheduler: SchedulerHandle,
    logs: Arc<LogStore>,
    worker_id: String,
    session: u64,
}

impl Pump {
    async fn run(self, mut inbound: Streaming<WorkerMessage>) {
        let mut last_liveness = Instant::now();
        loop {
            let msg = match inbound.message().await {
                Ok(Some(WorkerMessage { msg: Some(msg) })) => msg,
                Ok(Some(WorkerMessage { msg: None })) => {
                    tracing::warn!(worker = %self.worker_id, "refused an empty message");
                    continue;
                }
                Ok(None) => break,
                Err(status) => {
                    tracing::debug!(worker = %self.worker_id, %status, "session stream failed");
                    break;
                }
            };
            match msg {
                worker_message::Msg::Output(out) => {
                    self.store_output(&out.step_run_id, out.offset, &out.data)
                        .await;
                    if last_liveness.elapsed() >= LIVENESS_EVERY {
                        last_liveness = Instant::now();
                        let beat = worker_message::Msg::Heartbeat(Heartbeat::default());
                        self.scheduler
                            .from_worker(&self.worker_id, self.session, beat)
                            .await;
                    }
                }
                worker_message::Msg::Hello(_) => {
                    tracing::warn!(worker = %self.worker_id, "refused a second hello on one session");
                }
                other => {
                    self.scheduler
                        .from_worker(&self.worker_id, self.session, other)
                        .await
                }
            }
        }
        self.scheduler
            .disconnected(&self.worker_id, self.session)
            .await;
    }

    async fn store_output(&self, step: &str, offset: u64, data: &[u8]) {
        let result = match step.parse::<StepRunId>() {
            Ok(id) => self
                .logs
                .append(&self.worker_id, id, offset, data)
                .await
                .map(|_| ())
                .map_err(|e| Chain(&e).to_string()),
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            tracing::warn!(worker = %self.worker_id, error = %e, "refused step output");
        }
    }
}
