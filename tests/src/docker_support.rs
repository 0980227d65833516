//! The Docker provider's fixture: a docker pool of the test's own for the
//! one [`MasterBuilder`], the `docker` CLI to look at (and break) its
//! containers, and a guard that removes everything the test created, even
//! when it fails.

use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context};

use crate::MasterBuilder;

/// The image `scripts/setup/build-docker-image.sh` builds, unless
/// `BURST_E2E_IMAGE` names another: a worktree whose worker speaks a changed
/// protocol builds its own (`images/docker/build.sh NAME`) and points its
/// tests at it, so it never replaces the image other checkouts test with.
pub fn image() -> String {
    std::env::var("BURST_E2E_IMAGE")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "burst-worker:latest".to_owned())
}
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

/// Fails, naming the setup step, unless the engine answers and has [`image()`].
pub fn require_docker_and_image() -> anyhow::Result<()> {
    docker(&["version", "--format", "{{.Server.Version}}"]).map_err(|e| {
        anyhow!("the Docker engine is unreachable ({e}): start dockerd (the machine's Docker service) before the tests")
    })?;
    let image = image();
    docker(&["image", "inspect", "--format", "{{.Id}}", &image]).map_err(|e| {
        anyhow!("image {image} missing ({e}): run scripts/setup/build-docker-image.sh")
    })?;
    Ok(())
}

/// The worker image with the tests' fake actions runner in
/// /opt/actions-runner: `images/docker/build.sh --runner
/// tests/fixtures/fake-runner` (scripts/setup/build-docker-image.sh) builds
/// it as `<image()>-runner:latest`.
pub fn runner_image() -> String {
    let base = image();
    let name = base.split(':').next().unwrap_or(&base);
    format!("{name}-runner:latest")
}

/// Fails, naming the setup step, unless the engine answers and has both
/// [`image()`] and [`runner_image()`].
pub fn require_docker_and_runner_image() -> anyhow::Result<()> {
    require_docker_and_image()?;
    let image = runner_image();
    docker(&["image", "inspect", "--format", "{{.Id}}", &image]).map_err(|e| {
        anyhow!("image {image} missing ({e}): run scripts/setup/build-docker-image.sh")
    })?;
    Ok(())
}

/// The default bridge's gateway: the host's address as containers on it
/// see it. The engine leaves `Gateway` empty on some setups; then it is the
/// subnet's first address, as the engine assigns it.
pub fn bridge_gateway() -> anyhow::Result<std::net::IpAddr> {
    let out = docker(&[
        "network",
        "inspect",
        "bridge",
        "--format",
        "{{range .IPAM.Config}}{{.Gateway}} {{.Subnet}}{{end}}",
    ])?;
    let mut parts = out.split_whitespace();
    let (first, second) = (parts.next().unwrap_or(""), parts.next());
    if let (Ok(ip), Some(_)) = (first.parse(), second) {
        return Ok(ip);
    }
    // Only a subnet was printed.
    let subnet = second.unwrap_or(first);
    let net = subnet
        .split('/')
        .next()
        .and_then(|a| a.parse::<std::net::Ipv4Addr>().ok())
        .with_context(|| format!("no gateway or IPv4 subnet in the bridge network: {out:?}"))?;
    Ok(std::net::Ipv4Addr::from(u32::from(net) + 1).into())
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
        // The pool's cache volumes, once no container holds them.
        for volume in pool_volumes(&self.pool).unwrap_or_default() {
            let _ = docker(&["volume", "rm", "-f", &volume]);
        }
    }
}

/// The cache volumes burst made for `pool`.
pub fn pool_volumes(pool: &str) -> anyhow::Result<Vec<String>> {
    let out = docker(&[
        "volume",
        "ls",
        "-q",
        "--filter",
        &format!("label=io.burst.pool={pool}"),
        "--filter",
        "label=io.burst.cache",
    ])?;
    Ok(out
        .lines()
        .map(str::to_owned)
        .filter(|l| !l.is_empty())
        .collect())
}

/// A docker pool of the test's own, as a section for [`MasterBuilder`]:
/// `[pools.NAME]` (labelled NAME) on [`image()`], never pulled, with a short
/// backoff.
#[derive(Debug, Clone)]
pub struct DockerPool {
    name: String,
    image: String,
    pull: Option<String>,
    pool_extra: Vec<String>,
    docker_extra: Vec<String>,
}

impl DockerPool {
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            image: image(),
            pull: Some("never".to_owned()),
            pool_extra: Vec::new(),
            docker_extra: Vec::new(),
        }
    }

    /// More lines for `[pools.NAME]`.
    pub fn pool(mut self, toml: &str) -> Self {
        self.pool_extra.push(toml.to_owned());
        self
    }

    /// More lines for `[pools.NAME.docker]` (and its sub-tables, last).
    pub fn docker(mut self, toml: &str) -> Self {
        self.docker_extra.push(toml.to_owned());
        self
    }

    pub fn image(mut self, image: &str) -> Self {
        image.clone_into(&mut self.image);
        self
    }

    /// The `pull` setting; `None` leaves it out (the provider's default).
    pub fn pull(mut self, pull: Option<&str>) -> Self {
        self.pull = pull.map(str::to_owned);
        self
    }

    /// The `[pools.NAME]` and `[pools.NAME.docker]` sections.
    pub fn section(&self) -> String {
        let pull = self
            .pull
            .as_ref()
            .map(|p| format!("pull = \"{p}\"\n"))
            .unwrap_or_default();
        format!(
            "[pools.{pool}]\nprovider = \"docker\"\nlabels = [\"{pool}\"]\n\
             backoff_min = \"200ms\"\nbackoff_max = \"2s\"\n{pool_extra}\n\n\
             [pools.{pool}.docker]\nimage = \"{image}\"\n{pull}{docker_extra}\n",
            pool = self.name,
            image = self.image,
            pool_extra = self.pool_extra.join("\n"),
            docker_extra = self.docker_extra.join("\n"),
        )
    }

    /// A master on this pool, listening where the default bridge reaches
    /// it; add builders with [`MasterBuilder::section`].
    pub fn master(&self) -> MasterBuilder {
        MasterBuilder::new()
            .master_toml("heartbeat_interval = \"1s\"\nshutdown_grace = \"2s\"")
            .grpc_listen("0.0.0.0:0")
            .rust_log("info,burst_providers=debug")
            .section(&self.section())
    }
}

/// A builder of one `run` step that the test's pool serves.
pub fn builder(name: &str, pool: &str, run: &str) -> String {
    format!(
        "[[builders]]\nname = \"{name}\"\nlabels = [\"{pool}\"]\n\n[[builders.steps]]\nname = \"main\"\nrun = '''{run}'''\n"
    )
}
