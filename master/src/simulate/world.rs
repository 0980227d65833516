//! Where simulated workers live: tasks that speak to the real scheduler
//! through its handle as gRPC sessions do (hello, heartbeats, a result per
//! step), and the books of what each worker did when, on virtual time.

use std::collections::{BTreeMap, HashMap};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use burst_proto::{master_message, worker_message, Heartbeat, Hello, Platform, StepFinished};
use burst_providers::LaunchSpec;
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;
use tokio::time::{Instant, Sleep};

use crate::logs::StepRunId;
use crate::model::BuildId;
use crate::scheduler::SchedulerHandle;

/// The step environment variable that tells a simulated worker how long
/// the step runs (the trace's duration), in milliseconds.
pub const RUN_MS: &str = "SIM_RUN_MS";

/// One simulated instance's life.
#[derive(Debug, Clone)]
pub struct WorkerLog {
    pub id: String,
    pub pool: usize,
    pub launched: Instant,
    /// Its hello: booting ends.
    pub connected: Option<Instant>,
    pub ended: Option<Instant>,
    /// Steps it ran: start and end (None: still running).
    pub busy: Vec<(Instant, Option<Instant>)>,
}

/// A build's start, as its worker saw it.
#[derive(Debug, Clone)]
pub struct Start {
    pub build: BuildId,
    pub worker: String,
    pub pool: usize,
    pub at: Instant,
}

/// What the world recorded, for the replay's timeline.
pub struct Snapshot {
    pub workers: Vec<WorkerLog>,
    /// First steps, in the order workers received them.
    pub starts: Vec<Start>,
    pub finished: HashMap<BuildId, Instant>,
    /// Failed launches per pool.
    pub failed: BTreeMap<usize, u32>,
}

#[derive(Default)]
struct Books {
    workers: BTreeMap<String, WorkerLog>,
    tasks: HashMap<String, JoinHandle<()>>,
    /// Launches that failed, per pool.
    failed: BTreeMap<usize, u32>,
    /// First steps, in the order workers received them.
    starts: Vec<Start>,
    finished: HashMap<BuildId, Instant>,
}

pub struct World {
    handle: OnceLock<SchedulerHandle>,
    books: Mutex<Books>,
    heartbeat: Duration,
    /// Rung whenever a build finishes.
    pub finished: Notify,
}

impl World {
    pub fn new(heartbeat: Duration) -> Arc<Self> {
        Arc::new(Self {
            handle: OnceLock::new(),
            books: Mutex::default(),
            heartbeat,
            finished: Notify::new(),
        })
    }

    /// The scheduler the workers talk to (made after its providers).
    pub fn attach(&self, handle: SchedulerHandle) {
        let _ = self.handle.set(handle);
    }

    fn books(&self) -> MutexGuard<'_, Books> {
        self.books.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn launch_failed(&self, pool: usize) {
        *self.books().failed.entry(pool).or_default() += 1;
    }

    pub fn launch(self: &Arc<Self>, pool: usize, spec: LaunchSpec, boot: Duration) {
        let id = spec.worker_id.clone();
        let task = tokio::spawn(worker(self.clone(), spec, boot));
        let mut books = self.books();
        books.workers.insert(
            id.clone(),
            WorkerLog {
                id: id.clone(),
                pool,
                launched: Instant::now(),
                connected: None,
                ended: None,
                busy: Vec::new(),
            },
        );
        books.tasks.insert(id, task);
    }

    pub fn terminate(&self, worker_id: &str) {
        let now = Instant::now();
        let mut books = self.books();
        if let Some(task) = books.tasks.remove(worker_id) {
            task.abort();
        }
        if let Some(w) = books.workers.get_mut(worker_id) {
            w.ended.get_or_insert(now);
            if let Some((_, end @ None)) = w.busy.last_mut() {
                *end = Some(now);
            }
        }
    }

    fn connected(&self, worker_id: &str) {
        if let Some(w) = self.books().workers.get_mut(worker_id) {
            w.connected.get_or_insert(Instant::now());
        }
    }

