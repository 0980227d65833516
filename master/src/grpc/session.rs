use std::collections::HashSet;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use burst_common::error_chain::Chain;
use burst_proto::worker_service_server::WorkerService;
use burst_proto::{
    master_message, worker_message, CancelStep, Heartbeat, MasterMessage, OutputStream,
    StepFinished, WorkerMessage,
};
use futures::Stream;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status, Streaming};

use super::hello_limits::{self, for_log, MAX_SHORT_FIELD};
use crate::artifacts::{ArtifactStore, Intake};
use crate::logs::{limit_message, session_owner, LogError, LogStore, Output, StepRunId};
use crate::metrics::Metrics;
use crate::scheduler::SchedulerHandle;

/// How long a new stream may take to say hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// Output proves a worker alive; the scheduler hears of it this often.
const LIVENESS_EVERY: Duration = Duration::from_secs(1);
/// Sessions that have not said hello yet, at once: more are refused, so
/// strangers cannot hold many streams for the hello deadline each.
const MAX_UNAUTHENTICATED: usize = 64;
/// Messages the scheduler may queue for one worker.
const OUTBOUND_QUEUE: usize = 64;

pub struct WorkerGrpc {
    scheduler: SchedulerHandle,
    logs: Arc<LogStore>,
    artifacts: Arc<ArtifactStore>,
    caches: super::caches::CacheService,
    metrics: Arc<Metrics>,
    unauthenticated: Arc<tokio::sync::Semaphore>,
}

impl WorkerGrpc {
    pub fn new(
        scheduler: SchedulerHandle,
        logs: Arc<LogStore>,
        artifacts: Arc<ArtifactStore>,
        caches: super::caches::CacheService,
    ) -> Self {
        Self {
            scheduler,
            logs,
            artifacts,
            metrics: caches.metrics.clone(),
            caches,
            unauthenticated: Arc::new(tokio::sync::Semaphore::new(MAX_UNAUTHENTICATED)),
        }
    }

    /// Counts received output into the daemon's metrics.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.caches.metrics = metrics.clone();
        Self { metrics, ..self }
    }
}

type Outbound = Pin<Box<dyn Stream<Item = Result<MasterMessage, Status>> + Send>>;

#[tonic::async_trait]
impl WorkerService for WorkerGrpc {
    type SessionStream = Outbound;
    type FetchCacheStream = super::caches::CacheStream;

    async fn fetch_cache(
        &self,
        request: Request<burst_proto::FetchCacheRequest>,
    ) -> Result<Response<Self::FetchCacheStream>, Status> {
        self.caches
            .fetch(request.into_inner())
            .await
            .map(Response::new)
    }

    async fn put_cache(
        &self,
        request: Request<Streaming<burst_proto::CacheData>>,
    ) -> Result<Response<burst_proto::PutCacheReply>, Status> {
        self.caches
            .put(request.into_inner())
            .await
            .map(Response::new)
    }

