//! The worker's life: dial the master, hold a session, and reconnect with
//! backoff when it breaks, until told to stop or orphaned. Steps outlive a
//! session: they run on while the master is away, until their step lease
//! runs out, and their output and results wait in the journal for the next
//! session.

use std::future::Future;
use std::pin::{pin, Pin};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use burst_proto::worker_service_client::WorkerServiceClient;
use burst_proto::{
    master_message, notice, worker_message, Heartbeat, Hello, MasterMessage, Notice, Platform,
    RunStep, Welcome, WorkerMessage, PROTOCOL_VERSION,
};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Endpoint};
use tonic::Streaming;

use crate::args::Config;
use crate::backoff::Backoff;
use crate::interruption::Notices;
use crate::journal::Journal;
use crate::platform;
use crate::running::RunningSteps;
use crate::step::{StepContext, Stop};
use crate::tls::Dialer;

/// Messages queued for the master, per session. Small: with the journal's
/// backlog, this bound keeps a step that prints fast from filling the
/// worker's memory (an output message holds up to 512 KiB, so 4 is 2 MiB;
/// 16 took the slow-master test's peak RSS from 24 to 30–35 MB).
pub const OUTBOX_CAPACITY: usize = 4;

/// Longest wait for the TCP connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait from dialing to the master's `Welcome` or `Refused`.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
/// HTTP/2 pings find a master that vanished without closing the connection.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(20);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);
/// Used when the master's `Welcome` names no heartbeat interval.
const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(10);
const MIN_HEARTBEAT: Duration = Duration::from_millis(100);
/// How long steps get to die (SIGTERM, grace, SIGKILL, output drain).
const STOP_STEPS_BOUND: Duration = Duration::from_secs(10);
/// How long to wait, before exiting, for the master to take our last messages.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(3);

/// Why the worker stopped. See [`Exit::code`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// The master sent `Shutdown`.
    Shutdown,
    /// The worker got SIGTERM/SIGINT (Ctrl-C on Windows).
    Interrupted,
    /// The master refused this worker for good.
    Refused(String),
    /// No master for `--max-disconnected`.
    Orphaned,
}

impl Exit {
    /// The process exit code: 0 shutdown or interrupted, 2 refused, 3
    /// orphaned. (1 is left for errors.)
    pub fn code(&self) -> u8 {
        match self {
            Exit::Shutdown | Exit::Interrupted => 0,
            Exit::Refused(_) => 2,
            Exit::Orphaned => 3,
        }
    }
}

/// Runs the worker until the master shuts it down, refuses it, or is gone
/// for `max_disconnected`.
pub async fn run(config: Config) -> Result<Exit> {
    run_until(config, std::future::pending()).await
}

/// What lives across sessions: the steps, what is owed to the master, and
/// the step lease.
struct Agent {
    steps: RunningSteps,
    journal: Journal,
    lease: watch::Sender<Option<Instant>>,
    /// The master asked to stop once running steps finish.
    draining: bool,
}

impl Agent {
    /// The master's word renews the lease: `ms` from now.
    fn renew(&self, ms: u64) {
        let until = (ms > 0).then(|| Instant::now() + Duration::from_millis(ms));
        self.lease.send_replace(until);
    }

    /// Kills every step (reporting nothing) before the worker exits.
    async fn kill_all(&mut self) {
        self.steps.lose_all();
        self.steps.wait_all(STOP_STEPS_BOUND).await;
    }
}

