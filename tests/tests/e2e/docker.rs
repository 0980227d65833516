//! The Docker provider against the machine's real Docker engine. Each test
//! has its own pool name (so its own container label) and master state dir,
//! and removes its containers, images and networks even when it fails.

use std::time::Duration;

use anyhow::{bail, ensure, Context};
use burst_e2e::docker_support::{
    builder, docker, pool_containers, require_docker_and_image, unique, Cleanup, DockerPool,
};
use burst_e2e::{wait, BuildId, Master};
use serde_json::Value;

const BUILD_TIMEOUT: Duration = Duration::from_secs(60);

fn state(build: &Value) -> &str {
    build["state"].as_str().unwrap_or("")
}

fn attempts(build: &Value) -> Vec<Value> {
    build["attempts"].as_array().cloned().unwrap_or_default()
}

/// The ledger row of `worker`, once it names the worker's container: the
/// worker may connect, even finish its build, before the launch call has
/// returned and the ledger has its container.
async fn instance(master: &Master, worker: &str) -> anyhow::Result<Value> {
    wait::until(
        &format!("a ledger row with a container for worker {worker}"),
        Duration::from_secs(20),
        || async {
            let row = master
                .instances_json()
                .await?
                .into_iter()
                .find(|row| row["worker_id"] == worker);
            Ok(row.filter(|r| r["details"]["container_id"].is_string()))
        },
    )
    .await
}

