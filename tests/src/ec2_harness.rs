//! The pieces of an EC2 end-to-end run on one machine: a real `burst`
//! master talking to moto, and a "boot" harness that plays EC2's part of
//! starting instances: it watches moto for new instances, decodes each one's
//! user-data and runs it (the real script, with burst-worker on hand), and
//! kills the "instance" when moto says it was terminated.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use aws_sdk_ec2::Client;
use serde_json::{json, Value};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::moto::fake_aws_env;

/// A workspace binary: in $BURST_BIN_DIR when set, else next to the running
/// test or bench executable.
pub fn binary(name: &str) -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("BURST_BIN_DIR") {
        let path = PathBuf::from(dir).join(name);
        if path.is_file() {
            return Ok(path);
        }
        bail!("{name} not found in BURST_BIN_DIR ({})", path.display());
    }
    let exe = std::env::current_exe().context("current_exe")?;
    let mut dir = exe.parent().map(Path::to_path_buf);
    // target/debug/deps/<test> or target/debug/<bench>.
    for _ in 0..2 {
        let Some(d) = dir else { break };
        let candidate = d.join(name);
        if candidate.is_file() {
            return Ok(candidate);
        }
        dir = d.parent().map(Path::to_path_buf);
    }
    bail!(
        "{name} not found next to {}: run `cargo build --workspace --bins`",
        exe.display()
    )
}

