//! A real `burst master` process on a fresh state directory, and everything
//! a test does with it. Dropping it kills the master and every process that
//! carries its master id, so no test leaks workers, even when it fails.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use burst_master::daemon::RunInfo;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tempfile::TempDir;

use crate::bins::Bins;
use crate::{procs, wait};

/// How long a master may take to write run.json and answer /healthz.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Default deadline of a CLI command.
pub const CLI_TIMEOUT: Duration = Duration::from_secs(60);
/// At most this much of the master's log is printed when a test ends.
const LOG_TAIL: usize = 64 * 1024;

/// How a master is stopped when its [`Master`] is dropped.
#[derive(Debug, Clone, Copy)]
enum Stop {
    /// SIGKILL at once; the sweep by master id removes its workers.
    Kill,
    /// SIGTERM, so the master stops its workers through their provider
    /// (remote ssh workers, wine jobs), then SIGKILL after the bound.
    Graceful(Duration),
}

/// How to start a master: its config (whole, or a `[master]` section plus
/// sections such as a provider fixture's pool), and extra environment.
/// The state dir and listen addresses always come from the environment.
pub struct MasterBuilder {
    config_file: Option<PathBuf>,
    master_lines: Vec<String>,
    sections: Vec<String>,
    env: Vec<(String, String)>,
    bins: Option<Bins>,
    quiet: bool,
    rust_log: String,
    stop: Stop,
    nofile: Option<u64>,
    /// Arguments after `burst master --config FILE`.
    args: Vec<String>,
    ca_file: Option<PathBuf>,
}

impl Default for MasterBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl MasterBuilder {
    /// An empty config, to be filled with [`MasterBuilder::master_toml`] and
    /// [`MasterBuilder::section`].
    pub fn new() -> Self {
        Self {
            config_file: None,
            master_lines: Vec::new(),
            sections: Vec::new(),
            env: Vec::new(),
            bins: None,
            quiet: false,
            rust_log: "info".to_owned(),
            stop: Stop::Kill,
            nofile: None,
            args: Vec::new(),
            ca_file: None,
        }
    }

    /// Config text, written to `burst.toml` in the master's directory.
    pub fn config(text: &str) -> Self {
        Self::new().section(text)
    }

    /// An existing config file, used unchanged (the state dir and listen
    /// addresses still come from environment overrides).
    pub fn config_file(path: impl Into<PathBuf>) -> Self {
        Self {
            config_file: Some(path.into()),
            ..Self::new()
        }
    }

    /// Lines of the `[master]` section (e.g. `heartbeat_interval = "1s"`).
    pub fn master_toml(mut self, lines: &str) -> Self {
        self.master_lines.push(lines.to_owned());
        self
    }

    /// TOML appended to the config: a pool section from a provider
    /// fixture, `[[builders]]`, or a whole config.
    pub fn section(mut self, toml: &str) -> Self {
        self.sections.push(toml.to_owned());
        self
    }

    /// An extra environment variable for the master (e.g. a `BURST__…`
    /// config override).
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    pub fn envs(mut self, vars: impl IntoIterator<Item = (String, String)>) -> Self {
        self.env.extend(vars);
        self
    }

    /// Where the master listens for workers (default `127.0.0.1:0`; Docker
    /// containers need an address their bridge reaches).
    pub fn grpc_listen(self, addr: &str) -> Self {
        self.env("BURST__MASTER__GRPC_LISTEN", addr)
    }

    /// Listens for workers on a port picked now, kept across `restart()`,
    /// so that workers of the killed master can find the restarted one.
    pub fn same_grpc_port_on_restart(self) -> anyhow::Result<Self> {
        let port = crate::moto::free_port()?;
        Ok(self.grpc_listen(&format!("127.0.0.1:{port}")))
    }

    /// `burst master --log-format FORMAT` ("text" or "json").
    pub fn log_format(mut self, format: &str) -> Self {
        self.args
            .extend(["--log-format".to_owned(), format.to_owned()]);
        self
    }

    /// Starts the master with `NO_COLOR` empty, which means unset
    /// (no-color.org), as an operator's shell would: a test then sees
    /// whether it colours output that is not a terminal.
    pub fn colours_allowed(mut self) -> Self {
        self.env.push(("NO_COLOR".to_owned(), String::new()));
        self
    }

