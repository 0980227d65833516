//! Command line and environment: what the provider that launched us said.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Result};
use burst_common::launch_env;
use clap::Parser;

/// `burst-worker`'s flags. Every flag can also come from the environment,
/// which is how providers pass them; those names are the launch contract in
/// `burst_common::launch_env`. The one-time launch token is in neither: it
/// comes on stdin or in a file that is deleted once read.
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

    /// Where to read the one-time launch token that proves the master
    /// launched this worker: `-` = the first line of stdin, else a file
    /// (mode 0600, deleted once read). Never on the command line or in the
    /// environment, where `ps` and `/proc` show it; the old BURST_TOKEN
    /// variable is still read when this is unset, then scrubbed.
    #[arg(long, env = launch_env::TOKEN_FILE, value_name = "PATH|-")]
    pub token_file: Option<PathBuf>,

    /// Run steps as this user (Unix; the worker must run as root). Steps
    /// then cannot read the worker's memory or environment.
    #[arg(long, env = launch_env::STEP_USER)]
    pub step_user: Option<String>,

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
    /// Who steps run as; `None` = the worker's own user.
    pub step_user: Option<crate::step_user::StepUser>,
    pub max_disconnected: Duration,
    pub reconnect_min: Duration,
    pub reconnect_max: Duration,
    /// Where to watch for spot interruption notices; None = nowhere.
    pub imds_url: Option<String>,
    pub imds_poll: Duration,
}

impl Args {
    /// Checks the flags, reads the launch token (`legacy_token`: the old
    /// `BURST_TOKEN` value, see [`crate::launch_token::scrub_environment`])
    /// and fills in defaults.
    pub fn into_config(self, legacy_token: Option<String>) -> Result<Config> {
        check_worker_id(&self.worker_id)?;
        let token = crate::launch_token::take(self.token_file.as_deref(), legacy_token)?;
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
        let step_user = match self.step_user.as_deref().filter(|u| !u.is_empty()) {
            Some(name) => Some(crate::step_user::resolve(name)?),
            None => None,
        };
        Ok(Config {
            master_url: self.master_url,
            trust,
            worker_id: self.worker_id,
            token,
            labels,
            capacity: self.capacity.max(1),
            work_dir,
            step_user,
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
            .field("step_user", &self.step_user)
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
        ];
        argv.extend_from_slice(extra);
        Args::try_parse_from(argv)?.into_config(Some("secret".into()))
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
        assert!(Args::try_parse_from(
            ["burst-worker", "--master-url", "x", "--worker-id", "../x",]
        )
        .expect("parse")
        .into_config(Some("t".into()))
        .is_err());
        assert!(parse(&["--capacity", "0"]).is_err());
    }

    #[test]
    fn the_token_never_comes_from_a_flag() {
        assert!(parse(&["--token", "x"]).is_err());
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("t");
        std::fs::write(&file, "from-file\n").expect("write");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        }
        let file_arg = file.to_string_lossy().into_owned();
        let c = Args::try_parse_from([
            "burst-worker",
            "--master-url",
            "x",
            "--worker-id",
            "w1",
            "--token-file",
            &file_arg,
        ])
        .expect("parse")
        .into_config(Some("legacy".into()))
        .expect("config");
        assert_eq!(c.token, "from-file");
        assert!(!file.exists());
    }
}
