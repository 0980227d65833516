//! Running Windows workers under wine: where the cross-built worker and its
//! test helpers are, and a small master launcher for the tests in
//! `tests/tests/e2e/windows.rs`.
//!
//! Everything here comes from `scripts/setup/build-windows-worker.sh` (the
//! Windows side) and `cargo build --workspace --bins` (the master and the
//! Linux worker); a missing piece fails the test with the command to run.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;

const BUILD_SCRIPT: &str = "scripts/setup/build-windows-worker.sh";

/// The binaries and the wine prefix the Windows tests use.
#[derive(Debug, Clone)]
pub struct WineSetup {
    /// `burst` (the master and CLI).
    pub burst: PathBuf,
    /// The Linux `burst-worker`.
    pub linux_worker: PathBuf,
    /// `burst-worker.exe`.
    pub worker_exe: PathBuf,
    /// `echoargs.exe`: prints each argument as `<arg>` on its own line.
    pub echoargs: PathBuf,
    pub prefix: PathBuf,
}

impl WineSetup {
    /// Finds everything, or fails naming the step that makes what is missing.
    pub fn require() -> Result<Self> {
        let target = target_dir()?;
        let debug = target.join("debug");
        let win = target.join("x86_64-pc-windows-gnu").join("debug");
        let setup = Self {
            burst: debug.join("burst"),
            linux_worker: debug.join("burst-worker"),
            worker_exe: win.join("burst-worker.exe"),
            echoargs: win.join("echoargs.exe"),
            prefix: target.join("wineprefix"),
        };
        for bin in [&setup.burst, &setup.linux_worker] {
            if !bin.is_file() {
                bail!(
                    "{} missing: run `cargo build --workspace --bins`",
                    bin.display()
                );
            }
        }
        if find_on_path("wine").is_none() {
            bail!("wine is not installed: run scripts/setup/10-apt.sh, then {BUILD_SCRIPT}");
        }
        let shim = win.join("bcryptprimitives.dll");
        for file in [&setup.worker_exe, &shim, &setup.echoargs] {
            if !file.is_file() {
                bail!("{} missing: run {BUILD_SCRIPT}", file.display());
            }
        }
        if !setup.prefix.join("system.reg").is_file() {
            bail!(
                "wine prefix {} is not initialised: run {BUILD_SCRIPT}",
                setup.prefix.display()
            );
        }
        Ok(setup)
    }

    /// A `[pools.NAME]` section for a local pool of wine workers.
    pub fn windows_pool(&self, name: &str, labels: &[&str]) -> String {
        format!(
            "[pools.{name}]\nprovider = \"local\"\nlabels = {labels}\nmax_workers = 2\n\
             idle_timeout = \"60s\"\n# wine is slow to start.\nstart_timeout = \"60s\"\n\
             backoff_min = \"1s\"\nbackoff_max = \"2s\"\n\n\
             [pools.{name}.local]\ncommand = [\"wine\", {exe}]\n\
             env = {{ WINEPREFIX = {prefix}, WINEDEBUG = \"-all\", BURST_TEST_CASE = \"outer\" }}\n\n",
            labels = toml_list(labels),
            exe = toml_str(&self.worker_exe.to_string_lossy()),
            prefix = toml_str(&self.prefix.to_string_lossy()),
        )
    }

    /// A `[pools.NAME]` section for a local pool of Linux workers.
    pub fn linux_pool(&self, name: &str, labels: &[&str]) -> String {
        format!(
            "[pools.{name}]\nprovider = \"local\"\nlabels = {labels}\nmax_workers = 2\n\
             idle_timeout = \"60s\"\nstart_timeout = \"30s\"\n\n\
             [pools.{name}.local]\ncommand = [{exe}]\n\n",
            labels = toml_list(labels),
            exe = toml_str(&self.linux_worker.to_string_lossy()),
        )
    }
}

/// `$CARGO_TARGET_DIR`, found from this test binary
/// (`<target>/debug/deps/e2e-…`).
fn target_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("failed to locate the test binary")?;
    exe.ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .ok_or_else(|| anyhow!("failed to find the target dir above {}", exe.display()))
}

fn find_on_path(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// `s` as a TOML basic string (JSON's escapes are valid TOML).
pub fn toml_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

pub fn toml_list<S: AsRef<str>>(items: &[S]) -> String {
    let items: Vec<String> = items.iter().map(|s| toml_str(s.as_ref())).collect();
    format!("[{}]", items.join(", "))
}

/// The path wine shows a Unix path under (its `Z:` drive).
pub fn windows_path(path: &Path) -> String {
    format!("Z:{}", path.to_string_lossy().replace('/', "\\"))
}

/// Processes whose command line contains every one of `needles`.
pub fn processes_matching(needles: &[&str]) -> Vec<(u32, String)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        let Ok(raw) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&raw).replace('\0', " ");
        if needles.iter().all(|n| cmdline.contains(n)) {
            found.push((pid, cmdline.trim().to_owned()));
        }
    }
    found
}