    async fn session(
        &self,
        request: Request<Streaming<WorkerMessage>>,
    ) -> Result<Response<Outbound>, Status> {
        let peer = request
            .remote_addr()
            .map(|a| a.to_string())
            .unwrap_or_else(|| "unknown".into());
        let Ok(pending) = self.unauthenticated.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "refused a session: too many sessions are waiting for a hello");
            return Err(Status::resource_exhausted(
                "too many sessions without a hello",
            ));
        };
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
            Ok(Err(status)) => {
                // Oversized messages end here (the service's decoding limit).
                tracing::warn!(%peer, status = %for_log(status.message()), "refused a session whose first message was unreadable");
                return Err(status);
            }
            Err(_) => {
                tracing::warn!(%peer, "refused a session that sent no hello in time");
                return Err(Status::deadline_exceeded("no hello within 10s"));
            }
        };
        drop(pending);
        if let Some(reason) = hello_limits::check(&hello) {
            tracing::warn!(%peer, worker = %for_log(&hello.worker_id), %reason, "refused a hello");
            return Err(Status::invalid_argument(format!("hello refused: {reason}")));
        }
        let worker_id = hello.worker_id.clone();
        let (tx, rx) = mpsc::channel::<Box<MasterMessage>>(OUTBOUND_QUEUE);
        let outbound: Outbound = Box::pin(ReceiverStream::new(rx).map(|m| Ok(*m)));
        match self.scheduler.hello(hello, tx.clone()).await {
            Ok(session) => {
                // Only the scheduler's copy keeps the stream open from here;
                // the pump's weak one only sends cancels for capped steps.
                let outbound = tx.downgrade();
                drop(tx);
                let pump = Pump {
                    scheduler: self.scheduler.clone(),
                    logs: self.logs.clone(),
                    metrics: self.metrics.clone(),
                    worker_id,
                    session,
                    outbound,
                    capped: HashSet::new(),
                    intake: Intake::new(self.artifacts.clone()),
                };
                tokio::spawn(pump.run(inbound));
            }
            Err(refused) => {
                tracing::warn!(%peer, worker = %worker_id, reason = %for_log(&refused.reason), "worker refused");
                let _ = tx.try_send(Box::new(MasterMessage {
                    msg: Some(master_message::Msg::Refused(refused)),
                }));
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
    metrics: Arc<Metrics>,
    worker_id: String,
    session: u64,
    outbound: mpsc::WeakSender<Box<MasterMessage>>,
    /// Steps whose log hit the cap: their result is reported as that failure.
    capped: HashSet<String>,
    /// Artifact uploads; a step whose upload failed fails with the reason.
    intake: Intake,
}

impl Pump {
    async fn run(mut self, mut inbound: Streaming<WorkerMessage>) {
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
                    self.metrics.log_received(out.data.len());
                    let stream = if out.stream() == OutputStream::Stderr {
                        Output::Stderr
                    } else {
                        Output::Stdout
                    };
                    self.store_output(&out.step_run_id, stream, out.offset, &out.data)
                        .await;
                    if last_liveness.elapsed() >= LIVENESS_EVERY {
                        last_liveness = Instant::now();
                        let beat = worker_message::Msg::Heartbeat(Heartbeat::default());
                        self.scheduler
                            .from_worker(&self.worker_id, self.session, beat)
                            .await;
                    }
                }
                worker_message::Msg::Finished(f) if f.step_run_id.len() > MAX_SHORT_FIELD => {
                    tracing::warn!(worker = %self.worker_id, step = %for_log(&f.step_run_id), "refused a result with an oversized step id");
                }
                worker_message::Msg::Artifact(chunk) => self.store_artifact(chunk).await,
                worker_message::Msg::Finished(f) if self.capped.remove(&f.step_run_id) => {
                    // The log cap is the reason shown; the uploads' state goes.
                    let _ = self.intake.finished(&f.step_run_id).await;
                    let f = self.capped_result(f);
                    self.scheduler
                        .from_worker(&self.worker_id, self.session, f)
                        .await
                }
                worker_message::Msg::Finished(mut f) => {
                    if let Some(why) = self.intake.finished(&f.step_run_id).await {
                        f = StepFinished {
                            exit_code: None,
                            signal: None,
                            error: why,
                            ..f
                        };
                    }
                    let f = worker_message::Msg::Finished(f);
                    self.scheduler
                        .from_worker(&self.worker_id, self.session, f)
                        .await
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
        self.intake.end().await;
        self.scheduler
            .disconnected(&self.worker_id, self.session)
            .await;
    }

    /// A piece of an artifact, for a step this session runs; others are
    /// refused and logged.
    async fn store_artifact(&mut self, chunk: burst_proto::ArtifactChunk) {
        let id = match chunk.step_run_id.parse::<StepRunId>() {
            Ok(id) => id,
            Err(e) => {
                tracing::warn!(worker = %self.worker_id, error = %for_log(&e), "refused an artifact");
                return;
            }
        };
        let owner = session_owner(&self.worker_id, self.session);
        if !self.logs.owns(&owner, id) {
            tracing::warn!(worker = %self.worker_id, step = %id, "refused an artifact of a step the worker does not run");
            return;
        }
        self.metrics.artifact_received(chunk.data.len());
        self.intake.chunk(id, chunk).await;
    }

    async fn store_output(&mut self, step: &str, stream: Output, offset: u64, data: &[u8]) {
        let id = match step.parse::<StepRunId>() {
            Ok(id) => id,
            Err(e) => {
                tracing::warn!(worker = %self.worker_id, error = %for_log(&e), "refused step output");
                return;
            }
        };
        let owner = session_owner(&self.worker_id, self.session);
        match self.logs.append(&owner, id, stream, offset, data).await {
            Ok(_) => {}
            Err(LogError::LimitExceeded { limit, .. }) => {
                tracing::warn!(
                    worker = %self.worker_id, step = %id, limit,
                    "step output exceeded step_log_limit; cancelling the step"
                );
                self.capped.insert(step.to_owned());
                let cancel = MasterMessage {
                    msg: Some(master_message::Msg::Cancel(CancelStep {
                        step_run_id: step.to_owned(),
                    })),
                };
                if let Some(tx) = self.outbound.upgrade() {
                    // Full or closed: the step's output is dropped either way,
                    // and the step timeout or lost session ends it.
                    let _ = tx.try_send(Box::new(cancel));
                }
            }
            Err(e) => {
                tracing::warn!(worker = %self.worker_id, error = %Chain(&e), "refused step output")
            }
        }
    }

    /// The worker's result for a capped step (cancelled, most likely) becomes
    /// a failure that says why.
    fn capped_result(&self, f: StepFinished) -> worker_message::Msg {
        worker_message::Msg::Finished(StepFinished {
            exit_code: None,
            signal: None,
            timed_out: false,
            cancelled: false,
            error: limit_message(self.logs.limit()),
            ..f
        })
    }
}
