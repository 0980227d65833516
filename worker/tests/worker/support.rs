//! A fake master the tests drive by hand, and helpers to start workers and
//! watch processes.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use burst_proto::worker_service_server::{WorkerService, WorkerServiceServer};
use burst_proto::{
    master_message, run_step, worker_message, Argv, CancelStep, Hello, MasterMessage, Refused,
    RunStep, Shutdown, StepFinished, Welcome, WorkerMessage,
};
use burst_worker::{Config, Exit};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::{Request, Response, Status, Streaming};

/// The bound on every wait in these tests.
pub const WAIT: Duration = Duration::from_secs(20);

pub const LAUNCH_TOKEN: &str = "launch-token";

/// A gRPC server on 127.0.0.1:0 that hands each session to the test.
pub struct FakeMaster {
    pub url: String,
    conns: mpsc::Receiver<Conn>,
    server: JoinHandle<()>,
}

impl Drop for FakeMaster {
    fn drop(&mut self) {
        self.server.abort();
    }
}

struct Service {
    conns: mpsc::Sender<Conn>,
}

#[tonic::async_trait]
impl WorkerService for Service {
    type SessionStream = ReceiverStream<Result<MasterMessage, Status>>;

    async fn session(
        &self,
        request: Request<Streaming<WorkerMessage>>,
    ) -> Result<Response<Self::SessionStream>, Status> {
        let (tx, rx) = mpsc::channel(16);
        let conn = Conn {
            inbound: request.into_inner(),
            outbound: tx,
        };
        self.conns
            .send(conn)
            .await
            .map_err(|_| Status::unavailable("test is gone"))?;
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    type FetchCacheStream = ReceiverStream<Result<burst_proto::CacheData, Status>>;

    // The worker tests' master keeps no caches.
    async fn fetch_cache(
        &self,
        _: Request<burst_proto::FetchCacheRequest>,
    ) -> Result<Response<Self::FetchCacheStream>, Status> {
        Err(Status::unimplemented("the fake master keeps no caches"))
    }

    async fn put_cache(
        &self,
        _: Request<Streaming<burst_proto::CacheData>>,
    ) -> Result<Response<burst_proto::PutCacheReply>, Status> {
        Err(Status::unimplemented("the fake master keeps no caches"))
    }
}

impl FakeMaster {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let (tx, rx) = mpsc::channel(8);
        let server = tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(WorkerServiceServer::new(Service { conns: tx }))
                .serve_with_incoming(TcpListenerStream::new(listener))
                .await;
        });
        Self {
            url: format!("http://{addr}"),
            conns: rx,
            server,
        }
    }

    /// The next session a worker opens.
    pub async fn accept(&mut self) -> Conn {
        tokio::time::timeout(WAIT, self.conns.recv())
            .await
            .expect("worker did not connect in time")
            .expect("fake master stopped")
    }
}

/// One session, seen from the master's side. Dropping it ends the session.
pub struct Conn {
    pub inbound: Streaming<WorkerMessage>,
    outbound: mpsc::Sender<Result<MasterMessage, Status>>,
}

/// What a step produced, as the master saw it.
#[derive(Debug)]
pub struct StepRun {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub finished: StepFinished,
}

impl StepRun {
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

impl Conn {
    /// The next worker message; None when the worker ended its stream.
    pub async fn recv(&mut self) -> Option<worker_message::Msg> {
        loop {
            let msg = tokio::time::timeout(WAIT, self.inbound.message())
                .await
                .expect("no message from the worker in time");
            match msg {
                Ok(Some(WorkerMessage { msg: Some(msg) })) => return Some(msg),
                Ok(Some(WorkerMessage { msg: None })) => continue,
                Ok(None) | Err(_) => return None,
            }
        }
    }

    /// The next message that is not a heartbeat.
    pub async fn recv_no_heartbeat(&mut self) -> worker_message::Msg {
        loop {
            match self.recv().await.expect("worker ended the session") {
                worker_message::Msg::Heartbeat(_) => continue,
                msg => return msg,
            }
        }
    }

    pub async fn hello(&mut self) -> Hello {
        match self.recv().await.expect("worker ended the session") {
            worker_message::Msg::Hello(hello) => hello,
            other => panic!("expected Hello, got {other:?}"),
        }
    }

    pub async fn send(&self, msg: master_message::Msg) {
        self.outbound
            .send(Ok(MasterMessage { msg: Some(msg) }))
            .await
            .expect("session gone");
    }

    /// Reads the Hello and welcomes the worker (a one-minute step lease).
    pub async fn welcome(&mut self, resume_token: &str) -> Hello {
        self.welcome_with(resume_token, 60_000, &[]).await
    }

