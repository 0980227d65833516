//! The worker's life: dial the master, hold a session, and reconnect with
//! backoff when it breaks, until told to stop or orphaned.

use std::future::Future;
use std::pin::{pin, Pin};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use burst_proto::worker_service_client::WorkerServiceClient;
use burst_proto::{
    master_message, notice, worker_message, Heartbeat, Hello, MasterMessage, Notice, Platform,
    RunStep, Welcome, WorkerMessage, PROTOCOL_VERSION,
};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Endpoint};
use tonic::Streaming;

use crate::args::Config;
use crate::backoff::Backoff;
use crate::interruption::Notices;
use crate::platform;
use crate::running::RunningSteps;
use crate::step::{StepContext, Stop};
use crate::tls::Dialer;

/// Messages queued for the master, per session. Small: this bound is what
/// keeps a step that prints fast from filling the worker's memory.
pub const OUTBOX_CAPACITY: usize = 16;

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

/// [`run`], also stopping (killing running steps) when `stop` resolves.
pub async fn run_until(config: Config, stop: impl Future<Output = ()>) -> Result<Exit> {
    let endpoint = endpoint(&config.master_url)?;
    let dialer = config.trust.as_ref().map(Dialer::new).transpose()?;
    tokio::fs::create_dir_all(&config.work_dir)
        .await
        .with_context(|| format!("failed to create work dir {}", config.work_dir.display()))?;
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
    let mut stop = pin!(stop);
    let mut token = config.token.clone();
    let mut backoff = Backoff::new(config.reconnect_min, config.reconnect_max);
    let mut orphaned_at = Instant::now() + config.max_disconnected;
    loop {
        let left = orphaned_at.saturating_duration_since(Instant::now());
        let attempt = tokio::time::timeout(
            left.min(HANDSHAKE_TIMEOUT),
            handshake(&endpoint, dialer.as_ref(), &config, &token),
        );
        let outcome = tokio::select! {
            outcome = attempt => outcome,
            () = stop.as_mut() => return Ok(Exit::Interrupted),
        };
        match outcome {
            Ok(Ok(Handshake::Welcomed(session))) => {
                tracing::info!(master_id = %session.welcome.master_id, "connected to master");
                // The launch token is spent; from now on we resume.
                token = session.welcome.resume_token.clone();
                match session.serve(&config, stop.as_mut(), &mut notices).await {
                    Ended::Exit(exit) => return Ok(exit),
                    Ended::Lost(why) => tracing::warn!("lost the master: {why}; reconnecting"),
                }
                backoff.reset();
                orphaned_at = Instant::now() + config.max_disconnected;
            }
            Ok(Ok(Handshake::Refused {
                reason,
                fatal: true,
            })) => {
                tracing::error!(%reason, "master refused this worker; giving up");
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
            return Ok(Exit::Orphaned);
        }
        let delay = backoff.next_delay().min(orphaned_at - now);
        tracing::debug!("reconnecting in {delay:?}");
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = stop.as_mut() => return Ok(Exit::Interrupted),
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

/// The `Hello` that opens every session.
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
        // Steps never outlive their session (they are killed when it breaks),
        // so a new session starts with none.
        running_steps: Vec::new(),
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
    config: &Config,
    token: &str,
) -> Result<Handshake> {
    let channel = match dialer {
        // TLS on our own dialer: tonic's would want system roots.
        Some(dialer) => endpoint.connect_with_connector(dialer.clone()).await,
        None => endpoint.connect().await,
    }
    .context("failed to connect")?;
    let mut client = WorkerServiceClient::new(channel);
    let (tx, rx) = mpsc::channel(OUTBOX_CAPACITY);
    let hello = WorkerMessage {
        msg: Some(worker_message::Msg::Hello(hello(config, token))),
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
    tx: mpsc::Sender<WorkerMessage>,
    inbound: Streaming<MasterMessage>,
    welcome: Welcome,
}

impl Session {
    /// Serves the master until the session ends.
    async fn serve<F: Future<Output = ()>>(
        mut self,
        config: &Config,
        mut stop: Pin<&mut F>,
        notices: &mut Notices,
    ) -> Ended {
        let mut steps = RunningSteps::new(StepContext {
            worker_id: config.worker_id.clone(),
            work_dir: config.work_dir.clone(),
            tx: self.tx.clone(),
        });
        let every = match self.welcome.heartbeat_interval_ms {
            0 => DEFAULT_HEARTBEAT,
            ms => Duration::from_millis(ms).max(MIN_HEARTBEAT),
        };
        let mut heartbeat = tokio::time::interval_at(Instant::now() + every, every);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut draining = false;
        // Each session tells the master once; it terminates us on the notice.
        let mut notice_sent = false;

        loop {
            tokio::select! {
                msg = self.inbound.message() => match msg {
                    Ok(Some(msg)) => {
                        let Some(msg) = msg.msg else { continue };
                        match msg {
                            master_message::Msg::Run(run) => {
                                accept(&mut steps, run, draining, config.capacity);
                            }
                            master_message::Msg::Cancel(cancel) => {
                                if steps.stop(&cancel.step_run_id, Stop::Cancel) {
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
                                draining = true;
                                if !steps.has_tasks() {
                                    self.close(steps).await;
                                    return Ended::Exit(Exit::Shutdown);
                                }
                            }
                            master_message::Msg::Shutdown(_) => {
                                tracing::info!("master asked to shut down now; killing running steps");
                                steps.stop_all(Stop::Kill);
                                self.close(steps).await;
                                return Ended::Exit(Exit::Shutdown);
                            }
                            master_message::Msg::Welcome(_) | master_message::Msg::Refused(_) => {
                                tracing::warn!("ignoring a second Welcome/Refused from the master");
                            }
                        }
                    }
                    Ok(None) => {
                        return lose(steps, "the master closed the session".to_owned()).await;
                    }
                    Err(status) => {
                        return lose(steps, format!("the session failed: {status}")).await;
                    }
                },
                _ = heartbeat.tick() => {
                    let running_steps = steps.ids();
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
                        return lose(steps, "the session closed".to_owned()).await;
                    }
                }
                () = steps.next_done(), if steps.has_tasks() => {
                    if draining && !steps.has_tasks() {
                        self.close(steps).await;
                        return Ended::Exit(Exit::Shutdown);
                    }
                }
                () = stop.as_mut() => {
                    tracing::info!("stopping: killing running steps");
                    steps.stop_all(Stop::Kill);
                    self.close(steps).await;
                    return Ended::Exit(Exit::Interrupted);
                }
            }
        }
    }

    /// Lets running steps end (they were told whether to finish or die),
    /// then hands the master our last messages before the process exits.
    async fn close(mut self, mut steps: RunningSteps) {
        steps.wait_all(STOP_STEPS_BOUND).await;
        // Dropping every sender ends our request stream once it is sent; the
        // master then ends its side, which tells us it has everything.
        drop(steps);
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

/// The session broke: kill the steps (the master retries their builds).
async fn lose(mut steps: RunningSteps, why: String) -> Ended {
    steps.lose_all();
    steps.wait_all(STOP_STEPS_BOUND).await;
    Ended::Lost(why)
}
