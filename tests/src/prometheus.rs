//! A real Prometheus server (Debian's `prometheus` package) on a loopback
//! port, scraping a master every second with a bearer token, and queried
//! over its HTTP API; and `promtool check metrics`. A missing binary fails
//! the test, naming the setup step that installs it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::Value;
use tempfile::TempDir;

use crate::wait;

/// How long Prometheus may take to answer `/-/ready`.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
const SETUP: &str = "scripts/setup/10-apt.sh installs the Debian package `prometheus`";

/// `name` on PATH or in /usr/bin, else an error naming the setup step.
fn binary(name: &str) -> anyhow::Result<PathBuf> {
    let paths = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&paths)
        .chain([PathBuf::from("/usr/bin")])
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .with_context(|| format!("`{name}` not found: {SETUP}"))
}

pub struct Prometheus {
    child: Child,
    dir: TempDir,
    url: String,
}

/// One sample of an instant query: its labels and value.
#[derive(Debug, Clone)]
pub struct Sample {
    pub labels: serde_json::Map<String, Value>,
    pub value: f64,
}

impl Prometheus {
    /// Starts Prometheus scraping `target` (`host:port`) at `/metrics` every
    /// second, sending `token` as the bearer.
    pub async fn scrape(target: &str, token: &str) -> anyhow::Result<Prometheus> {
        let bin = binary("prometheus")?;
        let dir = tempfile::Builder::new()
            .prefix("burst-prometheus-")
            .tempdir()
            .context("failed to create Prometheus's directory")?;
        let token_file = dir.path().join("token");
        std::fs::write(&token_file, token).context("failed to write the scrape token")?;
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: burst\n    metrics_path: /metrics\n\
                 \x20   authorization:\n      type: Bearer\n      credentials_file: {}\n\
                 \x20   static_configs:\n      - targets: ['{target}']\n",
                token_file.display()
            ),
        )
        .context("failed to write prometheus.yml")?;
        // The port is free when chosen but may be taken before Prometheus
        // binds it: then it exits, and another port is tried.
        let mut last = String::new();
        for _ in 0..3 {
            match start_on(&bin, &config, dir.path(), free_port()?).await? {
                Started::Ready(child, url) => return Ok(Prometheus { child, dir, url }),
                Started::Exited(log) => last = log,
            }
        }
        bail!("prometheus did not start; its log:\n{last}")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// An instant query through `/api/v1/query`.
    pub async fn query(&self, expr: &str) -> anyhow::Result<Vec<Sample>> {
        let url = format!("{}/api/v1/query", self.url);
        let answer: Value = reqwest::Client::new()
            .get(&url)
            .query(&[("query", expr)])
            .send()
            .await
            .with_context(|| format!("GET {url}?query={expr}"))?
            .json()
            .await
            .with_context(|| format!("GET {url}?query={expr}: not JSON"))?;
        if answer["status"] != "success" {
            bail!("query {expr}: {answer}");
        }
        let results = answer["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        results
            .into_iter()
            .map(|r| {
                let value = r["value"][1]
                    .as_str()
                    .and_then(|v| v.parse().ok())
                    .with_context(|| format!("query {expr}: bad sample {r}"))?;
                Ok(Sample {
                    labels: r["metric"].as_object().cloned().unwrap_or_default(),
                    value,
                })
            })
            .collect()
    }

    /// Waits until `expr` evaluates to the single value `want`.
    pub async fn wait_value(&self, expr: &str, want: f64, timeout: Duration) -> anyhow::Result<()> {
        wait::until_seen(
            &format!("Prometheus to see {expr} == {want}"),
            timeout,
            || self.query(expr),
            |samples| samples.len() == 1 && samples[0].value == want,
        )
        .await
        .map(|_| ())
        .with_context(|| format!("prometheus log:\n{}", self.log()))
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value of the series `name{labels}` (written as the exposition
/// writes it) in a text exposition, if present.
pub fn sample(exposition: &str, series: &str) -> Option<f64> {
    exposition
        .lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

enum Started {
    Ready(Child, String),
    /// It exited before it was ready (a port taken meanwhile); its log.
    Exited(String),
}

/// Runs Prometheus on `port` until `/-/ready` answers or it exits.
async fn start_on(bin: &Path, config: &Path, dir: &Path, port: u16) -> anyhow::Result<Started> {
    let log_path = dir.join("prometheus.log");
    let log = std::fs::File::create(&log_path).context("failed to create Prometheus's log")?;
    let mut child = Command::new(bin)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("failed to start prometheus")?;
    let url = format!("http://127.0.0.1:{port}");
    let ready = format!("{url}/-/ready");
    let http = reqwest::Client::new();
    let deadline = std::time::Instant::now() + READY_TIMEOUT;
    loop {
        if child.try_wait()?.is_some() {
            return Ok(Started::Exited(
                std::fs::read_to_string(&log_path).unwrap_or_default(),
            ));
        }
        let answered = http.get(&ready).send().await;
        if answered.is_ok_and(|r| r.status().is_success()) {
            return Ok(Started::Ready(child, url));
        }
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "Prometheus was not ready within {READY_TIMEOUT:?}; its log:\n{}",
                std::fs::read_to_string(&log_path).unwrap_or_default()
            );
        }
        tokio::time::sleep(wait::POLL).await;
    }
}

/// The sum of every series of metric `name` (all label sets).
pub fn sum(exposition: &str, name: &str) -> f64 {
    exposition
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

/// A loopback port free a moment ago (Prometheus cannot be asked for the
/// port it bound to).
fn free_port() -> anyhow::Result<u16> {
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").context("failed to find a free port")?;
    Ok(listener.local_addr()?.port())
}

/// `promtool check metrics` on an exposition: its exit code and what it
/// said (nothing when the exposition is clean).
pub fn promtool_check(exposition: &str, scratch: &Path) -> anyhow::Result<crate::cmd::Output> {
    let bin = binary("promtool")?;
    let file = scratch.join("metrics.txt");
    std::fs::write(&file, exposition).context("failed to write the exposition")?;
    let start = std::time::Instant::now();
    let out = Command::new(bin)
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&file)?)
        .output()
        .context("failed to run promtool")?;
    Ok(crate::cmd::Output {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed: start.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_missing_binary_names_the_setup_step() {
        let err = super::binary("burst-no-such-prometheus").expect_err("missing");
        assert!(err.to_string().contains("scripts/setup/10-apt.sh"), "{err}");
    }
}
