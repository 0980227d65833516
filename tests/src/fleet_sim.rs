//! The fleet simulator: many worker sessions over the real gRPC protocol
//! from one process, so a benchmark can show one master thousands of
//! workers. A master pool with `provider = "sim"` (providers' `sim` feature,
//! on in the `burst` this crate drives) asks it over a Unix socket to
//! launch, terminate, list and health-check workers; each launch opens a
//! session that says hello with the worker's launch token, heartbeats, and
//! answers every `RunStep` with success at once or after `step_delay`.
//!
//! [`sim_pool`] writes such a pool's config; the `fleet_sim` binary runs a
//! simulator on its own.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context;
use burst_proto::worker_service_client::WorkerServiceClient;
use burst_proto::{
    master_message, worker_message, Heartbeat, OutputStream, StepFinished, StepOutput,
    WorkerMessage,
};
use burst_providers::sim::wire::{Reply, Request, MAX_LINE};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Endpoint};

/// How the simulated workers behave.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// How long a step "runs" before it is reported succeeded.
    pub step_delay: Duration,
    /// What every step prints (stdout, one chunk); empty for nothing.
    pub output: Vec<u8>,
    /// Sessions sharing one HTTP/2 connection (1: one each, as real
    /// workers). More lets one machine's open-file limit hold more sessions.
    pub sessions_per_connection: usize,
}

impl Default for SimOptions {
    fn default() -> Self {
        Self {
            step_delay: Duration::ZERO,
            output: Vec::new(),
            sessions_per_connection: 1,
        }
    }
}

/// Counters the simulator keeps, for the benchmark and its tests.
#[derive(Debug, Default)]
pub struct SimStats {
    pub launched: AtomicU64,
    /// Sessions the master welcomed.
    pub welcomed: AtomicU64,
    /// Sessions refused or failed before a welcome.
    pub failed: AtomicU64,
    pub steps: AtomicU64,
    pub terminated: AtomicU64,
}