    /// `master.tls = "self-signed"`: both endpoints serve TLS; the harness
    /// and [`Master::cli`] trust the generated CA, workers get the pin.
    pub fn tls_self_signed(self) -> Self {
        self.master_toml("tls = \"self-signed\"")
    }

    /// Trust this CA for the master's certificate (a master serving
    /// certificate files): the harness's client and [`Master::cli`] use it.
    pub fn trust_ca(mut self, ca: &Path) -> Self {
        self.ca_file = Some(ca.to_owned());
        self
    }

    /// The master's `RUST_LOG` (default `info`).
    pub fn rust_log(mut self, filter: &str) -> Self {
        filter.clone_into(&mut self.rust_log);
        self
    }

    /// On drop, SIGTERM the master and give it `bound` to stop its workers
    /// itself before the SIGKILL and the sweep.
    pub fn stop_gracefully(mut self, bound: Duration) -> Self {
        self.stop = Stop::Graceful(bound);
        self
    }

    pub fn bins(mut self, bins: Bins) -> Self {
        self.bins = Some(bins);
        self
    }

    /// Do not print the master's log when it is dropped (tests want it,
    /// captured and shown on failure; the benchmark does not).
    pub fn quiet(mut self) -> Self {
        self.quiet = true;
        self
    }

    /// Starts the master under `prlimit --nofile=N:N` (soft and hard), as a
    /// host with few descriptors would (first start only, not restarts).
    pub fn nofile_limit(mut self, n: u64) -> Self {
        self.nofile = Some(n);
        self
    }

    /// The config text this builder writes (none for `config_file`).
    fn text(&self) -> String {
        let mut text = String::new();
        if !self.master_lines.is_empty() {
            text.push_str("[master]\n");
            for lines in &self.master_lines {
                text.push_str(lines.trim_end());
                text.push('\n');
            }
            text.push('\n');
        }
        for section in &self.sections {
            text.push_str(section.trim_end());
            text.push_str("\n\n");
        }
        text
    }

    pub async fn start(self) -> anyhow::Result<Master> {
        let bins = match self.bins.clone() {
            Some(b) => b,
            None => Bins::locate()?,
        };
        let dir = tempfile::Builder::new()
            .prefix("burst-e2e-")
            .tempdir()
            .context("failed to create the master's temp dir")?;
        let config_path = match &self.config_file {
            None => {
                let path = dir.path().join("burst.toml");
                std::fs::write(&path, self.text()).context("failed to write the config")?;
                path
            }
            Some(path) => path.clone(),
        };
        let mut env = vec![
            (
                "BURST__MASTER__STATE_DIR".to_owned(),
                dir.path().join("state").display().to_string(),
            ),
            (
                "BURST__MASTER__HTTP_LISTEN".to_owned(),
                "127.0.0.1:0".to_owned(),
            ),
            (
                "BURST__MASTER__GRPC_LISTEN".to_owned(),
                "127.0.0.1:0".to_owned(),
            ),
            ("RUST_LOG".to_owned(), self.rust_log.clone()),
            ("NO_COLOR".to_owned(), "1".to_owned()),
        ];
        // Later entries win: the builder's own overrides come last.
        env.extend(self.env);
        let log_path = dir.path().join("master.log");
        let mut cmd = master_command(&bins, &config_path, dir.path(), &env, &self.args);
        if let Some(n) = self.nofile {
            cmd = under_prlimit(&cmd, n);
        }
        let state_dir = dir.path().join("state");
        let extra_ca = self.ca_file.clone();
        let (child, info, http) =
            match spawn_master(cmd, &state_dir, &log_path, extra_ca.as_deref()).await {
                Ok(started) => started,
                Err(e) => {
                    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                    let config = std::fs::read_to_string(&config_path).unwrap_or_default();
                    return Err(e.context(format!(
                        "master log:\n{}\nconfig:\n{config}",
                        tail(&log, LOG_TAIL)
                    )));
                }
            };
        let master = Master {
            bins,
            log_path,
            dir,
            config_path,
            env,
            args: self.args,
            child: Some(child),
            info,
            http,
            quiet: self.quiet,
            stop: self.stop,
            extra_ca,
        };
        Ok(master)
    }
}