#[tokio::test]
async fn docker_build_runs_inside_a_container() -> anyhow::Result<()> {
    require_docker_and_image()?;
    let pool = unique("dk-host");
    let _cleanup = Cleanup::new(&pool);
    let master = DockerPool::new(&pool)
        .pool("max_builds = 1")
        .master()
        .section(&builder(
            "where",
            &pool,
            "echo \"HOSTNAME=$(hostname)\"; test -d /work && test -x /bin/burst-worker",
        ))
        .start()
        .await?;
    let id = master.submit("where", &[]).await?[0];
    let build = master.finished_json(id, BUILD_TIMEOUT).await?;
    let log = master.log_text(id).await?;
    ensure!(
        state(&build) == "succeeded",
        "build: {build:#}\nlog:\n{log}"
    );

    let seen = log
        .lines()
        .find_map(|l| l.split("HOSTNAME=").nth(1))
        .map(str::trim)
        .with_context(|| format!("no hostname in the log:\n{log}"))?
        .to_owned();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")?;
    ensure!(
        seen != host.trim(),
        "the step saw the host's own hostname {seen}"
    );
    // Docker names a container's host after its id.
    let worker = attempts(&build)[0]["worker_id"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    let row = instance(&master, &worker).await?;
    let container = row["details"]["container_id"].as_str().unwrap_or("");
    ensure!(
        !container.is_empty() && container.starts_with(&seen),
        "hostname {seen} is not container {container}'s; row: {row:#}"
    );
    ensure!(row["provider"] == "docker", "{row:#}");
    Ok(())
}

#[tokio::test]
async fn docker_build_over_tls_dials_the_bridge_with_the_pin() -> anyhow::Result<()> {
    require_docker_and_image()?;
    let pool = unique("dk-tls");
    let _cleanup = Cleanup::new(&pool);
    let master = DockerPool::new(&pool)
        .pool("max_builds = 1")
        .master()
        .tls_self_signed()
        .section(&builder("tls", &pool, "echo over-tls"))
        .start()
        .await?;
    let id = master.submit("tls", &[]).await?[0];
    let build = master.finished_json(id, BUILD_TIMEOUT).await?;
    let log = master.log_text(id).await?;
    ensure!(
        state(&build) == "succeeded" && log.contains("over-tls"),
        "build: {build:#}\nlog:\n{log}"
    );
    // The container dialled the bridge's gateway over https, a name the
    // certificate need not carry: the pin is what it checked.
    let worker = attempts(&build)[0]["worker_id"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    let row = instance(&master, &worker).await?;
    let url = row["details"]["master_url"].as_str().unwrap_or("");
    ensure!(url.starts_with("https://"), "{row:#}");
    ensure!(!url.contains("127.0.0.1"), "{row:#}");
    Ok(())
}

#[tokio::test]
async fn docker_fresh_container_per_build_isolates_builds() -> anyhow::Result<()> {
    require_docker_and_image()?;
    let pool = unique("dk-iso");
    let _cleanup = Cleanup::new(&pool);
    // Fails if an earlier build's file is visible, then leaves its own.
    let step = "for f in /tmp/burst-marker /burst-marker; do \
                  if [ -e $f ]; then echo \"SEEN $f from build $(cat $f)\"; exit 1; fi; done; \
                echo $BURST_BUILD_ID > /tmp/burst-marker && echo $BURST_BUILD_ID > /burst-marker && \
                cat /tmp/burst-marker /burst-marker";
    let master = DockerPool::new(&pool)
        .pool("max_builds = 1\nmax_workers = 1")
        .master()
        .section(&builder("mark", &pool, step))
        .start()
        .await?;
    let mut workers = Vec::new();
    for _ in 0..2 {
        let id = master.submit("mark", &[]).await?[0];
        let build = master.finished_json(id, BUILD_TIMEOUT).await?;
        let log = master.log_text(id).await?;
        ensure!(
            state(&build) == "succeeded",
            "build {id}: {build:#}\nlog:\n{log}"
        );
        ensure!(
            log.lines().filter(|l| l.trim() == id.to_string()).count() == 2,
            "build {id} did not write its markers:\n{log}"
        );
        workers.push(attempts(&build)[0]["worker_id"].clone());
    }
    ensure!(
        workers[0] != workers[1],
        "both builds ran on {}",
        workers[0]
    );
    Ok(())
}

#[tokio::test]
async fn docker_ten_builds_never_exceed_max_workers() -> anyhow::Result<()> {
    require_docker_and_image()?;
    let pool = unique("dk-ten");
    let _cleanup = Cleanup::new(&pool);
    let master = DockerPool::new(&pool)
        .pool("max_workers = 4\nidle_timeout = \"2s\"")
        .master()
        .section(&format!(
            "{}\n[builders.matrix]\nn = [\"0\", \"1\", \"2\", \"3\", \"4\", \"5\", \"6\", \"7\", \"8\", \"9\"]\n",
            builder("ten", &pool, "echo build $N on $(hostname); sleep 1")
        ))
        .start()
        .await?;
    let ids = master.submit("ten", &[]).await?;
    ensure!(ids.len() == 10, "submitted {ids:?}");

    // Sample the engine while the builds run.
    let mut most = 0;
    let mut samples = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(180);
    loop {
        let running = pool_containers(&pool)?.len();
        most = most.max(running);
        samples += 1;
        ensure!(
            running <= 4,
            "{running} containers of pool {pool} at once (max_workers = 4)"
        );
        let mut finished = 0;
        for id in &ids {
            if !matches!(state(&master.build_json(*id).await?), "queued" | "running") {
                finished += 1;
            }
        }
        if finished == ids.len() {
            break;
        }
        if std::time::Instant::now() > deadline {
            bail!(
                "{finished}/10 builds finished within 180s:\n{}",
                master.log_tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    ensure!(most >= 1, "no container seen in {samples} samples");
    for id in &ids {
        let build = master.build_json(*id).await?;
        ensure!(state(&build) == "succeeded", "build {id}: {build:#}");
    }
    // Idle workers go after idle_timeout (2s), containers with them.
    wait::until(
        "containers removed after idle_timeout",
        Duration::from_secs(30),
        || async { Ok(pool_containers(&pool)?.is_empty().then_some(())) },
    )
    .await
    .with_context(|| master.log_tail())?;
    let live = master
        .instances_json()
        .await?
        .into_iter()
        .filter(|r| !matches!(r["state"].as_str(), Some("gone" | "failed")))
        .count();
    ensure!(live == 0, "{live} ledger rows still live");
    Ok(())
}

#[tokio::test]
async fn docker_killed_container_is_replaced_and_the_build_retried() -> anyhow::Result<()> {
    require_docker_and_image()?;
    let pool = unique("dk-kill");
    let _cleanup = Cleanup::new(&pool);
    let master = DockerPool::new(&pool)
        .pool("max_builds = 1")
        .master()
        .section(&builder(
            "slow",
            &pool,
            "echo attempt $BURST_ATTEMPT on $(hostname); sleep 4; echo done",
        ))
        .start()
        .await?;
    let id = master.submit("slow", &[]).await?[0];
    let running = master
        .wait_build_json(id, BUILD_TIMEOUT, "a running step", |b| {
            attempts(b)
                .first()
                .and_then(|a| a["steps"].as_array().cloned())
                .is_some_and(|steps| steps.iter().any(|s| s["state"] == "running"))
        })
        .await?;
    let first_worker = attempts(&running)[0]["worker_id"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    let row = instance(&master, &first_worker).await?;
    let container = row["details"]["container_id"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    docker(&["kill", &container])?;

    let build = master.finished_json(id, BUILD_TIMEOUT).await?;
    let log = master.log_text(id).await?;
    ensure!(
        state(&build) == "succeeded",
        "build: {build:#}\nlog:\n{log}"
    );
    let all = attempts(&build);
    ensure!(all.len() == 2, "want 2 attempts: {build:#}");
    ensure!(
        all[0]["state"] == "worker_lost",
        "first attempt: {:#}",
        all[0]
    );
    ensure!(
        all[1]["worker_id"] != first_worker.as_str(),
        "retried on the killed worker"
    );
    ensure!(
        log.contains("attempt 2 on") && log.contains("done"),
        "log:\n{log}"
    );
    // The killed container is removed, not just stopped.
    wait::until(
        "killed container removed",
        Duration::from_secs(20),
        || async { Ok(docker(&["inspect", &container]).is_err().then_some(())) },
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn docker_missing_image_fails_the_build_with_a_permanent_error() -> anyhow::Result<()> {
    require_docker_and_image()?;
    let pool = unique("dk-noimg");
    let _cleanup = Cleanup::new(&pool);
    let missing = format!("{}:none", unique("burst-e2e-missing"));
    let master = DockerPool::new(&pool)
        .image(&missing)
        .master()
        .section(&builder("never", &pool, "true"))
        .start()
        .await?;
    let id = master.submit("never", &[]).await?[0];
    let build = master.finished_json(id, Duration::from_secs(30)).await?;
    ensure!(state(&build) == "failed", "{build:#}");
    let reason = build["reason"].as_str().unwrap_or("");
    ensure!(
        reason.contains(&format!(
            "failed to find image {missing} on docker host local: build it with images/docker/build.sh \
             or set pull = \"if-missing\""
        )),
        "reason: {reason}"
    );
    ensure!(
        pool_containers(&pool)?.is_empty(),
        "a container was left behind"
    );
    Ok(())
}

/// A master whose one-container pool runs a `sleep 120` build (plus the
/// `extra` sections): the master, the build, and its one container.
async fn long_build_in_one_container(
    pool: &str,
    extra: &[String],
) -> anyhow::Result<(Master, BuildId, Vec<String>)> {
    // A short step lease: the restarted master (on a new worker port, which
    // the old container cannot reach) reaps it once it ran out.
    let mut builder_ = DockerPool::new(pool)
        .pool("max_builds = 1")
        .master()
        .master_toml("step_lease = \"3s\"")
        .section(&builder("long", pool, "sleep 120"));
    for section in extra {
        builder_ = builder_.section(section);
    }
    let master = builder_.start().await?;
    let id = master.submit("long", &[]).await?[0];
    master
        .wait_build_json(id, BUILD_TIMEOUT, "running", |b| state(b) == "running")
        .await?;
    let containers = pool_containers(pool)?;
    ensure!(
        containers.len() == 1,
        "containers while the build runs: {containers:?}"
    );
    Ok((master, id, containers))
}

#[tokio::test]
async fn docker_master_sigkill_then_restart_removes_orphans() -> anyhow::Result<()> {
    require_docker_and_image()?;
    let pool = unique("dk-orphan");
    let _cleanup = Cleanup::new(&pool);
    let (mut master, id, orphans) = long_build_in_one_container(&pool, &[]).await?;

    master.sigkill();
    // Nothing removes it while no master runs.
    ensure!(
        docker(&["inspect", "--format", "{{.State.Running}}", &orphans[0]])?.trim() == "true",
        "the container died with the master"
    );
    master.restart().await?;
    wait::until(
        "orphan removed by reconciliation",
        Duration::from_secs(30),
        || async { Ok(docker(&["inspect", &orphans[0]]).is_err().then_some(())) },
    )
    .await
    .with_context(|| master.log_tail())?;
    master.cancel(id).await?;
    Ok(())
}

/// The database deleted under a SIGKILLed master: the id in `master.id`
/// outlives it, so the restart still finds the container under its label,
/// removes it, and runs what is submitted next.
#[tokio::test]
async fn docker_deleted_database_still_reaps_the_old_container() -> anyhow::Result<()> {
    require_docker_and_image()?;
    let pool = unique("dk-nodb");
    let _cleanup = Cleanup::new(&pool);
    let quick = builder("quick", &pool, "echo quick-done");
    let (mut master, _, orphans) = long_build_in_one_container(&pool, &[quick]).await?;
    let master_id = master.master_id();

    master.sigkill();
    burst_e2e::db_faults::delete(&master.state_dir())?;
    master.restart().await?;
    ensure!(master.master_id() == master_id, "a new identity");
    wait::until(
        "the old container removed",
        Duration::from_secs(30),
        || async { Ok(docker(&["inspect", &orphans[0]]).is_err().then_some(())) },
    )
    .await
    .with_context(|| master.log_tail())?;
    let quick = master.submit("quick", &[]).await?[0];
    master
        .wait_build_json(quick, BUILD_TIMEOUT, "succeeded", |b| {
            state(b) == "succeeded"
        })
        .await?;
    Ok(())
}

#[tokio::test]
async fn docker_master_builds_a_missing_image_from_its_build_context() -> anyhow::Result<()> {
    require_docker_and_image()?;
    let pool = unique("dk-ctx");
    let mut cleanup = Cleanup::new(&pool);
    let image = format!("{}:latest", unique("burst-e2e-ctx"));
    cleanup.images.push(image.clone());
    let dir = tempfile::tempdir()?;
    let context = dir.path().join("context");
    std::fs::create_dir(&context)?;
    // Derived from the worker image, so no registry is needed.
    std::fs::write(
        context.join("Dockerfile.ci"),
        format!(
            "FROM {}\nRUN echo built-by-burst > /built\n",
            burst_e2e::docker_support::image()
        ),
    )?;
    let docker_extra = format!(
        "pull = \"if-missing\"\nbuild_context = \"{}\"\ndockerfile = \"Dockerfile.ci\"",
        context.display()
    );
    let master = DockerPool::new(&pool)
        .pool("max_builds = 1")
        .docker(&docker_extra)
        .image(&image)
        .pull(None)
        .master()
        .section(&builder("ctx", &pool, "cat /built"))
        .start()
        .await?;
    let id = master.submit("ctx", &[]).await?[0];
    let build = master.finished_json(id, Duration::from_secs(120)).await?;
    let log = master.log_text(id).await?;
    ensure!(
        state(&build) == "succeeded",
        "build: {build:#}\nlog:\n{log}\n{}",
        master.log_tail()
    );
    ensure!(log.contains("built-by-burst"), "log:\n{log}");
    docker(&["image", "inspect", &image]).context("the built image")?;
    Ok(())
}

#[tokio::test]
async fn docker_container_exiting_before_connecting_reports_its_logs() -> anyhow::Result<()> {
    require_docker_and_image()?;
    let pool = unique("dk-exit");
    let mut cleanup = Cleanup::new(&pool);
    let image = format!("{}:latest", unique("burst-e2e-exit"));
    cleanup.images.push(image.clone());
    let dir = tempfile::tempdir()?;
    let context = dir.path().join("context");
    std::fs::create_dir(&context)?;
    std::fs::write(
        context.join("Dockerfile"),
        format!(
            "FROM {}\nENTRYPOINT [\"/bin/sh\", \"-c\", \"echo worker-cannot-start >&2; exit 3\"]\n",
            burst_e2e::docker_support::image()
        ),
    )?;
    docker(&["build", "-q", "-t", &image, &context.to_string_lossy()])?;
    let master = DockerPool::new(&pool)
        .pool("start_timeout = \"60s\"")
        .image(&image)
        .master()
        .section(&builder("doomed", &pool, "true"))
        .start()
        .await?;
    let id = master.submit("doomed", &[]).await?[0];
    // Well before start_timeout, the ledger says why the launch failed.
    let row = wait::until(
        "a failed launch in the ledger",
        Duration::from_secs(30),
        || async {
            let rows = master.instances_json().await?;
            Ok(rows.into_iter().find(|r| {
                r["error"]
                    .as_str()
                    .is_some_and(|e| e.contains("exited with code 3"))
            }))
        },
    )
    .await
    .with_context(|| master.log_tail())?;
    let error = row["error"].as_str().unwrap_or("");
    ensure!(
        error.contains("worker-cannot-start"),
        "no log lines in: {error}"
    );
    // The exited container is removed.
    let container = row["details"]["container_id"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    wait::until(
        "exited container removed",
        Duration::from_secs(20),
        || async { Ok(docker(&["inspect", &container]).is_err().then_some(())) },
    )
    .await?;
    master.cancel(id).await?;
    Ok(())
}

#[tokio::test]
async fn docker_container_that_never_connects_is_removed_after_start_timeout() -> anyhow::Result<()>
{
    require_docker_and_image()?;
    let pool = unique("dk-silent");
    let _cleanup = Cleanup::new(&pool);
    // Port 9 on the container's own loopback: the worker keeps retrying.
    let master = DockerPool::new(&pool)
        .pool("start_timeout = \"3s\"\nmax_workers = 1")
        .docker("master_url = \"http://127.0.0.1:9\"")
        .master()
        .section(&builder("silent", &pool, "true"))
        .start()
        .await?;
    let id = master.submit("silent", &[]).await?[0];
    let first = wait::until("a container started", Duration::from_secs(20), || async {
        Ok(pool_containers(&pool)?.into_iter().next())
    })
    .await?;
    wait::until(
        "silent container removed",
        Duration::from_secs(30),
        || async { Ok(docker(&["inspect", &first]).is_err().then_some(())) },
    )
    .await
    .with_context(|| master.log_tail())?;
    // The container goes inside the terminate call; the ledger row is
    // settled only when that call returns, so wait for it to settle.
    let worker = worker_of(&master, &first).await?;
    let row = wait::until_seen(
        "the silent worker's ledger row to settle",
        Duration::from_secs(30),
        || instance(&master, &worker),
        |row| matches!(row["state"].as_str(), Some("gone" | "failed")),
    )
    .await?;
    ensure!(row["state"] == "gone", "{row:#}");
    let lived =
        row["terminated_at"].as_u64().unwrap_or(0) - row["launched_at"].as_u64().unwrap_or(0);
    ensure!(
        lived >= 3000,
        "removed {lived} ms after launch, before start_timeout (3s)"
    );
    let log = master.log();
    ensure!(
        log.contains("did not connect within start_timeout (3s)"),
        "master log:\n{}",
        master.log_tail()
    );
    master.cancel(id).await?;
    Ok(())
}

/// The worker id of a container, from its label.
/// Submits `builder`, waits for its step to run in the pool's one container,
/// and returns the build id with `docker inspect --format FORMAT` of it.
async fn inspect_while_running(
    master: &Master,
    pool: &str,
    builder: &str,
    format: &str,
) -> anyhow::Result<(BuildId, String)> {
    let id = master.submit(builder, &[]).await?[0];
    master
        .wait_build_json(id, BUILD_TIMEOUT, "running", |b| state(b) == "running")
        .await?;
    let ids = pool_containers(pool)?;
    ensure!(ids.len() == 1, "{ids:?}");
    let seen = docker(&["inspect", "--format", format, &ids[0]])?;
    Ok((id, seen))
}

async fn worker_of(master: &Master, container: &str) -> anyhow::Result<String> {
    let rows = master.instances_json().await?;
    rows.iter()
        .find(|r| r["details"]["container_id"] == container)
        .and_then(|r| r["worker_id"].as_str())
        .map(str::to_owned)
        .with_context(|| format!("no ledger row for container {container}: {rows:#?}"))
}

#[tokio::test]
async fn docker_hosts_share_the_load_within_capacity_and_a_dead_host_is_skipped(
) -> anyhow::Result<()> {
    require_docker_and_image()?;
    let pool = unique("dk-hosts");
    let _cleanup = Cleanup::new(&pool);
    // Two names for the one engine here, one slot each, and a host nothing
    // answers on (port 9 of loopback), which must not stop the others.
    let hosts = r#"
[[pools.POOL.docker.hosts]]
name = "a"
capacity = 1
price_per_hour = 0.36

[[pools.POOL.docker.hosts]]
name = "b"
endpoint = "unix:///var/run/docker.sock"
capacity = 1

[[pools.POOL.docker.hosts]]
name = "dead"
endpoint = "tcp://127.0.0.1:9"
capacity = 4
"#
    .replace("POOL", &pool);
    let master = DockerPool::new(&pool)
        .pool("max_workers = 4\nmax_builds = 1\nprice_per_hour = 0.72")
        .docker(&hosts)
        .master()
        .section(&format!(
            "{}\n[builders.matrix]\nn = [\"0\", \"1\", \"2\", \"3\"]\n",
            builder("spread", &pool, "sleep 1")
        ))
        .start()
        .await?;
    let ids = master.submit("spread", &[]).await?;
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let running = pool_containers(&pool)?.len();
        ensure!(
            running <= 2,
            "{running} containers: more than the hosts' capacity of 1 + 1"
        );
        let mut finished = 0;
        for id in &ids {
            if !matches!(state(&master.build_json(*id).await?), "queued" | "running") {
                finished += 1;
            }
        }
        if finished == ids.len() {
            break;
        }
        if std::time::Instant::now() > deadline {
            bail!(
                "{finished}/{} builds finished within 120s:\n{}",
                ids.len(),
                master.log_tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for id in &ids {
        let build = master.build_json(*id).await?;
        ensure!(state(&build) == "succeeded", "build {id}: {build:#}");
    }
    let mut used = std::collections::BTreeSet::new();
    for row in master.instances_json().await? {
        if let Some(host) = row["details"]["host"].as_str() {
            used.insert(host.to_owned());
            // A host's price is recorded with its containers, over the pool's.
            let want = if host == "a" { 0.36 } else { 0.72 };
            ensure!(
                row["details"]["price_per_hour"].as_f64() == Some(want),
                "host {host}: {row:#}"
            );
        }
    }
    ensure!(
        used.iter().map(String::as_str).collect::<Vec<_>>() == ["a", "b"],
        "containers ran on {used:?}"
    );
    let log = master.log();
    ensure!(
        log.lines()
            .any(|l| l.contains("docker host quarantined") && l.contains("dead")),
        "the dead host was never quarantined:\n{}",
        master.log_tail()
    );
    Ok(())
}

#[tokio::test]
async fn docker_workers_on_a_user_network_dial_its_gateway() -> anyhow::Result<()> {
    require_docker_and_image()?;
    let pool = unique("dk-net");
    let mut cleanup = Cleanup::new(&pool);
    let network = unique("burst-e2e-net");
    docker(&["network", "create", &network])?;
    cleanup.networks.push(network.clone());
    let gateway = docker(&[
        "network",
        "inspect",
        "--format",
        "{{range .IPAM.Config}}{{.Gateway}}{{end}}",
        &network,
    ])?
    .trim()
    .to_owned();
    ensure!(!gateway.is_empty(), "network {network} has no gateway");
    let master = DockerPool::new(&pool)
        .pool("max_builds = 1")
        .docker(&format!(
            "network = \"{network}\"\nlabels = {{ \"com.example.suite\" = \"e2e\" }}"
        ))
        .master()
        .section(&builder("net", &pool, "echo on the network; hostname"))
        .start()
        .await?;
    let id = master.submit("net", &[]).await?[0];
    let running = master
        .wait_build_json(id, BUILD_TIMEOUT, "running", |b| !attempts(b).is_empty())
        .await?;
    let worker = attempts(&running)[0]["worker_id"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    let build = master.finished_json(id, BUILD_TIMEOUT).await?;
    ensure!(
        state(&build) == "succeeded",
        "build: {build:#}\n{}",
        master.log_tail()
    );
    let row = instance(&master, &worker).await?;
    let url = row["details"]["master_url"].as_str().unwrap_or("");
    ensure!(
        url.starts_with(&format!("http://{gateway}:")),
        "worker dialled {url}, not network {network}'s gateway {gateway}"
    );
    Ok(())
}

#[tokio::test]
async fn docker_containers_carry_the_pool_settings() -> anyhow::Result<()> {
    require_docker_and_image()?;
    let pool = unique("dk-opts");
    let _cleanup = Cleanup::new(&pool);
    let master = DockerPool::new(&pool)
        .pool("max_builds = 1")
        .docker("env = { CI_FLAVOUR = \"e2e\" }\nmemory = \"256m\"\ncpus = 0.5\nvolumes = [\"/scratch\"]\n\
         labels = { \"com.example.suite\" = \"e2e\" }")
        .master()
        .section(&builder(
            "opts",
            &pool,
            "echo flavour=$CI_FLAVOUR; test -d /scratch && echo scratch-ok; sleep 3",
        ))
        .start()
        .await?;
    let (id, seen) = inspect_while_running(
        &master,
        &pool,
        "opts",
        "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.HostConfig.Privileged}} \
         {{index .Config.Labels \"com.example.suite\"}} {{index .Config.Labels \"io.burst.master\"}}",
    )
    .await?;
    let want = format!("{} 500000000 false e2e {}", 256 << 20, master.master_id());
    ensure!(
        seen.trim() == want,
        "container settings {seen:?}, want {want:?}"
    );
    let build = master.finished_json(id, BUILD_TIMEOUT).await?;
    let log = master.log_text(id).await?;
    ensure!(
        state(&build) == "succeeded",
        "build: {build:#}\nlog:\n{log}"
    );
    ensure!(
        log.contains("flavour=e2e") && log.contains("scratch-ok"),
        "log:\n{log}"
    );
    Ok(())
}

#[tokio::test]
async fn docker_containers_are_hardened_by_default_and_builds_still_run() -> anyhow::Result<()> {
    require_docker_and_image()?;
    let pool = unique("dk-hard");
    let _cleanup = Cleanup::new(&pool);
    let master = DockerPool::new(&pool)
        .pool("max_builds = 1")
        .docker("pids_limit = 512")
        .master()
        .section(&builder(
            "hard",
            &pool,
            // Files change owner and mode as root, as checkouts and installs do.
            "mkdir -p d && touch d/f && chown 1000:1000 d/f && chmod 600 d/f && \
             echo hardened-ok; sleep 3",
        ))
        .start()
        .await?;
    let (id, seen) = inspect_while_running(
        &master,
        &pool,
        "hard",
        "{{json .HostConfig.SecurityOpt}} {{json .HostConfig.CapDrop}} {{json .HostConfig.CapAdd}} \
         {{.HostConfig.PidsLimit}} {{.HostConfig.Privileged}}",
    )
    .await?;
    let want = r#"["no-new-privileges:true"] ["ALL"] ["CHOWN","DAC_OVERRIDE","FOWNER","SETUID","SETGID","KILL"] 512 false"#;
    ensure!(
        seen.trim() == want,
        "container settings {seen:?}, want {want:?}"
    );
    let build = master.finished_json(id, BUILD_TIMEOUT).await?;
    let log = master.log_text(id).await?;
    ensure!(
        state(&build) == "succeeded" && log.contains("hardened-ok"),
        "build: {build:#}\nlog:\n{log}"
    );
    Ok(())
}

#[tokio::test]
async fn docker_workers_take_their_token_on_stdin_not_from_what_inspect_shows() -> anyhow::Result<()>
{
    require_docker_and_image()?;
    let pool = unique("dk-token");
    let _cleanup = Cleanup::new(&pool);
    let master = DockerPool::new(&pool)
        .master()
        .section(&builder(
            "peek",
            &pool,
            // The worker is the container's pid 1.
            "tr '\\000' '\\n' < /proc/1/environ; echo token-peek-done; sleep 3",
        ))
        .start()
        .await?;
    let (id, seen) = inspect_while_running(
        &master,
        &pool,
        "peek",
        "{{json .Config.Env}} {{json .Config.Cmd}} {{json .Args}} {{json .Config.Entrypoint}} \
         {{.Config.OpenStdin}} {{.Config.StdinOnce}}",
    )
    .await?;
    ensure!(
        !seen.contains("BURST_TOKEN=") && seen.contains("\"BURST_TOKEN_FILE=-\""),
        "docker inspect shows: {seen}"
    );
    ensure!(seen.trim_end().ends_with("true true"), "{seen}");
    let build = master.finished_json(id, BUILD_TIMEOUT).await?;
    let log = master.log_text(id).await?;
    ensure!(
        state(&build) == "succeeded" && log.contains("token-peek-done"),
        "build: {build:#}\nlog:\n{log}"
    );
    ensure!(!log.contains("BURST_TOKEN="), "log:\n{log}");
    Ok(())
}

/// A step's artifacts leave a fresh container (`max_builds = 1`) over the
/// worker's session and outlive it, byte for byte.
#[tokio::test]
async fn docker_artifacts_outlive_their_container() -> anyhow::Result<()> {
    require_docker_and_image()?;
    let pool = unique("dk-art");
    let _cleanup = Cleanup::new(&pool);
    let master = DockerPool::new(&pool)
        .pool("max_builds = 1")
        .master()
        .section(&format!(
            "[[builders]]\nname = \"art\"\nlabels = [\"{pool}\"]\n\n[[builders.steps]]\nname = \"main\"\n\
             run = 'mkdir -p out && seq 1 50000 > out/seq.txt'\nartifacts = [\"out/*.txt\"]\n"
        ))
        .start()
        .await?;
    let id = master.submit("art", &[]).await?[0];
    let build = master.finished_json(id, BUILD_TIMEOUT).await?;
    let log = master.log_text(id).await?;
    ensure!(
        state(&build) == "succeeded",
        "build: {build:#}\nlog:\n{log}"
    );
    let want: Vec<u8> = (1..=50_000)
        .map(|i| format!("{i}\n"))
        .collect::<String>()
        .into_bytes();
    // The container is gone (max_builds = 1); the file is not.
    wait::until_true("the build's container to be removed", BUILD_TIMEOUT, || {
        pool_containers(&pool).is_ok_and(|c| c.is_empty())
    })
    .await?;
    let list: Value = master
        .api_get(&format!("/api/v1/builds/{id}/artifacts"))
        .await?;
    ensure!(
        list[0]["path"] == "out/seq.txt" && list[0]["size"] == want.len(),
        "{list:#}"
    );
    let dir = tempfile::tempdir()?;
    let out = master
        .cli(&[
            "artifacts",
            &id.to_string(),
            "--get",
            "out/seq.txt",
            "-o",
            &dir.path().display().to_string(),
        ])
        .await?;
    ensure!(out.success(), "{out:?}");
    ensure!(
        std::fs::read(dir.path().join("seq.txt"))? == want,
        "the download differs"
    );
    Ok(())
}

/// A builder's `kind = "volume"` cache: one named volume per pool and key,
/// made and labelled by burst, mounted into each fresh container, kept while
/// a container uses it, and removed by `burst gc` once no builder declares
/// it.
#[tokio::test]
async fn docker_volume_caches_are_reused_across_fresh_containers_and_collected(
) -> anyhow::Result<()> {
    require_docker_and_image()?;
    let pool = unique("dk-vol");
    let _cleanup = Cleanup::new(&pool);
    let cache = "caches = [{ key = \"deps\", kind = \"volume\", paths = [\"/cache/deps\"] }]\n";
    let builders = format!(
        "[[builders]]\nname = \"use\"\nlabels = [\"{pool}\"]\n{cache}\n[[builders.steps]]\nname = \"main\"\n\
         run = 'if [ -f /cache/deps/built ]; then echo \"reused $(cat /cache/deps/built)\"; else echo cold; fi; echo $BURST_BUILD_ID > /cache/deps/built'\n\n\
         [[builders]]\nname = \"hold\"\nlabels = [\"{pool}\"]\n{cache}\n[[builders.steps]]\nname = \"main\"\nrun = 'sleep 600'\n"
    );
    let master = DockerPool::new(&pool)
        .pool("max_builds = 1")
        .master()
        .section(&builders)
        .start()
        .await?;
    let volume = format!("burst-cache.{pool}.deps");
    let first = master.submit("use", &[]).await?[0];
    let build = master.finished_json(first, BUILD_TIMEOUT).await?;
    let log = master.log_text(first).await?;
    ensure!(
        state(&build) == "succeeded" && log.contains("\ncold\n"),
        "{build:#}\n{log}"
    );
    let second = master.submit("use", &[]).await?[0];
    let build = master.finished_json(second, BUILD_TIMEOUT).await?;
    let log = master.log_text(second).await?;
    ensure!(state(&build) == "succeeded", "{build:#}\n{log}");
    ensure!(
        log.contains(&format!("reused {first}")),
        "a fresh container saw the volume:\n{log}"
    );
    ensure!(
        attempts(&build)[0]["worker_id"]
            != master.build_json(first).await?["attempts"][0]["worker_id"],
        "two workers"
    );
    ensure!(
        burst_e2e::docker_support::pool_volumes(&pool)? == [volume.clone()],
        "the labelled volume"
    );

    // No builder declares it any more, but a running container mounts it:
    // `burst gc` keeps it.
    let holding = master.submit("hold", &[]).await?[0];
    master.wait_step_running(holding, 0, BUILD_TIMEOUT).await?;
    let running = pool_containers(&pool)?;
    let mounts = docker(&["inspect", "-f", "{{json .Mounts}}", &running.join(" ")])?;
    ensure!(
        mounts.contains(&volume),
        "the container mounts the volume: {mounts}"
    );
    let path = master.config_path().to_owned();
    let text = std::fs::read_to_string(&path)?.replace(cache, "");
    std::fs::write(&path, text)?;
    let out = master.cli(&["config", "reload"]).await?;
    ensure!(out.success(), "{out:?}");
    let out = master.cli(&["gc"]).await?;
    ensure!(
        out.success() && !out.stdout.contains("removed cache volume"),
        "{out:?}"
    );
    ensure!(
        burst_e2e::docker_support::pool_volumes(&pool)? == [volume.clone()],
        "kept while in use"
    );

    master.cancel(holding).await?;
    master.finished_json(holding, BUILD_TIMEOUT).await?;
    wait::until_true("the holding container to go", BUILD_TIMEOUT, || {
        pool_containers(&pool).is_ok_and(|c| c.is_empty())
    })
    .await?;
    let out = master.cli(&["gc"]).await?;
    ensure!(
        out.success()
            && out
                .stdout
                .contains(&format!("removed cache volume {volume}")),
        "{out:?}"
    );
    ensure!(
        burst_e2e::docker_support::pool_volumes(&pool)?.is_empty(),
        "collected"
    );
    Ok(())
}
