//! The master image (images/master, built by
//! scripts/setup/build-master-image.sh): healthy by its own HEALTHCHECK,
//! non-root, its state in a volume; the quickstart build on local workers
//! inside the container; and a Docker pool on the host's engine through the
//! mounted socket.

use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use anyhow::{bail, Context};
use burst_e2e::docker_support::{
    self, docker, pool_containers, require_docker_and_image, unique, Cleanup, DockerPool,
};
use burst_e2e::{cmd, wait, Bins};

/// Start, TLS set-up and the first health probe of a fresh container.
const HEALTHY: Duration = Duration::from_secs(120);
/// A build on workers started from nothing, on a loaded machine.
const BUILD: Duration = Duration::from_secs(240);
const SOCKET: &str = "/var/run/docker.sock";

/// `burst-master:latest`, unless `BURST_E2E_MASTER_IMAGE` names another.
fn master_image() -> anyhow::Result<String> {
    let image = std::env::var("BURST_E2E_MASTER_IMAGE")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "burst-master:latest".to_owned());
    docker(&["image", "inspect", "--format", "{{.Id}}", &image]).map_err(|e| {
        anyhow::anyhow!("image {image} missing ({e}): run scripts/setup/build-master-image.sh")
    })?;
    Ok(image)
}

/// Removes the master's container (and its anonymous state volume), even
/// when the test fails.
struct Container(String);

impl Drop for Container {
    fn drop(&mut self) {
        let _ = docker(&["rm", "-f", "-v", &self.0]);
    }
}

async fn docker_async(args: &[&str], timeout: Duration) -> anyhow::Result<cmd::Output> {
    let mut c = tokio::process::Command::new("docker");
    c.args(args);
    cmd::run(c, timeout).await
}

/// Waits for the image's HEALTHCHECK (`burst healthcheck`) to pass; fails
/// at once, with the master's log, if the container stops or turns
/// unhealthy.
async fn wait_healthy(name: &str) -> anyhow::Result<()> {
    wait::until("the master container to be healthy", HEALTHY, || async {
        let status = docker(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.Health.Status}}",
            name,
        ])?;
        match status.trim() {
            "running healthy" => Ok(Some(())),
            "running starting" => Ok(None),
            other => {
                let logs = docker(&["logs", "--tail", "50", name]).unwrap_or_default();
                bail!("container {name} is {other}; its log:\n{logs}")
            }
        }
    })
    .await
}

/// `docker run -d` of the image as container `name` with `options`, then
/// waits for it to be healthy.
async fn start_master(name: &str, options: &[&str], image: &str) -> anyhow::Result<()> {
    // The image checks every 30 s; a test need not wait that long.
    let mut args = vec!["run", "-d", "--health-interval", "1s", "--name", name];
    args.extend_from_slice(options);
    args.push(image);
    docker(&args)?;
    wait_healthy(name).await
}

#[tokio::test]
async fn the_master_image_runs_the_quickstart_on_local_workers_in_the_container() {
    let image = master_image().unwrap();
    let name = unique("burst-master-e2e");
    let _container = Container(name.clone());
    start_master(&name, &["-p", "127.0.0.1::8480"], &image)
        .await
        .unwrap();

    // Not root, and the state dir is a volume.
    let user = docker(&["inspect", "-f", "{{.Config.User}}", &name]).unwrap();
    assert_eq!(user.trim(), "10001:10001");
    let uid = docker(&["exec", &name, "id", "-u"]).unwrap();
    assert_eq!(uid.trim(), "10001");
    let volumes = docker(&["inspect", "-f", "{{json .Config.Volumes}}", &name]).unwrap();
    assert!(volumes.contains("\"/var/lib/burst\""), "{volumes}");
    let mounts = docker(&[
        "inspect",
        "-f",
        "{{range .Mounts}}{{.Destination}} {{end}}",
        &name,
    ])
    .unwrap();
    assert!(mounts.contains("/var/lib/burst"), "{mounts}");

    // The quickstart's two-cell build, on workers the master started as
    // processes in its own container (their hostname is the container's).
    let hostname = docker(&["exec", &name, "hostname"]).unwrap();
    let out = docker_async(
        &["exec", &name, "burst", "submit", "hello", "--follow"],
        BUILD,
    )
    .await
    .unwrap();
    assert!(out.success(), "{out:?}");
    for greeting in ["hello", "bonjour"] {
        let line = format!("{greeting} from burst build");
        assert!(out.stdout.contains(&line), "{line} in {out:?}");
    }
    assert!(
        out.stdout
            .contains(&format!("on {}, says burst", hostname.trim())),
        "{out:?}"
    );
    assert_eq!(out.stdout.matches(": succeeded in").count(), 2, "{out:?}");
    let workers = docker(&["exec", &name, "burst", "workers", "--json"]).unwrap();
    let workers: serde_json::Value = serde_json::from_str(&workers).unwrap();
    let pools: Vec<_> = workers
        .as_array()
        .unwrap()
        .iter()
        .map(|w| &w["pool"])
        .collect();
    assert!(
        !pools.is_empty() && pools.iter().all(|p| *p == "local"),
        "{workers:#}"
    );

    // From the host, through the published port, trusting the master's own
    // CA: the API is TLS only off loopback.
    let port = docker(&["port", &name, "8480/tcp"]).unwrap();
    let port = port
        .lines()
        .next()
        .and_then(|l| l.rsplit(':').next())
        .unwrap()
        .trim()
        .to_owned();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    docker(&[
        "cp",
        &format!("{name}:/var/lib/burst/tls/ca.pem"),
        &ca.to_string_lossy(),
    ])
    .unwrap();
    let bins = Bins::locate().unwrap();
    let mut c = tokio::process::Command::new(&bins.burst);
    c.args(["--url", &format!("https://127.0.0.1:{port}"), "--ca-file"])
        .arg(&ca)
        .arg("healthcheck")
        .env_remove("BURST_URL");
    let health = cmd::run(c, Duration::from_secs(60)).await.unwrap();
    assert!(
        health.success() && health.stdout.trim() == "ok",
        "{health:?}"
    );
}