/// [`run`], also stopping (killing running steps) when `stop` resolves.
pub async fn run_until(config: Config, stop: impl Future<Output = ()>) -> Result<Exit> {
    let endpoint = endpoint(&config.master_url)?;
    let dialer = config.trust.as_ref().map(Dialer::new).transpose()?;
    crate::workspace::prepare_work_dir(&config.work_dir, config.step_user.as_ref()).await?;
    tracing::info!(
        worker_id = %config.worker_id,
        master = %config.master_url,
        work_dir = %config.work_dir.display(),
        "burst-worker {} starting",
        env!("CARGO_PKG_VERSION")
    );

    let mut notices = match &config.imds_url {
        Some(url) => Notices::spawn(url, config.imds_poll)?,
        None => Notices::disabled(),
    };
    let journal = Journal::new(&config.work_dir);
    let (lease, lease_rx) = watch::channel(None);
    // The connection of the session in force, for cache steps' calls.
    let (channel, channel_rx) = watch::channel(None);
    let mut agent = Agent {
        steps: RunningSteps::new(StepContext {
            worker_id: config.worker_id.clone(),
            work_dir: config.work_dir.clone(),
            step_user: config.step_user.clone(),
            journal: journal.clone(),
            lease: lease_rx,
            channel: channel_rx,
        }),
        journal,
        lease,
        draining: false,
    };
    let mut stop = pin!(stop);
    let mut token = config.token.clone();
    let mut backoff = Backoff::new(config.reconnect_min, config.reconnect_max);
    let mut orphaned_at = Instant::now() + config.max_disconnected;
    loop {
        let left = orphaned_at.saturating_duration_since(Instant::now());
        let (running, finished) = agent.journal.ids();
        let mut hello = hello(&config, &token);
        hello.running_steps = running;
        hello.finished_steps = finished;
        let attempt = tokio::time::timeout(
            left.min(HANDSHAKE_TIMEOUT),
            handshake(&endpoint, dialer.as_ref(), hello),
        );
        let outcome = tokio::select! {
            outcome = attempt => outcome,
            () = stop.as_mut() => {
                agent.steps.stop_all(Stop::Kill);
                agent.kill_all().await;
                return Ok(Exit::Interrupted);
            }
        };
        match outcome {
            Ok(Ok(Handshake::Welcomed(session))) => {
                tracing::info!(master_id = %session.welcome.master_id, "connected to master");
                // The launch token is spent; from now on we resume.
                token = session.welcome.resume_token.clone();
                channel.send_replace(Some(session.channel.clone()));
                match session
                    .serve(&config, &mut agent, stop.as_mut(), &mut notices)
                    .await
                {
                    Ended::Exit(exit) => return Ok(exit),
                    Ended::Lost(why) => {
                        agent.journal.disconnected();
                        tracing::warn!(
                            steps = agent.steps.len(),
                            "lost the master: {why}; reconnecting (running steps go on under their lease)"
                        );
                    }
                }
                backoff.reset();
                orphaned_at = Instant::now() + config.max_disconnected;
            }
            Ok(Ok(Handshake::Refused {
                reason,
                fatal: true,
            })) => {
                tracing::error!(%reason, "master refused this worker; killing its steps and giving up");
                agent.kill_all().await;
                return Ok(Exit::Refused(reason));
            }
            Ok(Ok(Handshake::Refused {
                reason,
                fatal: false,
            })) => {
                tracing::error!(%reason, "master refused this worker; will retry");
            }
            Ok(Err(e)) => {
                // A certificate that fails the check is not a network blip:
                // retrying would only keep knocking at an impostor.
                if let Some(why) = dialer.as_ref().and_then(Dialer::refusal) {
                    agent.kill_all().await;
                    bail!(
                        "refusing to connect to the master at {}: {why}",
                        config.master_url
                    );
                }
                tracing::warn!("failed to reach the master: {e:#}");
            }
            Err(_) => tracing::warn!("failed to reach the master: timed out"),
        }

        let now = Instant::now();
        if now >= orphaned_at {
            tracing::error!(
                "failed to reach the master for {}; exiting so an orphaned worker does not run forever",
                humantime::format_duration(config.max_disconnected)
            );
            agent.kill_all().await;
            return Ok(Exit::Orphaned);
        }
        let delay = backoff.next_delay().min(orphaned_at - now);
        tracing::debug!("reconnecting in {delay:?}");
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = stop.as_mut() => {
                agent.steps.stop_all(Stop::Kill);
                agent.kill_all().await;
                return Ok(Exit::Interrupted);
            }
        }
    }
}

fn endpoint(master_url: &str) -> Result<Endpoint> {
    let endpoint = Endpoint::from_shared(master_url.to_owned())
        .with_context(|| format!("failed to parse master url {master_url:?}"))?;
    Ok(endpoint
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
        .keep_alive_timeout(KEEPALIVE_TIMEOUT)
        .keep_alive_while_idle(true))
}

/// The `Hello` that opens a first session (a reconnect adds the steps the
/// worker still has).
pub fn hello(config: &Config, token: &str) -> Hello {
    Hello {
        worker_id: config.worker_id.clone(),
        token: token.to_owned(),
        protocol_version: PROTOCOL_VERSION,
        platform: Some(Platform {
            os: std::env::consts::OS.to_owned(),
            arch: std::env::consts::ARCH.to_owned(),
            default_shell: platform::DEFAULT_SHELL.to_owned(),
        }),
        labels: config.labels.clone(),
        capacity: config.capacity,
        version: env!("CARGO_PKG_VERSION").to_owned(),
        running_steps: Vec::new(),
        finished_steps: Vec::new(),
    }
}

