//! moto in server mode on loopback: the EC2 API for the ec2 provider's tests.
//! Installed by scripts/setup/30-moto.sh; a missing moto fails the test.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tokio::process::{Child, Command};

/// Region every EC2 test uses.
pub const REGION: &str = "us-east-1";

/// Environment that keeps an AWS SDK off real AWS and off 169.254.169.254.
pub fn fake_aws_env(endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
        ("AWS_REGION", REGION.to_owned()),
        ("AWS_DEFAULT_REGION", REGION.to_owned()),
        ("AWS_ENDPOINT_URL", endpoint.to_owned()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
        ("AWS_CONFIG_FILE", "/dev/null".to_owned()),
        ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null".to_owned()),
    ]
}

/// Sets the same variables in this process (before any client is built).
pub fn use_fake_aws_env(endpoint: &str) {
    for (k, v) in fake_aws_env(endpoint) {
        std::env::set_var(k, v);
    }
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// `moto_server`: $BURST_MOTO_SERVER, else `.venv-moto/bin/moto_server`.
pub fn moto_server_path() -> Result<PathBuf> {
    let path = std::env::var_os("BURST_MOTO_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv-moto/bin/moto_server"));
    if !path.is_file() {
        bail!(
            "moto is missing ({} not found): run scripts/setup/30-moto.sh",
            path.display()
        );
    }
    Ok(path)
}

/// A moto server; killed on drop.
pub struct Moto {
    pub url: String,
    child: Child,
}

impl Moto {
    pub async fn start() -> Result<Moto> {
        let bin = moto_server_path()?;
        let port = free_port()?;
        let child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("failed to start {}", bin.display()))?;
        let url = format!("http://127.0.0.1:{port}");
        let mut moto = Moto { url, child };
        let http = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let ok = http
                .get(format!("{}/moto-api/", moto.url))
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ok {
                return Ok(moto);
            }
            if let Ok(Some(status)) = moto.child.try_wait() {
                bail!("moto_server exited at start: {status} (run scripts/setup/30-moto.sh)");
            }
            if tokio::time::Instant::now() > deadline {
                bail!("moto_server did not answer on {} within 60s", moto.url);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A port free right now on 127.0.0.1.
pub fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("failed to bind")?;
    Ok(l.local_addr()?.port())
}

/// An EC2 client for `endpoint` (moto, or the fault proxy before it).
pub async fn ec2_client(endpoint: &str) -> aws_sdk_ec2::Client {
    use_fake_aws_env(endpoint);
    burst_providers::ec2::build_client(REGION, Some(endpoint)).await
}

/// Instance ids in `states` that carry tag `key` (any value).
pub async fn instances_with_tag(
    client: &aws_sdk_ec2::Client,
    key: &str,
    states: &[&str],
) -> Result<Vec<(String, String)>> {
    use aws_sdk_ec2::types::Filter;
    let out = client
        .describe_instances()
        .filters(Filter::builder().name("tag-key").values(key).build())
        .filters(
            Filter::builder()
                .name("instance-state-name")
                .set_values(Some(states.iter().map(|s| (*s).to_owned()).collect()))
                .build(),
        )
        .send()
        .await
        .context("DescribeInstances on moto")?;
    Ok(out
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .filter_map(|i| {
            Some((
                i.instance_id()?.to_owned(),
                i.state()?.name()?.as_str().to_owned(),
            ))
        })
        .collect())
}