struct Session {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

struct Shared {
    opts: SimOptions,
    stats: SimStats,
    sessions: Mutex<HashMap<String, Session>>,
    /// The connection new sessions share, and how many it carries.
    channel: Mutex<Option<(Channel, usize)>>,
}

/// A running simulator; dropping it ends every session.
pub struct FleetSim {
    socket: PathBuf,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

impl FleetSim {
    /// Listens on `socket` (which must not exist yet).
    pub fn start(socket: &Path, opts: SimOptions) -> anyhow::Result<Self> {
        let listener = UnixListener::bind(socket)
            .with_context(|| format!("failed to listen on {}", socket.display()))?;
        let shared = Arc::new(Shared {
            opts,
            stats: SimStats::default(),
            sessions: Mutex::new(HashMap::new()),
            channel: Mutex::new(None),
        });
        let serving = shared.clone();
        let server = tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => {
                        tokio::spawn(answer(stream, serving.clone()));
                    }
                    Err(e) => {
                        eprintln!("fleet_sim: failed to accept: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        });
        Ok(Self {
            socket: socket.to_owned(),
            shared,
            server,
        })
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    pub fn stats(&self) -> &SimStats {
        &self.shared.stats
    }

    /// Sessions the master welcomed so far.
    pub fn welcomed(&self) -> u64 {
        self.shared.stats.welcomed.load(Ordering::SeqCst)
    }

    pub fn steps(&self) -> u64 {
        self.shared.stats.steps.load(Ordering::SeqCst)
    }

    /// Sessions that still run.
    pub fn live(&self) -> usize {
        lock(&self.shared.sessions)
            .values()
            .filter(|s| !s.task.is_finished())
            .count()
    }
}

impl Drop for FleetSim {
    fn drop(&mut self) {
        self.server.abort();
        for (_, session) in lock(&self.shared.sessions).drain() {
            session.task.abort();
        }
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// A `[pools.NAME]` of `max` simulated workers, all kept idle when `warm`,
/// served by the simulator on `socket`, with labels `["sim"]`.
pub fn sim_pool(name: &str, socket: &Path, max: usize, warm: bool) -> String {
    let min_idle = if warm { max } else { 0 };
    format!(
        r#"
[pools.{name}]
provider = "sim"
labels = ["sim"]
max_workers = {max}
min_idle = {min_idle}
max_starting = {max}
idle_timeout = "1h"
start_timeout = "600s"

[pools.{name}.sim]
socket = "{socket}"
"#,
        socket = socket.display()
    )
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One request on one connection.
async fn answer(stream: UnixStream, shared: Arc<Shared>) {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let reply = match BufReader::new(read)
        .take(MAX_LINE as u64)
        .read_line(&mut line)
        .await
    {
        Err(e) => refuse(format!("failed to read the request: {e}")),
        Ok(_) => match serde_json::from_str::<Request>(&line) {
            Err(e) => refuse(format!("not a request: {e}")),
            Ok(request) => handle(request, &shared),
        },
    };
    let mut out = serde_json::to_vec(&reply).unwrap_or_default();
    out.push(b'\n');
    let _ = write.write_all(&out).await;
}

fn refuse(error: String) -> Reply {
    Reply {
        error: Some(error),
        ..Reply::default()
    }
}

fn handle(request: Request, shared: &Arc<Shared>) -> Reply {
    match request {
        Request::Launch {
            worker_id,
            master_url,
            token,
            labels,
        } => {
            let channel = match shared_channel(shared, &master_url) {
                Ok(channel) => channel,
                Err(e) => return refuse(format!("bad master URL {master_url:?}: {e}")),
            };
            let (stop, stopped) = watch::channel(false);
            let spec = Spec {
                worker_id: worker_id.clone(),
                token,
                labels,
            };
            let task = tokio::spawn(run_session(channel, spec, stopped, shared.clone()));
            shared.stats.launched.fetch_add(1, Ordering::SeqCst);
            lock(&shared.sessions).insert(worker_id, Session { stop, task });
            Reply::default()
        }
        Request::Terminate { worker_id } => {
            if let Some(session) = lock(&shared.sessions).remove(&worker_id) {
                let _ = session.stop.send(true);
                shared.stats.terminated.fetch_add(1, Ordering::SeqCst);
            }
            Reply::default()
        }
        Request::List => Reply {
            workers: lock(&shared.sessions).keys().cloned().collect(),
            ..Reply::default()
        },
        Request::Health { worker_id } => Reply {
            running: lock(&shared.sessions)
                .get(&worker_id)
                .is_some_and(|s| !s.task.is_finished()),
            ..Reply::default()
        },
    }
}

/// The connection a new session uses: a fresh one every
/// `sessions_per_connection` sessions (dialled lazily, by the session).
fn shared_channel(shared: &Shared, url: &str) -> anyhow::Result<Channel> {
    let mut current = lock(&shared.channel);
    let per = shared.opts.sessions_per_connection.max(1);
    if let Some((channel, used)) = current.as_mut() {
        if *used < per {
            *used += 1;
            return Ok(channel.clone());
        }
    }
    let channel = Endpoint::from_shared(url.to_owned())?
        .connect_timeout(Duration::from_secs(30))
        .connect_lazy();
    *current = Some((channel.clone(), 1));
    Ok(channel)
}

struct Spec {
    worker_id: String,
    token: String,
    labels: Vec<String>,
}

async fn run_session(
    channel: Channel,
    spec: Spec,
    stopped: watch::Receiver<bool>,
    shared: Arc<Shared>,
) {
    if let Err(e) = session(channel, &spec, stopped, &shared).await {
        shared.stats.failed.fetch_add(1, Ordering::SeqCst);
        eprintln!("fleet_sim: worker {}: {e:#}", spec.worker_id);
    }
}

/// Dials (a few tries, as a worker would), says hello, then serves the
/// master until told to stop or the stream ends.
async fn session(
    channel: Channel,
    spec: &Spec,
    mut stopped: watch::Receiver<bool>,
    shared: &Shared,
) -> anyhow::Result<()> {
    let mut client = WorkerServiceClient::new(channel);
    let (tx, mut inbound) = open(&mut client, spec).await?;
    let heartbeat = match inbound.message().await?.and_then(|m| m.msg) {
        Some(master_message::Msg::Welcome(w)) => Duration::from_millis(w.heartbeat_interval_ms),
        Some(master_message::Msg::Refused(r)) => anyhow::bail!("refused: {}", r.reason),
        other => anyhow::bail!("the master answered the hello with {other:?}"),
    };
    shared.stats.welcomed.fetch_add(1, Ordering::SeqCst);
    // A stream that breaks from here on is a master that went away: the
    // session ends, as a worker's would, without a fuss.
    let _ = serve(&tx, &mut inbound, heartbeat, &mut stopped, shared).await;
    Ok(())
}

/// A welcomed session: steps, heartbeats, until told to stop.
async fn serve(
    tx: &mpsc::Sender<WorkerMessage>,
    inbound: &mut tonic::Streaming<burst_proto::MasterMessage>,
    heartbeat: Duration,
    stopped: &mut watch::Receiver<bool>,
    shared: &Shared,
) -> anyhow::Result<()> {
    let mut beat = tokio::time::interval(heartbeat.max(Duration::from_millis(100)));
    beat.tick().await;
    // The one step in flight (capacity 1) and when it is done.
    let mut running: Option<(String, Instant)> = None;
    loop {
        let finish_at = running.as_ref().map(|(_, at)| *at);
        tokio::select! {
            msg = inbound.message() => match msg?.and_then(|m| m.msg) {
                Some(master_message::Msg::Run(run)) => {
                    let at = Instant::now() + shared.opts.step_delay;
                    running = Some((run.step_run_id, at));
                    if shared.opts.step_delay.is_zero() {
                        finish(tx, running.take(), false, shared).await?;
                    }
                }
                Some(master_message::Msg::Cancel(c)) => {
                    if running.as_ref().is_some_and(|(id, _)| *id == c.step_run_id) {
                        finish(tx, running.take(), true, shared).await?;
                    }
                }
                Some(master_message::Msg::Shutdown(_)) | None => return Ok(()),
                Some(_) => {}
            },
            _ = sleep_until(finish_at) => finish(tx, running.take(), false, shared).await?,
            _ = beat.tick() => {
                let running_steps = running.iter().map(|(id, _)| id.clone()).collect();
                tx.send(WorkerMessage {
                    msg: Some(worker_message::Msg::Heartbeat(Heartbeat { running_steps })),
                })
                .await?;
            }
            _ = stopped.changed() => return Ok(()),
        }
    }
}

/// Says hello on a new session stream, again (bounded) while the master
/// cannot be reached: then the hello never arrived, and the token is unused.
async fn open(
    client: &mut WorkerServiceClient<Channel>,
    spec: &Spec,
) -> anyhow::Result<(
    mpsc::Sender<WorkerMessage>,
    tonic::Streaming<burst_proto::MasterMessage>,
)> {
    const TRIES: u32 = 8;
    let mut delay = Duration::from_millis(50);
    for attempt in 1..=TRIES {
        let (tx, rx) = mpsc::channel(8);
        let mut hello = crate::fake_worker::hello(&spec.worker_id, &spec.token);
        hello.labels = spec.labels.clone();
        hello.version = "fleet_sim".into();
        tx.send(WorkerMessage {
            msg: Some(worker_message::Msg::Hello(hello)),
        })
        .await?;
        match client.session(ReceiverStream::new(rx)).await {
            Ok(response) => return Ok((tx, response.into_inner())),
            Err(status) if attempt < TRIES && status.code() == tonic::Code::Unavailable => {
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            Err(status) => anyhow::bail!("failed to open the session: {status}"),
        }
    }
    anyhow::bail!("failed to open the session after {TRIES} tries")
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

async fn finish(
    tx: &mpsc::Sender<WorkerMessage>,
    step: Option<(String, Instant)>,
    cancelled: bool,
    shared: &Shared,
) -> anyhow::Result<()> {
    let Some((step_run_id, _)) = step else {
        return Ok(());
    };
    if !shared.opts.output.is_empty() && !cancelled {
        let out = StepOutput {
            step_run_id: step_run_id.clone(),
            stream: OutputStream::Stdout.into(),
            offset: 0,
            data: shared.opts.output.clone(),
        };
        tx.send(WorkerMessage {
            msg: Some(worker_message::Msg::Output(out)),
        })
        .await?;
    }
    let done = StepFinished {
        step_run_id,
        exit_code: (!cancelled).then_some(0),
        signal: cancelled.then_some(15),
        timed_out: false,
        cancelled,
        duration_ms: shared.opts.step_delay.as_millis() as u64,
        error: String::new(),
        lease_expired: false,
    };
    tx.send(WorkerMessage {
        msg: Some(worker_message::Msg::Finished(done)),
    })
    .await?;
    shared.stats.steps.fetch_add(1, Ordering::SeqCst);
    Ok(())
}