    fn step_started(&self, worker_id: &str, step: &str) {
        let now = Instant::now();
        let mut books = self.books();
        let Some(w) = books.workers.get_mut(worker_id) else {
            return;
        };
        w.busy.push((now, None));
        let pool = w.pool;
        if let Ok(id) = step.parse::<StepRunId>() {
            if id.index == 0 {
                books.starts.push(Start {
                    build: id.build,
                    worker: worker_id.to_owned(),
                    pool,
                    at: now,
                });
            }
        }
    }

    fn step_finished(&self, worker_id: &str, step: &str) {
        let now = Instant::now();
        {
            let mut books = self.books();
            if let Some((_, end @ None)) = books
                .workers
                .get_mut(worker_id)
                .and_then(|w| w.busy.last_mut())
            {
                *end = Some(now);
            }
            // Each simulated build has one step.
            if let Ok(id) = step.parse::<StepRunId>() {
                books.finished.insert(id.build, now);
            }
        }
        self.finished.notify_one();
    }

    pub fn finished_count(&self) -> usize {
        self.books().finished.len()
    }

    /// Everything recorded so far.
    pub fn snapshot(&self) -> Snapshot {
        let books = self.books();
        Snapshot {
            workers: books.workers.values().cloned().collect(),
            starts: books.starts.clone(),
            finished: books.finished.clone(),
            failed: books.failed.clone(),
        }
    }
}

fn hello(spec: &LaunchSpec) -> Hello {
    Hello {
        worker_id: spec.worker_id.clone(),
        token: spec.token.clone(),
        protocol_version: burst_proto::PROTOCOL_VERSION,
        platform: Some(Platform {
            os: "linux".into(),
            arch: "x86_64".into(),
            default_shell: "sh".into(),
        }),
        labels: vec![],
        capacity: 1,
        version: "simulated".into(),
        running_steps: vec![],
        finished_steps: vec![],
    }
}

/// The step a worker is running: its id, its length and when it ends.
struct Running {
    step: String,
    length: Duration,
    done: Pin<Box<Sleep>>,
}

/// Resolves when the running step ends; never when there is none.
async fn step_end(running: &mut Option<Running>) {
    match running {
        Some(r) => r.done.as_mut().await,
        None => std::future::pending().await,
    }
}

async fn worker(world: Arc<World>, spec: LaunchSpec, boot: Duration) {
    tokio::time::sleep(boot).await;
    let Some(handle) = world.handle.get().cloned() else {
        return;
    };
    let (tx, mut rx) = mpsc::channel(64);
    let Ok(session) = handle.hello(hello(&spec), tx).await else {
        return;
    };
    world.connected(&spec.worker_id);
    let id = spec.worker_id.as_str();
    let mut beat = tokio::time::interval_at(Instant::now() + world.heartbeat, world.heartbeat);
    let mut running: Option<Running> = None;
    loop {
        // Biased: a fixed order, so replays are deterministic.
        tokio::select! {
            biased;
            msg = rx.recv() => match msg.and_then(|m| m.msg) {
                Some(master_message::Msg::Run(run)) => {
                    let ms = run.env.get(RUN_MS).and_then(|v| v.parse().ok()).unwrap_or(0);
                    let length = Duration::from_millis(ms);
                    world.step_started(id, &run.step_run_id);
                    running = Some(Running {
                        step: run.step_run_id,
                        length,
                        done: Box::pin(tokio::time::sleep(length)),
                    });
                }
                Some(master_message::Msg::Cancel(c)) => {
                    running = None;
                    world.step_finished(id, &c.step_run_id);
                    let finished = StepFinished {
                        step_run_id: c.step_run_id,
                        signal: Some(9),
                        cancelled: true,
                        ..Default::default()
                    };
                    handle.from_worker(id, session, worker_message::Msg::Finished(finished)).await;
                }
                Some(master_message::Msg::Shutdown(_)) | None => return,
                Some(_) => {}
            },
            () = step_end(&mut running) => {
                let Some(done) = running.take() else { continue };
                world.step_finished(id, &done.step);
                let finished = StepFinished {
                    step_run_id: done.step,
                    exit_code: Some(0),
                    duration_ms: done.length.as_millis() as u64,
                    ..Default::default()
                };
                handle.from_worker(id, session, worker_message::Msg::Finished(finished)).await;
            }
            _ = beat.tick() => {
                handle.from_worker(id, session, worker_message::Msg::Heartbeat(Heartbeat::default())).await;
            }
        }
    }
}