/// A running (or stopped, between restarts) `burst master`.
pub struct Master {
    pub bins: Bins,
    dir: TempDir,
    config_path: PathBuf,
    env: Vec<(String, String)>,
    args: Vec<String>,
    log_path: PathBuf,
    child: Option<Child>,
    /// From the latest start's run.json.
    info: RunInfo,
    pub(crate) http: reqwest::Client,
    quiet: bool,
    stop: Stop,
    /// A CA given with [`MasterBuilder::trust_ca`].
    extra_ca: Option<PathBuf>,
}

impl Master {
    /// A master on `config` with default settings.
    pub async fn start(config: &str) -> anyhow::Result<Master> {
        MasterBuilder::config(config).start().await
    }

    /// The master's own temp directory (config, log, state).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// The admin API token the master wrote to `<state_dir>/admin.token`
    /// (empty when it has none there); every harness request sends it.
    pub fn admin_token(&self) -> String {
        std::fs::read_to_string(self.state_dir().join("admin.token"))
            .map(|t| t.trim().to_owned())
            .unwrap_or_default()
    }

    fn info(&self) -> &RunInfo {
        &self.info
    }

    /// The HTTP API's base URL (`https://` for a TLS master).
    pub fn url(&self) -> String {
        self.info().api_url()
    }

    /// The certificate pin workers of a TLS master are given.
    pub fn pin(&self) -> Option<String> {
        self.info().tls.as_ref().map(|t| t.pin.clone())
    }

    /// The CA a client of this TLS master trusts: the generated one of a
    /// self-signed master, else the one given to [`MasterBuilder::trust_ca`].
    pub fn ca_file(&self) -> Option<PathBuf> {
        self.info()
            .tls
            .as_ref()
            .and_then(|t| t.ca_file.clone())
            .or_else(|| self.extra_ca.clone())
    }

    /// The URL workers dial.
    pub fn worker_url(&self) -> String {
        self.info().advertise_url.clone()
    }

    pub fn master_id(&self) -> String {
        self.info().master_id.clone()
    }

    pub fn pid(&self) -> i32 {
        self.info().pid as i32
    }

    /// Everything the master (and its local workers) wrote to stderr,
    /// across restarts.
    pub fn log(&self) -> String {
        std::fs::read(&self.log_path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// The last 40 lines of [`Master::log`], for failure messages.
    pub fn log_tail(&self) -> String {
        last_lines(&self.log(), 40)
    }

    /// Processes (workers and their steps) that carry this master's id.
    pub fn processes(&self) -> Vec<procs::BurstProcess> {
        procs::with_master_id(&self.master_id())
    }

    /// The `burst-worker` agents among [`Master::processes`].
    pub fn worker_processes(&self) -> Vec<procs::BurstProcess> {
        self.processes()
            .into_iter()
            .filter(|p| p.is_worker_agent())
            .collect()
    }

    /// A `burst` CLI command aimed at this master, for tests that drive the
    /// process themselves.
    pub fn cli_command(&self, args: &[&str]) -> tokio::process::Command {
        self.cli_command_at(&self.url(), args)
    }

    /// [`Master::cli_command`] aimed at `url`, e.g. a proxy in front of it.
    pub fn cli_command_at(&self, url: &str, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(&self.bins.burst);
        cmd.arg("--url").arg(url).args(args);
        clean_env(&mut cmd);
        // As the admin: tests of other roles set BURST_TOKEN again.
        cmd.env("BURST_TOKEN", self.admin_token());
        if let Some(ca) = self.ca_file() {
            cmd.env("BURST_CA_FILE", ca);
        }
        cmd.current_dir(self.dir.path());
        cmd
    }

    /// Runs the `burst` CLI with `--url` of this master.
    pub async fn cli(&self, args: &[&str]) -> anyhow::Result<crate::cmd::Output> {
        self.cli_timeout(args, CLI_TIMEOUT).await
    }

    /// [`Master::cli`] with `input` on the CLI's stdin.
    pub async fn cli_with_stdin(
        &self,
        args: &[&str],
        input: &[u8],
    ) -> anyhow::Result<crate::cmd::Output> {
        crate::cmd::run_with_stdin(self.cli_command(args), Some(input), CLI_TIMEOUT).await
    }

    pub async fn cli_timeout(
        &self,
        args: &[&str],
        timeout: Duration,
    ) -> anyhow::Result<crate::cmd::Output> {
        crate::cmd::run(self.cli_command(args), timeout).await
    }

    /// The master process ended (reaped here); true also once stopped here.
    pub fn has_exited(&mut self) -> bool {
        self.child
            .as_mut()
            .is_none_or(|c| c.try_wait().ok().flatten().is_some())
    }

    /// SIGKILLs the master alone (its workers live on) and reaps it.
    pub fn sigkill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERMs the master and waits at most `timeout` for it to exit.
    pub async fn sigterm_and_wait(&mut self, timeout: Duration) -> anyhow::Result<ExitStatus> {
        let Some(child) = self.child.as_mut() else {
            bail!("the master is not running");
        };
        kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM)
            .context("failed to send SIGTERM to the master")?;
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().context("failed to wait for the master")? {
                self.child = None;
                return Ok(status);
            }
            if start.elapsed() >= timeout {
                bail!("the master did not exit within {timeout:?} of SIGTERM");
            }
            tokio::time::sleep(wait::POLL).await;
        }
    }