/// The containerised master reaches the host's engine through the mounted
/// socket (its group added), starts a worker container on a network of the
/// test's own, and the worker dials the master by its container name.
#[tokio::test]
async fn the_master_image_runs_a_docker_pool_build_on_the_host_engine() {
    require_docker_and_image().unwrap();
    let image = master_image().unwrap();
    let pool = unique("mimg");
    let network = unique("burst-e2e-net");
    let name = unique("burst-master-e2e");
    let mut cleanup = Cleanup::new(&pool);
    docker(&["network", "create", &network]).unwrap();
    cleanup.networks.push(network.clone());
    let container = Container(name.clone());

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("burst.toml");
    std::fs::write(&config, docker_config(&pool, &network, &name)).unwrap();
    let gid = std::fs::metadata(SOCKET)
        .with_context(|| format!("{SOCKET}: the Docker engine's socket"))
        .unwrap()
        .gid()
        .to_string();
    let socket_mount = format!("{SOCKET}:{SOCKET}");
    let config_mount = format!("{}:/etc/burst/burst.toml:ro", config.display());
    start_master(
        &name,
        &[
            "--network",
            &network,
            "--group-add",
            &gid,
            "-v",
            &socket_mount,
            "-v",
            &config_mount,
        ],
        &image,
    )
    .await
    .unwrap();

    let master_host = docker(&["exec", &name, "hostname"]).unwrap();
    let out = docker_async(
        &["exec", &name, "burst", "submit", "inbox", "--follow"],
        BUILD,
    )
    .await
    .unwrap();
    assert!(out.success(), "{out:?}");
    let worker_host = out
        .stdout
        .lines()
        .find_map(|l| l.split("step in container ").nth(1))
        .unwrap_or_else(|| panic!("no step output in {out:?}"))
        .trim()
        .to_owned();
    assert_ne!(
        worker_host,
        master_host.trim(),
        "the step ran in the master's container"
    );
    let containers = pool_containers(&pool).unwrap();
    assert_eq!(containers.len(), 1, "{containers:?}");
    assert!(
        containers[0].starts_with(&worker_host),
        "{containers:?} vs {worker_host}"
    );

    // SIGTERM: the master terminates the worker container it launched.
    docker(&["stop", "-t", "60", &name]).unwrap();
    wait::until_some(
        "the pool's containers to be gone",
        Duration::from_secs(60),
        || pool_containers(&pool).ok().filter(Vec::is_empty),
    )
    .await
    .unwrap();
    drop(container);
    drop(cleanup);
}

/// The image's TLS master with one Docker pool on `network`, whose workers
/// dial the master container by name.
fn docker_config(pool: &str, network: &str, master: &str) -> String {
    let section = DockerPool::new(pool)
        .docker(&format!(
            "network = \"{network}\"\nmaster_url = \"https://{master}:8481\""
        ))
        .section();
    format!(
        "[master]\nstate_dir = \"/var/lib/burst\"\nhttp_listen = \"0.0.0.0:8480\"\n\
         grpc_listen = \"0.0.0.0:8481\"\nadvertise_url = \"https://127.0.0.1:8481\"\n\
         tls = \"self-signed\"\nheartbeat_interval = \"1s\"\nshutdown_grace = \"5s\"\n\n\
         {section}\n{}",
        docker_support::builder("inbox", pool, "echo \"step in container $(hostname)\"")
    )
}