enum Handshake {
    Welcomed(Box<Session>),
    Refused { reason: String, fatal: bool },
}

enum Ended {
    Exit(Exit),
    Lost(String),
}

/// Dials the master, says `Hello`, and reads its answer.
async fn handshake(
    endpoint: &Endpoint,
    dialer: Option<&Dialer>,
    hello: Hello,
) -> Result<Handshake> {
    let channel = match dialer {
        // TLS on our own dialer: tonic's would want system roots.
        Some(dialer) => endpoint.connect_with_connector(dialer.clone()).await,
        None => endpoint.connect().await,
    }
    .context("failed to connect")?;
    let mut client = WorkerServiceClient::new(channel.clone());
    let (tx, rx) = mpsc::channel(OUTBOX_CAPACITY);
    let hello = WorkerMessage {
        msg: Some(worker_message::Msg::Hello(hello)),
    };
    tx.send(hello).await.context("failed to queue hello")?;
    let mut inbound = client
        .session(ReceiverStream::new(rx))
        .await
        .context("failed to open a session")?
        .into_inner();
    let first = inbound
        .message()
        .await
        .context("failed to read the master's answer")?;
    match first.and_then(|m| m.msg) {
        Some(master_message::Msg::Welcome(welcome)) => Ok(Handshake::Welcomed(Box::new(Session {
            _client: client,
            channel,
            tx,
            inbound,
            welcome,
        }))),
        Some(master_message::Msg::Refused(r)) => Ok(Handshake::Refused {
            reason: r.reason,
            fatal: r.fatal,
        }),
        Some(_) => bail!("failed to start a session: the master sent something before Welcome"),
        None => bail!("failed to start a session: the master closed it without an answer"),
    }
}

/// An established session.
struct Session {
    /// Holds the connection for as long as the session lasts.
    _client: WorkerServiceClient<Channel>,
    /// For calls besides the session (cache steps').
    channel: Channel,
    tx: mpsc::Sender<WorkerMessage>,
    inbound: Streaming<MasterMessage>,
    welcome: Welcome,
}

/// Hands the journal's messages to one session, in order, until told to
/// stop (it then finishes the send in progress) or the session closes.
struct Forwarder {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Forwarder {
    fn spawn(journal: Journal, tx: mpsc::Sender<WorkerMessage>) -> Self {
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            loop {
                // `next` takes nothing unless it completes: stopping here
                // loses no message.
                let msg = tokio::select! {
                    msg = journal.next() => msg,
                    _ = stopped.changed() => return,
                };
                if tx.send(msg).await.is_err() {
                    return;
                }
            }
        });
        Self { stop, task }
    }

    /// Lets the send in progress finish (within `bound`), then stops.
    async fn finish(mut self, bound: Duration) {
        let _ = self.stop.send(true);
        // Past the bound, dropping `self` aborts the task.
        let _ = tokio::time::timeout(bound, &mut self.task).await;
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        // A broken session: whatever it did not send goes on the next one.
        self.task.abort();
    }
}

