//! A burst master driven over its HTTP API, with an SSH pool whose hosts
//! are local sshd servers.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use burst_e2e::sshd::{ClientKey, Sshd};
use serde_json::Value;

/// The directory of the `burst` and `burst-worker` under test (see
/// `burst_e2e::Bins`; `BURST_E2E_BIN_DIR` overrides it).
pub fn bin_dir() -> PathBuf {
    let bins = burst_e2e::Bins::locate().unwrap_or_else(|e| panic!("{e}"));
    bins.burst
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// A TOML basic string (JSON's escapes are a subset of TOML's).
pub fn toml_str(s: &str) -> String {
    serde_json::to_string(s).expect("string to json")
}

/// One host's `[[pools.ssh.ssh.hosts]]` entry.
pub struct HostEntry<'a> {
    pub sshd: &'a Sshd,
    pub max_workers: u32,
    pub install_dir: String,
    pub state_dir: String,
    /// More TOML lines for the host's table (wake, sleep...).
    pub extra: String,
}

impl<'a> HostEntry<'a> {
    pub fn new(sshd: &'a Sshd, max_workers: u32) -> Self {
        Self {
            sshd,
            max_workers,
            install_dir: sshd.root.join("bin").display().to_string(),
            state_dir: sshd.root.join("state").display().to_string(),
            extra: String::new(),
        }
    }
}

pub struct PoolSpec {
    pub max_workers: u32,
    pub steps: String,
}

/// A TOML array of strings.
pub fn toml_array<S: AsRef<str>>(items: &[S]) -> String {
    let items: Vec<String> = items.iter().map(|s| toml_str(s.as_ref())).collect();
    format!("[{}]", items.join(", "))
}