    /// Rewrites the master's config file with `edit` (for a restart on a
    /// changed config, e.g. a renamed pool).
    pub fn edit_config(&self, edit: impl FnOnce(&str) -> String) -> anyhow::Result<()> {
        let path = &self.config_path;
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("failed to read {}", path.display()))?;
        std::fs::write(path, edit(&text))
            .with_context(|| format!("failed to write {}", path.display()))
    }

    /// Starts the master again on the same config and state directory
    /// (after [`Master::sigkill`] or [`Master::sigterm_and_wait`]).
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        if self.child.is_some() {
            bail!("restart: the master is still running; stop it first");
        }
        self.spawn().await
    }

    /// Starts the master again and expects it to refuse to run: waits at
    /// most `timeout` for it to exit; its status and what it wrote.
    pub async fn restart_expect_exit(
        &mut self,
        timeout: Duration,
    ) -> anyhow::Result<(ExitStatus, String)> {
        if self.child.is_some() {
            bail!("restart: the master is still running; stop it first");
        }
        let before = self.log().len();
        let mut cmd = master_command(
            &self.bins,
            &self.config_path,
            self.dir.path(),
            &self.env,
            &self.args,
        );
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .context("failed to open the master's log file")?;
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(log);
        let mut child = cmd.spawn().context("failed to start burst master")?;
        let exited = wait::until("the master to exit", timeout, || {
            let status = child.try_wait().ok().flatten();
            async move { Ok(status) }
        })
        .await;
        match exited {
            Ok(status) => Ok((status, self.log()[before..].to_owned())),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(e.context(format!("master log:\n{}", tail(&self.log(), LOG_TAIL))))
            }
        }
    }

    async fn spawn(&mut self) -> anyhow::Result<()> {
        let cmd = master_command(
            &self.bins,
            &self.config_path,
            self.dir.path(),
            &self.env,
            &self.args,
        );
        let (child, info, http) = spawn_master(
            cmd,
            &self.state_dir(),
            &self.log_path,
            self.extra_ca.as_deref(),
        )
        .await
        .map_err(|e| e.context(format!("master log:\n{}", tail(&self.log(), LOG_TAIL))))?;
        self.child = Some(child);
        self.info = info;
        self.http = http;
        Ok(())
    }
}

/// `burst master --config FILE ARGS…` in `dir`, with only the given
/// `BURST…` variables.
fn master_command(
    bins: &Bins,
    config_path: &Path,
    dir: &Path,
    env: &[(String, String)],
    args: &[String],
) -> std::process::Command {
    let mut cmd = std::process::Command::new(&bins.burst);
    cmd.arg("master")
        .arg("--config")
        .arg(config_path)
        .args(args)
        .current_dir(dir);
    for var in burst_vars() {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().map(|(k, v)| (k, v)));
    cmd
}

/// `cmd` run by `prlimit --nofile=N:N`, which execs it (same pid).
fn under_prlimit(cmd: &std::process::Command, n: u64) -> std::process::Command {
    let mut wrapped = std::process::Command::new("prlimit");
    wrapped
        .arg(format!("--nofile={n}:{n}"))
        .arg("--")
        .arg(cmd.get_program())
        .args(cmd.get_args());
    if let Some(dir) = cmd.get_current_dir() {
        wrapped.current_dir(dir);
    }
    for (key, value) in cmd.get_envs() {
        match value {
            Some(v) => wrapped.env(key, v),
            None => wrapped.env_remove(key),
        };
    }
    wrapped
}