impl Session {
    /// Serves the master until the session ends.
    async fn serve<F: Future<Output = ()>>(
        mut self,
        config: &Config,
        agent: &mut Agent,
        mut stop: Pin<&mut F>,
        notices: &mut Notices,
    ) -> Ended {
        agent.renew(self.welcome.step_lease_ms);
        let offsets = std::mem::take(&mut self.welcome.resume_offsets);
        for step in agent.journal.resume(&offsets) {
            agent.steps.supersede(&step);
        }
        if !offsets.is_empty() {
            tracing::info!(steps = offsets.len(), "the master takes back our steps");
        }
        let mut forwarder = Some(Forwarder::spawn(agent.journal.clone(), self.tx.clone()));
        let every = match self.welcome.heartbeat_interval_ms {
            0 => DEFAULT_HEARTBEAT,
            ms => Duration::from_millis(ms).max(MIN_HEARTBEAT),
        };
        let mut heartbeat = tokio::time::interval_at(Instant::now() + every, every);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Each session tells the master once; it terminates us on the notice.
        let mut notice_sent = false;

        loop {
            tokio::select! {
                msg = self.inbound.message() => match msg {
                    Ok(Some(msg)) => {
                        let Some(msg) = msg.msg else { continue };
                        match msg {
                            master_message::Msg::Run(run) => {
                                accept(&mut agent.steps, run, agent.draining, config.capacity);
                            }
                            master_message::Msg::Cancel(cancel) => {
                                if agent.steps.stop(&cancel.step_run_id, Stop::Cancel) {
                                    tracing::info!(step = %cancel.step_run_id, "cancelling step");
                                } else {
                                    tracing::debug!(
                                        step = %cancel.step_run_id,
                                        "ignoring cancel for a step that is not running"
                                    );
                                }
                            }
                            master_message::Msg::Shutdown(shutdown) if shutdown.drain => {
                                tracing::info!("master asked to shut down once running steps finish");
                                agent.draining = true;
                                if !agent.steps.has_tasks() {
                                    self.close(agent, forwarder.take()).await;
                                    return Ended::Exit(Exit::Shutdown);
                                }
                            }
                            master_message::Msg::Shutdown(_) => {
                                tracing::info!("master asked to shut down now; killing running steps");
                                agent.steps.stop_all(Stop::Kill);
                                self.close(agent, forwarder.take()).await;
                                return Ended::Exit(Exit::Shutdown);
                            }
                            master_message::Msg::BuildEnded(ended) => {
                                crate::workspace::remove_build(&config.work_dir, &ended.build_key);
                            }
                            master_message::Msg::Lease(lease) => agent.renew(lease.step_lease_ms),
                            master_message::Msg::ResultAck(ack) => {
                                agent.journal.acknowledged(&ack.step_run_id);
                            }
                            master_message::Msg::Welcome(_) | master_message::Msg::Refused(_) => {
                                tracing::warn!("ignoring a second Welcome/Refused from the master");
                            }
                        }
                    }
                    Ok(None) => return Ended::Lost("the master closed the session".to_owned()),
                    Err(status) => return Ended::Lost(format!("the session failed: {status}")),
                },
                _ = heartbeat.tick() => {
                    let running_steps = agent.steps.ids();
                    let beat = WorkerMessage {
                        msg: Some(worker_message::Msg::Heartbeat(Heartbeat { running_steps })),
                    };
                    // A full outbox means the master has plenty from us to
                    // read already; never let a heartbeat block the loop.
                    let _ = self.tx.try_send(beat);
                }
                detail = notices.wait(), if !notice_sent => {
                    notice_sent = true;
                    let notice = WorkerMessage {
                        msg: Some(worker_message::Msg::Notice(Notice {
                            kind: notice::Kind::Interruption as i32,
                            detail,
                        })),
                    };
                    if self.tx.send(notice).await.is_err() {
                        return Ended::Lost("the session closed".to_owned());
                    }
                }
                () = agent.steps.next_done(), if agent.steps.has_tasks() => {
                    if agent.draining && !agent.steps.has_tasks() {
                        self.close(agent, forwarder.take()).await;
                        return Ended::Exit(Exit::Shutdown);
                    }
                }
                () = stop.as_mut() => {
                    tracing::info!("stopping: killing running steps");
                    agent.steps.stop_all(Stop::Kill);
                    self.close(agent, forwarder.take()).await;
                    return Ended::Exit(Exit::Interrupted);
                }
            }
        }
    }

    /// Lets running steps end (they were told whether to finish or die),
    /// hands the master what they left, and closes the session.
    async fn close(mut self, agent: &mut Agent, forwarder: Option<Forwarder>) {
        agent.steps.wait_all(STOP_STEPS_BOUND).await;
        agent.journal.flushed(FLUSH_TIMEOUT).await;
        if let Some(forwarder) = forwarder {
            forwarder.finish(FLUSH_TIMEOUT).await;
        }
        // Dropping every sender ends our request stream once it is sent; the
        // master then ends its side, which tells us it has everything.
        drop(self.tx);
        let flushed = tokio::time::timeout(FLUSH_TIMEOUT, async {
            while let Ok(Some(_)) = self.inbound.message().await {}
        })
        .await;
        if flushed.is_err() {
            tracing::debug!("the master did not close the session; exiting anyway");
        }
    }
}

/// Starts `run`, or rejects it when draining or full.
fn accept(steps: &mut RunningSteps, run: RunStep, draining: bool, capacity: u32) {
    if draining {
        steps.reject(
            run.step_run_id,
            "failed to start step: the worker is shutting down".to_owned(),
        );
    } else if steps.len() >= capacity as usize {
        steps.reject(
            run.step_run_id,
            format!("failed to start step: the worker already runs {capacity} step(s)"),
        );
    } else {
        steps.start(run);
    }
}
