//! Command line and environment: what the provider that launched us said.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Result};
use burst_common::launch_env;
use clap::Parser;

/// `burst-worker`'s flags. Every flag can also come from the environment,
/// which is how providers pass them (the token in particular: flags show up
/// in `ps`); those names are the launch contract in `burst_common::launch_env`.
#[derive(Parser)]
#[command(
    name = "burst-worker",
    version,
    about = "burst's worker agent: dials the master and runs build steps"
)]
pub struct Args {
    /// The master's gRPC address, e.g. http://127.0.0.1:8481.
    #[arg(long, env = launch_env::MASTER_URL)]
    pub master_url: String,

    /// The pin (sha256:…) of the TLS master's certificate: its CA's, or its
    /// own. Required for an https:// master unless --master-ca is given.
    #[arg(long, env = launch_env::MASTER_PIN)]
    pub master_pin: Option<String>,

    /// A PEM file of CA certificates to check an https:// master against
    /// (names are checked too), instead of a pin.
    #[arg(long, env = "BURST_MASTER_CA")]
    pub master_ca: Option<PathBuf>,

    /// This worker's id, as the master knows it.
    #[arg(long, env = launch_env::WORKER_ID)]
    pub worker_id: String,

    /// One-time launch token proving the master launched this worker.
    #[arg(long, env = launch_env::TOKEN, hide_env_values = true)]
    pub token: String,

    /// Comma-separated labels the master matches builders against.
    #[arg(long, env = launch_env::LABELS, value_delimiter = ',')]
    pub labels: Vec<String>,

    /// How many steps to run at once.
    #[arg(long, env = "BURST_CAPACITY", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub capacity: u32,

    /// Where builds get their directories [default: <temp dir>/burst-work/<worker-id>].
    #[arg(long, env = launch_env::WORK_DIR)]
    pub work_dir: Option<PathBuf>,

    /// Exit (code 3) after this long without a master, so an orphaned cloud
    /// machine does not run forever.
    #[arg(long, env = "BURST_MAX_DISCONNECTED", default_value = "10m",
          value_parser = humantime::parse_duration)]
    pub max_disconnected: Duration,

    /// First delay before reconnecting; doubles (with jitter) up to --reconnect-max.
    #[arg(long, env = "BURST_RECONNECT_MIN", default_value = "200ms",
          value_parser = humantime::parse_duration)]
    pub reconnect_min: Duration,

    /// Longest delay between reconnect attempts.
    #[arg(long, env = "BURST_RECONNECT_MAX", default_value = "10s",
          value_parser = humantime::parse_duration)]
    pub reconnect_max: Duration,

    /// Instance metadata service to poll for spot interruption notices, e.g.
    /// http://169.254.169.254 (EC2 user-data sets it). Unset: no polling.
    #[arg(long, env = launch_env::IMDS_URL)]
    pub imds_url: Option<String>,

    /// How often to poll the metadata service.
    #[arg(long, env = "BURST_IMDS_POLL", default_value = "5s",
          value_parser = humantime::parse_duration)]
    pub imds_poll: Duration,
}

/// Everything the worker needs to run, resolved from [`Args`].
#[derive(Clone)]
pub struct Config {
    pub master_url: String,
    /// How an https:// master is checked; None for http://.
    pub trust: Option<crate::tls::Trust>,
    pub worker_id: String,
    /// The launch token; spent by the first `Welcome`.
    pub token: String,
    pub labels: Vec<String>,
    pub capacity: u32,
    pub work_dir: PathBuf,
    pub max_disconnected: Duration,
    pub reconnect_min: Duration,
    pub reconnect_max: Duration,
    /// Where to watch for spot interruption notices; None = nowhere.
    pub imds_url: Option<String>,
    pub imds_poll: Duration,
}

impl Args {
    /// Checks the flags and fills in defaults.
    pub fn into_config(self) -> Result<Config> {
        check_worker_id(&self.worker_id)?;
        let trust = crate::tls::trust_for(
            &self.master_url,
            self.master_pin.as_deref(),
            self.master_ca.as_deref(),
        )?;
        let work_dir = match self.work_dir {
            Some(dir) => dir,
            None => default_work_dir(&std::env::temp_dir(), &self.worker_id),
        };
        let labels = self
            .labels
            .iter()
            .map(|l| l.trim())
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect();
        Ok(Config {
            master_url: self.master_url,
            trust,
            worker_id: self.worker_id,
            token: self.token,
            labels,
            capacity: self.capacity.max(1),
            work_dir,
            max_disconnected: self.max_disconnected,
            reconnect_min: self.reconnect_min,
            reconnect_max: self.reconnect_max.max(self.reconnect_min),
            imds_url: self.imds_url.filter(|u| !u.is_empty()),
            imds_poll: self.imds_poll.max(std::time::Duration::from_millis(10)),
        })
    }
}

/// `<temp dir>/burst-work/<worker-id>`.
pub fn default_work_dir(temp_dir: &Path, worker_id: &str) -> PathBuf {
    temp_dir.join("burst-work").join(worker_id)
}

/// The id names the default work dir, so it must be one plain path component.
fn check_worker_id(id: &str) -> Result<()> {
    if id.is_empty() || id == "." || id == ".." || id.contains(['/', '\\', ':']) {
        bail!("failed to accept worker id {id:?}: it must be non-empty and contain no path separators");
    }
    Ok(())
}

// Hand-written so the token never reaches a log line.
impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("master_url", &self.master_url)
            .field("trust", &self.trust)
            .field("worker_id", &self.worker_id)
            .field("token", &"<redacted>")
            .field("labels", &self.labels)
            .field("capacity", &self.capacity)
            .field("work_dir", &self.work_dir)
            .field("max_disconnected", &self.max_disconnected)
            .field("reconnect_min", &self.reconnect_min)
            .field("reconnect_max", &self.reconnect_max)
            .field("imds_url", &self.imds_url)
            .field("imds_poll", &self.imds_poll)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(extra: &[&str]) -> Result<Config> {
        let mut argv = vec![
            "burst-worker",
            "--master-url",
            "http://127.0.0.1:1",
            "--worker-id",
            "w1",
            "--token",
            "secret",
        ];
        argv.extend_from_slice(extra);
        Args::try_parse_from(argv)?.into_config()
    }

    #[test]
    fn defaults() {
        let c = parse(&[]).expect("parse");
        assert_eq!(c.capacity, 1);
        assert_eq!(c.max_disconnected, Duration::from_secs(600));
        assert_eq!(c.reconnect_min, Duration::from_millis(200));
        assert_eq!(c.reconnect_max, Duration::from_secs(10));
        assert_eq!(
            c.work_dir,
            std::env::temp_dir().join("burst-work").join("w1")
        );
        assert!(c.labels.is_empty());
    }

    #[test]
    fn labels_split_on_commas() {
        let c = parse(&["--labels", "linux, x86_64,,docker"]).expect("parse");
        assert_eq!(c.labels, ["linux", "x86_64", "docker"]);
    }

    #[test]
    fn debug_hides_token() {
        let c = parse(&[]).expect("parse");
        assert!(!format!("{c:?}").contains("secret"));
    }

    #[test]
    fn rejects_bad_worker_id_and_capacity() {
        assert!(Args::try_parse_from([
            "burst-worker",
            "--master-url",
            "x",
            "--worker-id",
            "../x",
            "--token",
            "t"
        ])
        .expect("parse")
        .into_config()
        .is_err());
        assert!(parse(&["--capacity", "0"]).is_err());
    }
}
