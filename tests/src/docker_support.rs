//! Helpers of the Docker provider's end-to-end tests: a real `burst master`
//! process on a docker pool of the test's own, the `docker` CLI to look at
//! (and break) its containers, and a guard that removes everything the test
//! created, even when it fails.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context};
use serde_json::Value;

/// The image `scripts/setup/build-docker-image.sh` builds.
pub const IMAGE: &str = "burst-worker:latest";
pub const POOL_LABEL: &str = "io.burst.pool";

/// A name no other test (or run) uses: `PREFIX-<pid><nanos>` in hex.
pub fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos() ^ (d.as_secs() as u32))
        .unwrap_or(0);
    format!("{prefix}-{:x}{nanos:08x}", std::process::id())
}

/// Runs `docker ARGS`, returning stdout; fails with stderr.
pub fn docker(args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| {
            format!(
                "failed to run docker {}: is the docker CLI installed?",
                args.join(" ")
            )
        })?;
    if !out.status.success() {
        bail!(
            "docker {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Fails, naming the setup step, unless the engine answers and has `IMAGE`.
pub fn require_docker_and_image() -> anyhow::Result<()> {
    docker(&["version", "--format", "{{.Server.Version}}"]).map_err(|e| {
        anyhow!("the Docker engine is unreachable ({e}): start dockerd (the machine's Docker service) before the tests")
    })?;
    docker(&["image", "inspect", "--format", "{{.Id}}", IMAGE]).map_err(|e| {
        anyhow!("image {IMAGE} missing ({e}): run scripts/setup/build-docker-image.sh")
    })?;
    Ok(())
}

/// Ids of the containers (running or not) carrying `io.burst.pool=POOL`.
pub fn pool_containers(pool: &str) -> anyhow::Result<Vec<String>> {
    let out = docker(&[
        "ps",
        "-aq",
        "--no-trunc",
        "--filter",
        &format!("label={POOL_LABEL}={pool}"),
    ])?;
    Ok(out.split_whitespace().map(str::to_owned).collect())
}

/// Removes what a test created: the pool's containers, and any images and
/// networks it registered. Runs on drop, so a failing test cleans up too.
pub struct Cleanup {
    pub pool: String,
    pub images: Vec<String>,
    pub networks: Vec<String>,
}

impl Cleanup {
    pub fn new(pool: &str) -> Self {
        Self {
            pool: pool.to_owned(),
            images: Vec::new(),
            networks: Vec::new(),
        }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        // A master killed mid-launch may leave a create request that the
        // engine completes a moment later: sweep until two passes find none.
        let mut empty_passes = 0;
        for _ in 0..10 {
            match pool_containers(&self.pool) {
                Ok(ids) if ids.is_empty() => {
                    empty_passes += 1;
                    if empty_passes == 2 {
                        break;
                    }
                }
                Ok(ids) => {
                    empty_passes = 0;
                    let mut args = vec!["rm", "-f", "-v"];
                    args.extend(ids.iter().map(String::as_str));
                    let _ = docker(&args);
                }
                Err(_) => break,
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        for image in &self.images {
            let _ = docker(&["rmi", "-f", image]);
        }
        for network in &self.networks {
            let _ = docker(&["network", "rm", network]);
        }
    }
}

/// `target/debug/burst`, next to the directory of this test binary, or in
/// `$BURST_E2E_BIN_DIR` when set (a copy no concurrent build overwrites).
pub fn burst_bin() -> anyhow::Result<PathBuf> {
    let dir = match std::env::var_os("BURST_E2E_BIN_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => {
            let exe = std::env::current_exe().context("failed to locate the test binary")?;
            exe.parent()
                .and_then(Path::parent)
                .map(Path::to_path_buf)
                .ok_or_else(|| anyhow!("test binary {} has no target dir", exe.display()))?
        }
    };
    let bin = dir.join("burst");
    if !bin.is_file() {
        bail!(
            "{} missing: run `cargo build --workspace --bins` before the tests",
            bin.display()
        );
    }
    Ok(bin)
}

/// A `[pools.POOL]` docker pool plus builders, with the master listening
/// where the default bridge reaches it.
pub fn config(
    state_dir: &Path,
    pool: &str,
    pool_extra: &str,
    docker_extra: &str,
    builders: &str,
) -> String {
    format!(
        r#"[master]
state_dir = "{state}"
http_listen = "127.0.0.1:0"
grpc_listen = "0.0.0.0:0"
heartbeat_interval = "1s"
shutdown_grace = "2s"

[pools.{pool}]
provider = "docker"
labels = ["{pool}"]
backoff_min = "200ms"
backoff_max = "2s"
{pool_extra}

[pools.{pool}.docker]
image = "{IMAGE}"
pull = "never"
{docker_extra}

{builders}
"#,
        state = state_dir.display()
    )
}

/// A builder of one `run` step that the test's pool serves.
pub fn builder(name: &str, pool: &str, run: &str) -> String {
    format!(
        "[[builders]]\nname = \"{name}\"\nlabels = [\"{pool}\"]\n\n[[builders.steps]]\nname = \"main\"\nrun = '''{run}'''\n"
    )
}

/// A `burst master` process and its API.
pub struct Master {
    child: Option<Child>,
    pub dir: PathBuf,
    pub config: PathBuf,
    pub http: String,
    pub master_id: String,
    client: reqwest::Client,
}

impl Master {
    /// Writes `config` to `dir/burst.toml` and starts a master on it.
    pub async fn start(dir: &Path, config: &str) -> anyhow::Result<Self> {
        let path = dir.join("burst.toml");
        std::fs::write(&path, config).context("failed to write the config")?;
        let mut master = Self {
            child: None,
            dir: dir.to_owned(),
            config: path,
            http: String::new(),
            master_id: String::new(),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()?,
        };
        master.spawn().await?;
        Ok(master)
    }

    fn state_dir(&self) -> PathBuf {
        self.dir.join("state")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("master.log")
    }

    /// Everything the master logged (both runs, across a restart).
    pub fn master_log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The master's last log lines, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = self.master_log();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    async fn spawn(&mut self) -> anyhow::Result<()> {
        let run_json = self.state_dir().join("run.json");
        let _ = std::fs::remove_file(&run_json);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())?;
        let child = Command::new(burst_bin()?)
            .args(["master", "--config"])
            .arg(&self.config)
            .env("RUST_LOG", "info,burst_providers=debug")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("failed to start burst master")?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(text) = std::fs::read_to_string(&run_json) {
                if let Ok(info) = serde_json::from_str::<Value>(&text) {
                    self.http = format!("http://{}", info["http"].as_str().unwrap_or_default());
                    self.master_id = info["master_id"].as_str().unwrap_or_default().to_owned();
                    return Ok(());
                }
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                bail!("burst master exited with {status}:\n{}", self.log_tail());
            }
            if Instant::now() > deadline {
                bail!("burst master not ready within 30s:\n{}", self.log_tail());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL: no shutdown, containers are left behind.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the master again on the same config and state.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.kill();
        self.spawn().await
    }

    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        let resp = self
            .client
            .get(format!("{}{path}", self.http))
            .send()
            .await?;
        let status = resp.status();
        let body: Value = resp.json().await?;
        if !status.is_success() {
            bail!("GET {path}: {status}: {body}");
        }
        Ok(body)
    }

    /// Submits `builder`; returns its build ids.
    pub async fn submit(&self, builder: &str) -> anyhow::Result<Vec<u64>> {
        let resp = self
            .client
            .post(format!("{}/api/v1/builds", self.http))
            .json(&serde_json::json!({ "builder": builder }))
            .send()
            .await?;
        let status = resp.status();
        let body: Value = resp.json().await?;
        if !status.is_success() {
            bail!("submit {builder}: {status}: {body}");
        }
        Ok(body["builds"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_u64).collect())
            .unwrap_or_default())
    }

    pub async fn build(&self, id: u64) -> anyhow::Result<Value> {
        self.get(&format!("/api/v1/builds/{id}")).await
    }

    /// Every ledger row, newest first.
    pub async fn instances(&self) -> anyhow::Result<Vec<Value>> {
        let rows = self.get("/api/v1/instances?limit=1000").await?;
        Ok(rows.as_array().cloned().unwrap_or_default())
    }

    pub async fn cancel(&self, id: u64) -> anyhow::Result<()> {
        self.client
            .post(format!("{}/api/v1/builds/{id}/cancel", self.http))
            .send()
            .await?;
        Ok(())
    }

    /// The build's whole log.
    pub async fn log(&self, id: u64) -> anyhow::Result<String> {
        let resp = self
            .client
            .get(format!("{}/api/v1/builds/{id}/log", self.http))
            .send()
            .await?;
        Ok(resp.text().await?)
    }

    /// Polls until `done(build)` holds; fails after `timeout` with the build
    /// and the master's log.
    pub async fn wait_build(
        &self,
        id: u64,
        timeout: Duration,
        what: &str,
        done: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let build = self.build(id).await?;
            if done(&build) {
                return Ok(build);
            }
            if Instant::now() > deadline {
                bail!(
                    "build {id}: {what} not reached within {timeout:?}; build: {build:#}\nmaster log:\n{}",
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits for the build to finish, whatever its outcome.
    pub async fn wait_finished(&self, id: u64, timeout: Duration) -> anyhow::Result<Value> {
        self.wait_build(id, timeout, "a final state", |b| {
            !matches!(b["state"].as_str(), Some("queued" | "running"))
        })
        .await
    }
}

impl Drop for Master {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `check` every 100 ms until it returns `Some`, for at most
/// `timeout`.
pub async fn eventually<T>(
    timeout: Duration,
    what: &str,
    mut check: impl FnMut() -> anyhow::Result<Option<T>>,
) -> anyhow::Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check()? {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("{what}: not within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