    /// Reads the Hello and welcomes the worker with a step lease of
    /// `lease_ms`, asking for `resume` (step, offset) back.
    pub async fn welcome_with(
        &mut self,
        resume_token: &str,
        lease_ms: u64,
        resume: &[(&str, u64)],
    ) -> Hello {
        let hello = self.hello().await;
        self.send(master_message::Msg::Welcome(Welcome {
            resume_token: resume_token.to_owned(),
            heartbeat_interval_ms: 200,
            master_id: "fake-master".to_owned(),
            step_lease_ms: lease_ms,
            resume_offsets: resume
                .iter()
                .map(|(step, offset)| ((*step).to_owned(), *offset))
                .collect(),
        }))
        .await;
        hello
    }

    pub async fn refuse(&mut self, reason: &str, fatal: bool) -> Hello {
        let hello = self.hello().await;
        self.send(master_message::Msg::Refused(Refused {
            reason: reason.to_owned(),
            fatal,
        }))
        .await;
        hello
    }

    pub async fn run(&self, run: RunStep) {
        self.send(master_message::Msg::Run(run)).await;
    }

    pub async fn cancel(&self, step_run_id: &str) {
        self.send(master_message::Msg::Cancel(CancelStep {
            step_run_id: step_run_id.to_owned(),
        }))
        .await;
    }

    /// Reads messages until `step_run_id` finishes, checking that its
    /// output arrives in order with contiguous offsets. Other steps'
    /// messages and heartbeats are skipped.
    pub async fn collect(&mut self, step_run_id: &str) -> StepRun {
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        let mut offset = 0u64;
        loop {
            match self.recv_no_heartbeat().await {
                worker_message::Msg::Output(o) if o.step_run_id == step_run_id => {
                    assert_eq!(o.offset, offset, "output offsets must be contiguous");
                    assert!(o.data.len() <= burst_worker::MESSAGE_DATA);
                    offset += o.data.len() as u64;
                    if o.stream == burst_proto::OutputStream::Stderr as i32 {
                        stderr.extend(o.data);
                    } else {
                        assert_eq!(o.stream, burst_proto::OutputStream::Stdout as i32);
                        stdout.extend(o.data);
                    }
                }
                worker_message::Msg::Finished(finished) if finished.step_run_id == step_run_id => {
                    return StepRun {
                        stdout,
                        stderr,
                        finished,
                    };
                }
                _ => {}
            }
        }
    }

    /// Reads until `step_run_id` printed `needle` (e.g. "ready").
    pub async fn wait_for_output(&mut self, step_run_id: &str, needle: &str) {
        let mut seen = Vec::new();
        loop {
            match self.recv_no_heartbeat().await {
                worker_message::Msg::Output(o) if o.step_run_id == step_run_id => {
                    seen.extend(o.data);
                    if String::from_utf8_lossy(&seen).contains(needle) {
                        return;
                    }
                }
                worker_message::Msg::Finished(f) if f.step_run_id == step_run_id => {
                    panic!("step finished before printing {needle:?}: {f:?}")
                }
                _ => {}
            }
        }
    }