/// Writes the config; `known_hosts` is the file the pool checks against.
pub fn write_config(
    dir: &Path,
    key: &ClientKey,
    known_hosts: &Path,
    hosts: &[HostEntry<'_>],
    pool: &PoolSpec,
) -> PathBuf {
    let mut text = format!(
        r#"[master]
state_dir = {state}
http_listen = "127.0.0.1:0"
grpc_listen = "127.0.0.1:0"
heartbeat_interval = "1s"
heartbeat_misses = 3
shutdown_grace = "5s"
build_retries = 1

[pools.ssh]
provider = "ssh"
labels = ["linux", "ssh"]
max_workers = {max_workers}
max_starting = {max_workers}
max_builds = 1
idle_timeout = "1s"
start_timeout = "90s"
backoff_min = "1s"
backoff_max = "20s"

[pools.ssh.ssh]
known_hosts = {known_hosts}
connect_timeout = "5s"
stop_grace = "3s"
"#,
        state = toml_str(&dir.join("state").display().to_string()),
        max_workers = pool.max_workers,
        known_hosts = toml_str(&known_hosts.display().to_string()),
    );
    for h in hosts {
        text.push_str(&format!(
            r#"
[[pools.ssh.ssh.hosts]]
name = {name}
address = "127.0.0.1"
port = {port}
user = "root"
key_file = {key}
platform = "linux"
max_workers = {max}
install_dir = {install}
state_dir = {state}
{extra}"#,
            extra = h.extra,
            name = toml_str(&h.sshd.name),
            port = h.sshd.port,
            key = toml_str(&key.private.display().to_string()),
            max = h.max_workers,
            install = toml_str(&h.install_dir),
            state = toml_str(&h.state_dir),
        ));
    }
    text.push_str(&format!(
        "\n[[builders]]\nname = \"hello\"\nlabels = [\"ssh\"]\n\n{}\n",
        pool.steps
    ));
    let path = dir.join("burst.toml");
    fs::write(&path, text).expect("write config");
    path
}

/// Writes a known_hosts file trusting these servers.
pub fn write_known_hosts(dir: &Path, hosts: &[&Sshd]) -> PathBuf {
    let path = dir.join("known_hosts");
    let text: String = hosts
        .iter()
        .map(|h| format!("{}\n", h.known_hosts_line()))
        .collect();
    fs::write(&path, text).expect("write known_hosts");
    path
}

pub struct Master {
    child: Option<Child>,
    config: PathBuf,
    state: PathBuf,
    pub log: PathBuf,
    pub api: String,
    http: reqwest::Client,
}

impl Master {
    pub async fn start(config: &Path) -> Self {
        let dir = config.parent().expect("config dir");
        let state = dir.join("state");
        let mut master = Self {
            child: None,
            config: config.to_owned(),
            state,
            log: dir.join("master.log"),
            api: String::new(),
            http: reqwest::Client::new(),
        };
        master.spawn().await;
        master
    }

    async fn spawn(&mut self) {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open master log");
        let child = Command::new(bin_dir().join("burst"))
            .arg("master")
            .arg("--config")
            .arg(&self.config)
            .env("RUST_LOG", "info,burst_providers=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start burst master");
        let pid = child.id();
        self.child = Some(child);
        let run_json = self.state.join("run.json");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(info) = fs::read(&run_json)
                .ok()
                .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                .filter(|v| v["pid"].as_u64() == Some(u64::from(pid)))
            {
                self.api = format!("http://{}", info["http"].as_str().expect("http addr"));
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!(
                    "burst master exited with {status}; log:\n{}",
                    self.log_text()
                );
            }
            assert!(
                Instant::now() < deadline,
                "burst master did not become ready; log:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The master's log, without terminal colour codes.
    pub fn log_text(&self) -> String {
        strip_ansi(&fs::read_to_string(&self.log).unwrap_or_default())
    }

    /// SIGKILL: no cleanup of any kind.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub async fn restart(&mut self) {
        self.kill9();
        self.spawn().await;
    }

    pub async fn submit(&self, builder: &str) -> u64 {
        let resp: Value = self
            .http
            .post(format!("{}/api/v1/builds", self.api))
            .json(&serde_json::json!({ "builder": builder }))
            .send()
            .await
            .expect("submit")
            .json()
            .await
            .expect("submit answer");
        resp["builds"][0]
            .as_u64()
            .unwrap_or_else(|| panic!("no build id in {resp}"))
    }

    pub async fn build(&self, id: u64) -> Value {
        self.get(&format!("/api/v1/builds/{id}")).await
    }

    pub async fn instances(&self) -> Vec<Value> {
        match self.get("/api/v1/instances?limit=1000").await {
            Value::Array(rows) => rows,
            other => panic!("instances: {other}"),
        }
    }

    /// The ledger row of a worker.
    pub async fn instance(&self, worker_id: &str) -> Value {
        self.instances()
            .await
            .into_iter()
            .find(|r| r["worker_id"] == worker_id)
            .unwrap_or_else(|| panic!("no ledger row for {worker_id}"))
    }

    pub async fn log_of(&self, id: u64) -> String {
        self.http
            .get(format!("{}/api/v1/builds/{id}/log", self.api))
            .send()
            .await
            .expect("log")
            .text()
            .await
            .expect("log text")
    }

    async fn get(&self, path: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.api))
            .send()
            .await
            .expect("GET")
            .json()
            .await
            .expect("json")
    }

    /// Polls the build until `done` holds for it.
    pub async fn wait_build(
        &self,
        id: u64,
        limit: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let build = self.build(id).await;
            if done(&build) {
                return build;
            }
            assert!(
                Instant::now() < deadline,
                "build {id} did not get there in {limit:?}: {build:#}\nmaster log:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub async fn wait_finished(&self, id: u64) -> Value {
        self.wait_build(id, Duration::from_secs(120), |b| {
            !matches!(b["state"].as_str(), Some("queued" | "running"))
        })
        .await
    }
}

impl Drop for Master {
    /// SIGTERM (the master stops its workers), then SIGKILL after a bound.
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if matches!(child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters final-byte
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Waits (bounded) until `f` holds.
pub async fn eventually(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !f() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