/// Starts `cmd` (a `burst master`), logging to `log_path`, and waits for its
/// run.json and /healthz; the process is killed if it does not get there.
async fn spawn_master(
    mut cmd: std::process::Command,
    state_dir: &Path,
    log_path: &Path,
    extra_ca: Option<&Path>,
) -> anyhow::Result<(Child, RunInfo, reqwest::Client)> {
    let run_json = state_dir.join("run.json");
    // A SIGKILLed master leaves its run.json behind.
    let _ = std::fs::remove_file(&run_json);
    let mut log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)
        .context("failed to open the master's log file")?;
    let _ = writeln!(log, "=== e2e: starting burst master ===");
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(log);
    let mut child = cmd.spawn().context("failed to start burst master")?;
    match wait_ready(&mut child, &run_json, extra_ca).await {
        Ok((info, http)) => Ok((child, info, http)),
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            Err(e)
        }
    }
}

async fn wait_ready(
    child: &mut Child,
    run_json: &Path,
    extra_ca: Option<&Path>,
) -> anyhow::Result<(RunInfo, reqwest::Client)> {
    let pid = child.id();
    // An exit ends the wait at once (an error would only be retried).
    let ready = wait::until("the master's run.json", START_TIMEOUT, || {
        let exited = child.try_wait().ok().flatten();
        let info = std::fs::read(run_json)
            .ok()
            .and_then(|b| serde_json::from_slice::<RunInfo>(&b).ok())
            .filter(|i| i.pid == pid);
        async move {
            if let Some(status) = exited {
                return Ok(Some(Err(status)));
            }
            Ok(info.map(Ok))
        }
    })
    .await?;
    let info = match ready {
        Ok(info) => info,
        Err(status) => bail!("the master exited during startup ({status})"),
    };
    let http = http_client(&info, extra_ca)?;
    let health = format!("{}/healthz", info.api_url());
    wait::until("the master's /healthz", START_TIMEOUT, || {
        let req = http.get(&health).send();
        async move { Ok(req.await?.status().is_success().then_some(())) }
    })
    .await?;
    Ok((info, http))
}

/// The harness's client of the master's API; for a TLS master it trusts
/// the generated CA (or the one the test gave), and nothing else.
fn http_client(info: &RunInfo, extra_ca: Option<&Path>) -> anyhow::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(30));
    let generated = info.tls.as_ref().and_then(|t| t.ca_file.as_deref());
    if let Some(ca) = generated.or(extra_ca) {
        let pem = std::fs::read(ca).with_context(|| format!("failed to read {}", ca.display()))?;
        let cert =
            reqwest::Certificate::from_pem(&pem).context("failed to parse the master's CA")?;
        builder = builder
            .tls_built_in_root_certs(false)
            .add_root_certificate(cert);
    }
    builder.build().context("failed to build the HTTP client")
}

impl Drop for Master {
    fn drop(&mut self) {
        if let (Stop::Graceful(bound), Some(child)) = (self.stop, self.child.as_mut()) {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
            let start = Instant::now();
            while start.elapsed() < bound && matches!(child.try_wait(), Ok(None)) {
                std::thread::sleep(wait::POLL);
            }
        }
        self.sigkill();
        procs::kill_all_with_master_id(&self.info.master_id);
        if self.quiet {
            return;
        }
        // Captured by the test harness: shown only when the test fails.
        eprintln!(
            "--- burst master log ({}) ---\n{}\n--- end of master log ---",
            self.log_path.display(),
            tail(&self.log(), LOG_TAIL)
        );
    }
}

/// Names of `BURST…` variables in this process's environment, which must
/// not leak into the processes under test.
fn burst_vars() -> Vec<String> {
    std::env::vars_os()
        .filter_map(|(k, _)| k.into_string().ok())
        .filter(|k| k.to_uppercase().starts_with("BURST"))
        .collect()
}

fn clean_env(cmd: &mut tokio::process::Command) {
    for var in burst_vars() {
        cmd.env_remove(var);
    }
    cmd.env("NO_COLOR", "1");
}

/// The last `n` lines of `text`.
pub fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn tail(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}