    /// Sends `Shutdown`, reads until the worker ends its stream (handing
    /// back what it sent meanwhile), then ends the session.
    pub async fn shutdown(mut self, drain: bool) -> Vec<worker_message::Msg> {
        self.send(master_message::Msg::Shutdown(Shutdown { drain }))
            .await;
        let mut rest = Vec::new();
        while let Some(msg) = self.recv().await {
            rest.push(msg);
        }
        rest
    }
}

/// A config for an in-process worker.
pub fn config(master_url: &str, dir: &Path) -> Config {
    Config {
        master_url: master_url.to_owned(),
        trust: None,
        worker_id: "w1".to_owned(),
        token: LAUNCH_TOKEN.to_owned(),
        labels: vec!["linux".to_owned(), "test".to_owned()],
        capacity: 1,
        work_dir: dir.join("work"),
        step_user: None,
        max_disconnected: Duration::from_secs(60),
        reconnect_min: Duration::from_millis(50),
        reconnect_max: Duration::from_millis(500),
        imds_url: None,
        imds_poll: Duration::from_secs(5),
    }
}

pub fn start(config: Config) -> JoinHandle<anyhow::Result<Exit>> {
    tokio::spawn(burst_worker::run(config))
}

/// Waits for an in-process worker to return.
pub async fn exited(worker: JoinHandle<anyhow::Result<Exit>>) -> Exit {
    tokio::time::timeout(WAIT, worker)
        .await
        .expect("worker did not exit in time")
        .expect("worker task panicked")
        .expect("worker failed")
}

/// A worker connected and welcomed: the usual start of a test.
pub async fn connected(config: Config) -> (FakeMaster, Conn, JoinHandle<anyhow::Result<Exit>>) {
    let mut master = FakeMaster::start().await;
    let config = Config {
        master_url: master.url.clone(),
        ..config
    };
    let worker = start(config);
    let mut conn = master.accept().await;
    conn.welcome("resume-1").await;
    (master, conn, worker)
}

pub fn script(id: &str, script: &str) -> RunStep {
    RunStep {
        step_run_id: id.to_owned(),
        build_key: "b1".to_owned(),
        name: id.to_owned(),
        command: Some(run_step::Command::Script(script.to_owned())),
        ..Default::default()
    }
}

pub fn argv(id: &str, args: &[&str]) -> RunStep {
    RunStep {
        step_run_id: id.to_owned(),
        build_key: "b1".to_owned(),
        name: id.to_owned(),
        command: Some(run_step::Command::Argv(Argv {
            args: args.iter().map(|a| (*a).to_owned()).collect(),
        })),
        ..Default::default()
    }
}

/// A step that starts a background `sleep 1000`, records both pids, says
/// "ready" and becomes the foreground `sleep 1000`.
pub fn sleeper(id: &str, dir: &Path) -> RunStep {
    script(
        id,
        &format!(
            "sleep 1000 & echo $! > '{bg}'; echo $$ > '{main}'; echo ready; exec sleep 1000",
            bg = dir.join(format!("{id}.bg.pid")).display(),
            main = dir.join(format!("{id}.main.pid")).display(),
        ),
    )
}

/// The pids [`sleeper`] recorded.
pub fn sleeper_pids(id: &str, dir: &Path) -> Vec<i32> {
    ["bg", "main"]
        .iter()
        .map(|which| {
            let path = dir.join(format!("{id}.{which}.pid"));
            std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("failed to read {}: {e}", path.display()))
                .trim()
                .parse()
                .expect("pid")
        })
        .collect()
}

/// Whether `pid` is a live (not zombie) `sleep 1000`. Checking the command
/// line keeps a recycled pid from looking alive.
pub fn sleep_alive(pid: i32) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    if cmdline != b"sleep\x001000\x00" {
        return false;
    }
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat
        .rsplit_once(") ")
        .and_then(|(_, rest)| rest.chars().next());
    !matches!(state, Some('Z' | 'X' | 'x'))
}

/// Waits (bounded) until all of `pids` are live `sleep 1000`s (the
/// sleeper's shell says "ready" just before it execs).
pub async fn assert_running(pids: &[i32]) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !pids.iter().all(|&pid| sleep_alive(pid)) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "processes did not start: {pids:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits (bounded) until none of `pids` is a live `sleep 1000`.
pub async fn assert_gone(pids: &[i32]) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while pids.iter().any(|&pid| sleep_alive(pid)) {
        if tokio::time::Instant::now() > deadline {
            let alive: Vec<_> = pids.iter().filter(|&&p| sleep_alive(p)).collect();
            for &&pid in &alive {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            panic!("processes still running: {alive:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The real binary, pointed at `master_url`, logging to `<dir>/worker.log`.
pub fn spawn_binary(master_url: &str, dir: &Path, extra_args: &[&str]) -> tokio::process::Child {
    let log = std::fs::File::create(log_path(dir)).expect("create log");
    tokio::process::Command::new(env!("CARGO_BIN_EXE_burst-worker"))
        .args(extra_args)
        .env("BURST_MASTER_URL", master_url)
        .env("BURST_WORKER_ID", "w1")
        .env("BURST_MASTER_ID", "m-test")
        .env("BURST_TOKEN", LAUNCH_TOKEN)
        .env("BURST_WORK_DIR", dir.join("work"))
        .env("BURST_RECONNECT_MIN", "50ms")
        .env("BURST_RECONNECT_MAX", "200ms")
        .env_remove("BURST_LABELS")
        .env_remove("BURST_CAPACITY")
        .env_remove("BURST_MAX_DISCONNECTED")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .expect("spawn burst-worker")
}

pub fn log_path(dir: &Path) -> PathBuf {
    dir.join("worker.log")
}

pub fn read_log(dir: &Path) -> String {
    std::fs::read_to_string(log_path(dir)).unwrap_or_default()
}

/// Waits for the binary to exit and returns its exit code.
pub async fn exit_code(child: &mut tokio::process::Child, dir: &Path) -> i32 {
    let status = tokio::time::timeout(WAIT, child.wait())
        .await
        .unwrap_or_else(|_| panic!("burst-worker did not exit in time; log:\n{}", read_log(dir)))
        .expect("wait");
    status
        .code()
        .unwrap_or_else(|| panic!("burst-worker died by a signal: {status:?}"))
}