/// Polls `check` every 100 ms until it yields a value or `timeout` passes.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>>>,
{
    let deadline = Instant::now() + timeout;
    let mut last_err = None;
    loop {
        match check().await {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last_err = Some(e),
        }
        if Instant::now() > deadline {
            match last_err {
                Some(e) => {
                    bail!("timed out after {timeout:?} waiting for {what}: last error: {e:#}")
                }
                None => bail!("timed out after {timeout:?} waiting for {what}"),
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ---------------------------------------------------------------- booting

struct Booted {
    child: Option<Child>,
    pid: Option<u32>,
    killed: bool,
}

#[derive(Default)]
struct BootState {
    instances: BTreeMap<String, Booted>,
    errors: Vec<String>,
}

/// Runs every new instance's user-data as a process; see the module doc.
pub struct Booter {
    state: Arc<Mutex<BootState>>,
    task: JoinHandle<()>,
}

impl Booter {
    /// `client` talks to moto directly; `env` is added to every boot (e.g.
    /// `BURST_IMDS_POLL`); each instance gets a directory under `dir`.
    pub fn start(client: Client, dir: &Path, env: Vec<(String, String)>) -> Result<Booter> {
        let worker = binary("burst-worker")?;
        let state = Arc::new(Mutex::new(BootState::default()));
        let shared = state.clone();
        let dir = dir.to_owned();
        let task = tokio::spawn(async move {
            loop {
                if let Err(e) = boot_pass(&client, &dir, &worker, &env, &shared).await {
                    if let Ok(mut s) = shared.lock() {
                        s.errors.push(format!("{e:#}"));
                    }
                }
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
        });
        Ok(Booter { state, task })
    }

    /// Instances booted so far.
    pub fn booted(&self) -> Vec<String> {
        self.state
            .lock()
            .map(|s| s.instances.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Boot passes that failed (describe errors and the like).
    pub fn errors(&self) -> Vec<String> {
        self.state
            .lock()
            .map(|s| s.errors.clone())
            .unwrap_or_default()
    }
}

impl Drop for Booter {
    fn drop(&mut self) {
        self.task.abort();
        if let Ok(mut s) = self.state.lock() {
            for b in s.instances.values_mut() {
                kill_group(b);
            }
        }
    }
}

fn kill_group(b: &mut Booted) {
    if let (Some(pid), false) = (b.pid, b.killed) {
        if let Ok(pid) = i32::try_from(pid) {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        b.killed = true;
    }
    if let Some(child) = b.child.as_mut() {
        let _ = child.try_wait();
    }
}

async fn boot_pass(
    client: &Client,
    dir: &Path,
    worker: &Path,
    env: &[(String, String)],
    state: &Mutex<BootState>,
) -> Result<()> {
    let out = client
        .describe_instances()
        .send()
        .await
        .context("DescribeInstances")?;
    let mut alive = BTreeMap::new();
    for i in out.reservations().iter().flat_map(|r| r.instances()) {
        let (Some(id), Some(st)) = (i.instance_id(), i.state().and_then(|s| s.name())) else {
            continue;
        };
        alive.insert(id.to_owned(), matches!(st.as_str(), "pending" | "running"));
    }
    let new: Vec<String> = {
        let s = state.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
        alive
            .iter()
            .filter(|(id, up)| **up && !s.instances.contains_key(*id))
            .map(|(id, _)| id.clone())
            .collect()
    };
    for id in new {
        let attr = client
            .describe_instance_attribute()
            .instance_id(&id)
            .attribute(aws_sdk_ec2::types::InstanceAttributeName::UserData)
            .send()
            .await
            .with_context(|| format!("DescribeInstanceAttribute userData of {id}"))?;
        let booted = match attr.user_data().and_then(|u| u.value()) {
            // Not launched by burst (a test's own instance): nothing to run.
            None => Booted {
                child: None,
                pid: None,
                killed: true,
            },
            Some(b64) => spawn_boot(dir, worker, env, &id, b64)?,
        };
        if let Ok(mut s) = state.lock() {
            s.instances.insert(id, booted);
        }
    }
    // Terminated in moto: the machine is gone, and so is its worker.
    if let Ok(mut s) = state.lock() {
        for (id, b) in s.instances.iter_mut() {
            if !alive.get(id).copied().unwrap_or(false) {
                kill_group(b);
            } else if let Some(child) = b.child.as_mut() {
                let _ = child.try_wait();
            }
        }
    }
    Ok(())
}

fn spawn_boot(
    dir: &Path,
    worker: &Path,
    env: &[(String, String)],
    id: &str,
    b64: &str,
) -> Result<Booted> {
    let script = aws_smithy_types::base64::decode(b64)
        .with_context(|| format!("user-data of {id} is not base64"))?;
    let home = dir.join(id);
    std::fs::create_dir_all(home.join("work"))?;
    let script_path = home.join("user-data.sh");
    std::fs::write(&script_path, &script)?;
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(home.join("boot.log"))?;
    let mut cmd = Command::new("sh");
    cmd.arg(&script_path)
        .current_dir(&home)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", &home)
        .env("BURST_WORKER_BIN", worker)
        .env("BURST_WORK_DIR", home.join("work"))
        .env("RUST_LOG", "info")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        .kill_on_drop(true);
    let child = cmd.spawn().with_context(|| format!("boot {id}"))?;
    let pid = child.id();
    Ok(Booted {
        child: Some(child),
        pid,
        killed: false,
    })
}

// ---------------------------------------------------------------- master

/// A `burst master` process with an EC2 pool pointed at `endpoint`.
pub struct Ec2Master {
    dir: PathBuf,
    config: PathBuf,
    endpoint: String,
    child: Option<Child>,
    pub http: String,
    pub master_id: String,
    client: reqwest::Client,
}

impl Ec2Master {
    /// Writes `config` (which must use `{STATE}` for its state_dir) and starts.
    pub async fn start(dir: &Path, config: &str, endpoint: &str) -> Result<Ec2Master> {
        let state = dir.join("state");
        let path = dir.join("burst.toml");
        std::fs::write(
            &path,
            config.replace("{STATE}", &state.display().to_string()),
        )?;
        let mut m = Ec2Master {
            dir: dir.to_owned(),
            config: path,
            endpoint: endpoint.to_owned(),
            child: None,
            http: String::new(),
            master_id: String::new(),
            client: reqwest::Client::new(),
        };
        m.spawn().await?;
        Ok(m)
    }

    async fn spawn(&mut self) -> Result<()> {
        let burst = binary("burst")?;
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("master.log"))?;
        let child = Command::new(&burst)
            .args(["master", "--config"])
            .arg(&self.config)
            .current_dir(&self.dir)
            .envs(fake_aws_env(&self.endpoint))
            .env("RUST_LOG", "info,aws=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("start {}", burst.display()))?;
        let pid = child.id().context("master pid")?;
        self.child = Some(child);
        let run_json = self.dir.join("state/run.json");
        let info: Value = wait_for("the master's run.json", Duration::from_secs(60), || {
            let run_json = run_json.clone();
            async move {
                let Ok(text) = std::fs::read_to_string(&run_json) else {
                    return Ok(None);
                };
                let v: Value = serde_json::from_str(&text)?;
                Ok((v["pid"].as_u64() == Some(u64::from(pid))).then_some(v))
            }
        })
        .await
        .with_context(|| format!("master log:\n{}", self.log()))?;
        self.http = format!("http://{}", info["http"].as_str().context("http")?);
        self.master_id = info["master_id"].as_str().context("master_id")?.to_owned();
        Ok(())
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("master.log")).unwrap_or_default()
    }

    /// SIGKILL: no shutdown, no cleanup, as in a crash.
    pub async fn sigkill(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            child.start_kill()?;
            tokio::time::timeout(Duration::from_secs(10), child.wait()).await??;
        }
        Ok(())
    }

    pub async fn restart(&mut self) -> Result<()> {
        self.sigkill().await?;
        self.spawn().await
    }

    pub async fn get(&self, path: &str) -> Result<Value> {
        let resp = self
            .client
            .get(format!("{}{path}", self.http))
            .timeout(Duration::from_secs(10))
            .send()
            .await?;
        let status = resp.status();
        let body: Value = resp.json().await?;
        if !status.is_success() {
            bail!("GET {path}: {status}: {body}");
        }
        Ok(body)
    }

    /// Submits `builder`; returns the build ids.
    pub async fn submit(&self, builder: &str) -> Result<Vec<i64>> {
        let resp = self
            .client
            .post(format!("{}/api/v1/builds", self.http))
            .json(&json!({ "builder": builder }))
            .timeout(Duration::from_secs(10))
            .send()
            .await?;
        let status = resp.status();
        let body: Value = resp.json().await?;
        if !status.is_success() {
            bail!("submit {builder}: {status}: {body}");
        }
        Ok(body["builds"]
            .as_array()
            .context("builds")?
            .iter()
            .filter_map(Value::as_i64)
            .collect())
    }

    pub async fn build(&self, id: i64) -> Result<Value> {
        self.get(&format!("/api/v1/builds/{id}")).await
    }

    /// Waits until the build has finished; returns it.
    pub async fn wait_finished(&self, id: i64, timeout: Duration) -> Result<Value> {
        wait_for(&format!("build {id} to finish"), timeout, || async move {
            let b = self.build(id).await?;
            let done = !matches!(b["state"].as_str(), Some("queued" | "running"));
            Ok(done.then_some(b))
        })
        .await
        .with_context(|| format!("master log tail:\n{}", tail(&self.log(), 40)))
    }

    /// The whole ledger, newest first.
    pub async fn instances(&self) -> Result<Vec<Value>> {
        let v = self.get("/api/v1/instances?limit=1000").await?;
        Ok(v.as_array().cloned().unwrap_or_default())
    }

    pub async fn cli(&self, args: &[&str]) -> Result<std::process::Output> {
        let out = Command::new(binary("burst")?)
            .args(args)
            .env("BURST_URL", &self.http)
            .stdin(Stdio::null())
            .output();
        Ok(tokio::time::timeout(Duration::from_secs(30), out).await??)
    }
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