/// Polls `probe` every 100 ms until it returns `Some`, for at most `bound`.
pub async fn wait_for<T>(
    what: &str,
    bound: Duration,
    mut probe: impl FnMut() -> Option<T>,
) -> Result<T> {
    let deadline = Instant::now() + bound;
    loop {
        if let Some(found) = probe() {
            return Ok(found);
        }
        if Instant::now() >= deadline {
            bail!("timed out after {bound:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A `burst master` process on loopback with its own state dir; stopped
/// (SIGTERM, then SIGKILL) when dropped.
pub struct Master {
    child: Child,
    pub http: String,
    pub master_id: String,
    burst: PathBuf,
    client: reqwest::Client,
    dir: tempfile::TempDir,
}

impl Master {
    /// Starts a master with `body` (pools and builders) after a `[master]`
    /// section listening on free loopback ports.
    pub async fn start(setup: &WineSetup, body: &str) -> Result<Self> {
        let dir = tempfile::tempdir().context("failed to create a temp dir")?;
        let state = dir.path().join("state");
        let config = format!(
            "[master]\nstate_dir = {}\nhttp_listen = \"127.0.0.1:0\"\n\
             grpc_listen = \"127.0.0.1:0\"\nshutdown_grace = \"2s\"\nheartbeat_interval = \"5s\"\n\n{body}",
            toml_str(&state.to_string_lossy())
        );
        let config_path = dir.path().join("burst.toml");
        std::fs::write(&config_path, &config).context("failed to write the config")?;
        let log = std::fs::File::create(dir.path().join("master.log"))
            .context("failed to create the master log")?;
        let mut child = Command::new(&setup.burst)
            .arg("master")
            .arg("--config")
            .arg(&config_path)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().context("failed to share the master log")?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("failed to start {}", setup.burst.display()))?;
        let run_json = state.join("run.json");
        let info = wait_for("the master's run.json", Duration::from_secs(30), || {
            if let Ok(Some(_)) = child.try_wait() {
                return Some(Err(()));
            }
            let text = std::fs::read_to_string(&run_json).ok()?;
            serde_json::from_str::<Value>(&text).ok().map(Ok)
        })
        .await;
        let info = match info {
            Ok(Ok(info)) => info,
            Ok(Err(())) | Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                let log =
                    std::fs::read_to_string(dir.path().join("master.log")).unwrap_or_default();
                bail!("failed to start the master; its log:\n{log}\nconfig:\n{config}");
            }
        };
        Ok(Self {
            child,
            http: info["http"].as_str().unwrap_or_default().to_owned(),
            master_id: info["master_id"].as_str().unwrap_or_default().to_owned(),
            burst: setup.burst.clone(),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .context("failed to build an HTTP client")?,
            dir,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http)
    }

    /// Submits `builder`; returns the build ids.
    pub async fn submit(&self, builder: &str) -> Result<Vec<u64>> {
        let resp: Value = self
            .client
            .post(self.url("/api/v1/builds"))
            .json(&serde_json::json!({ "builder": builder }))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        resp["builds"]
            .as_array()
            .map(|ids| ids.iter().filter_map(Value::as_u64).collect())
            .ok_or_else(|| anyhow!("unexpected submit answer {resp}"))
    }

    pub async fn build(&self, id: u64) -> Result<Value> {
        Ok(self
            .client
            .get(self.url(&format!("/api/v1/builds/{id}")))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?)
    }

    /// Waits (at most `bound`) for build `id` to finish; returns it.
    pub async fn wait_finished(&self, id: u64, bound: Duration) -> Result<Value> {
        let deadline = Instant::now() + bound;
        loop {
            let build = self.build(id).await?;
            let state = build["state"].as_str().unwrap_or_default();
            if !matches!(state, "queued" | "running") {
                return Ok(build);
            }
            if Instant::now() >= deadline {
                bail!(
                    "build {id} still {state} after {bound:?}: {build}\nmaster log:\n{}",
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The build's whole log, bytes as the steps printed them.
    pub async fn log(&self, id: u64) -> Result<Vec<u8>> {
        Ok(self
            .client
            .get(self.url(&format!("/api/v1/builds/{id}/log")))
            .send()
            .await?
            .error_for_status()?
            .bytes()
            .await?
            .to_vec())
    }

    pub async fn cancel(&self, id: u64) -> Result<()> {
        self.client
            .post(self.url(&format!("/api/v1/builds/{id}/cancel")))
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    }

    /// `burst --url <this master> ARGS…`.
    pub fn cli(&self) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(&self.burst);
        cmd.arg("--url")
            .arg(format!("http://{}", self.http))
            .stdin(Stdio::null())
            .kill_on_drop(true);
        cmd
    }

    /// The end of the master's own log, for failure messages.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("master.log")).unwrap_or_default();
        let start = log.len().saturating_sub(6000);
        log.get(start..).unwrap_or(&log).to_owned()
    }
}

impl Drop for Master {
    fn drop(&mut self) {
        let Ok(pid) = i32::try_from(self.child.id()) else {
            return;
        };
        let pid = nix::unistd::Pid::from_raw(pid);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        // The master stops its workers before it exits.
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Pids of the `burst-worker.exe` processes launched by master `master_id`
/// (found by the environment the local provider gave them).
pub fn worker_pids(master_id: &str) -> Vec<u32> {
    let want = format!("BURST_MASTER_ID={master_id}");
    processes_matching(&["burst-worker.exe"])
        .into_iter()
        .filter(|(pid, _)| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .map(|env| env.split(|b| *b == 0).any(|kv| kv == want.as_bytes()))
                .unwrap_or(false)
        })
        .map(|(pid, _)| pid)
        .collect()
}
