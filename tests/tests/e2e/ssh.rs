//! The ssh provider against real sshd servers on loopback. Each "host" is
//! its own sshd with its own host key and its own remote root (install and
//! state dirs), all on this machine, logged into as root with a key the
//! test generates.

mod harness;

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use burst_e2e::sshd::{ClientKey, Sshd};
use burst_e2e::toml_text::{list, quote};
use burst_e2e::{wait, BuildId, Master};
use harness::{write_known_hosts, HostEntry, PoolSpec};
use serde_json::Value;

/// A build on ssh workers: launch (upload, start), run, stop.
const FINISH: Duration = Duration::from_secs(120);

/// Submits `hello` and waits for it to finish.
async fn run_hello(master: &Master) -> Result<Value> {
    let id = submit_hello(master).await?;
    master.finished_json(id, FINISH).await
}

async fn submit_hello(master: &Master) -> Result<BuildId> {
    let ids = master.submit("hello", &[]).await?;
    ids.first().copied().context("no build id")
}

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("burst-ssh")
        .tempdir()
        .expect("tempdir")
}

fn alive(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

fn attempt_worker(build: &Value, n: usize) -> String {
    build["attempts"][n]["worker_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no attempt {n} in {build:#}"))
        .to_owned()
}

fn step(name: &str, run: &str, env: &str) -> String {
    format!(
        "[[builders.steps]]\nname = {}\nrun = {}\nenv = {{ {env} }}\n",
        quote(name),
        quote(run)
    )
}

/// Whether the master logged that ssh host `host` backs off.
fn backs_off(log: &str, host: &str) -> bool {
    let host = format!("host={host}");
    log.lines()
        .any(|l| l.contains("ssh host backs off") && l.contains(&host))
}

fn running_step(b: &Value) -> bool {
    b["state"] == "running" && b["attempts"][0]["steps"][0]["state"] == "running"
}

#[tokio::test(flavor = "multi_thread")]
async fn ssh_build_uploads_the_worker_once_then_reuses_it() -> Result<()> {
    let tmp = tempdir();
    let key = ClientKey::generate(tmp.path());
    let host = Sshd::start(tmp.path(), "alpha", &key);
    let known = write_known_hosts(tmp.path(), &[&host]);
    let pool = PoolSpec {
        max_workers: 1,
        steps: step("where", "echo \"ran in $PWD\"", ""),
    };
    let mut entry = HostEntry::new(&host, 1);
    entry.extra = "price_per_hour = 0.5".into();
    let master = harness::master(&key, &known, &[entry], &pool)
        .start()
        .await?;

    let first = run_hello(&master).await?;
    assert_eq!(first["state"], "succeeded", "{first:#}\n{}", master.log());
    let log = master.log_text(first["id"].as_i64().expect("id")).await?;
    let state_root = host.root.join("state").display().to_string();
    assert!(
        log.contains(&format!("ran in {state_root}/")),
        "the step did not run on the host: {log}"
    );
    let w1 = attempt_worker(&first, 0);
    let row = master.instance_json(&w1).await?;
    assert_eq!(row["provider"], "ssh");
    assert_eq!(row["details"]["host"], "alpha", "{row:#}");
    assert_eq!(row["details"]["uploaded"], true, "{row:#}");
    // The host's price, recorded with its worker, prices the build.
    assert_eq!(row["details"]["price_per_hour"], 0.5, "{row:#}");
    let detail = master.build_json(first["id"].as_i64().expect("id")).await?;
    assert!(
        detail["estimated_cost"].as_f64().is_some_and(|c| c > 0.0),
        "{detail:#}"
    );
    assert!(
        row["provider_id"]
            .as_str()
            .is_some_and(|p| p.starts_with("alpha:")),
        "{row:#}"
    );

    let bin = host.root.join("bin/burst-worker");
    let installed = std::fs::metadata(&bin).expect("worker installed on the host");
    let local = std::fs::read(harness::bin_dir().join("burst-worker")).expect("local worker");
    assert_eq!(std::fs::read(&bin).expect("remote worker"), local);

    // max_builds = 1: the worker is stopped, its directory and process gone.
    let worker_dir = host.root.join("state").join(
        row["details"]["worker_dir"]
            .as_str()
            .expect("worker_dir")
            .rsplit("/state/")
            .next()
            .unwrap_or_default(),
    );
    let stopped = wait::until(
        &format!("worker {w1} to be gone"),
        Duration::from_secs(60),
        || async { Ok((master.instance_json(&w1).await?["state"] == "gone").then_some(())) },
    )
    .await
    .is_ok();
    assert!(stopped, "worker {w1} was not terminated:\n{}", master.log());
    assert!(
        !worker_dir.exists(),
        "{} is left behind",
        worker_dir.display()
    );
    assert!(
        host.worker_pids().is_empty(),
        "worker processes left: {:?}",
        host.worker_pids()
    );

    let second = run_hello(&master).await?;
    assert_eq!(second["state"], "succeeded", "{second:#}");
    let w2 = attempt_worker(&second, 0);
    assert_ne!(w1, w2, "max_builds = 1 gives each build a fresh worker");
    let row = master.instance_json(&w2).await?;
    assert_eq!(
        row["details"]["uploaded"], false,
        "the second launch re-uploaded: {row:#}"
    );
    assert_eq!(
        row["details"]["worker_sha256"],
        master.instance_json(&w1).await?["details"]["worker_sha256"]
    );
    let again = std::fs::metadata(&bin).expect("worker still installed");
    assert_eq!(
        installed.modified().ok(),
        again.modified().ok(),
        "the binary was rewritten"
    );
    assert_eq!(
        master.log().matches("uploaded burst-worker").count(),
        1,
        "{}",
        master.log()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn ssh_build_over_tls_hands_the_worker_the_pin() -> Result<()> {
    let tmp = tempdir();
    let key = ClientKey::generate(tmp.path());
    let host = Sshd::start(tmp.path(), "alpha", &key);
    let known = write_known_hosts(tmp.path(), &[&host]);
    let pool = PoolSpec {
        max_workers: 1,
        // Long enough to read the running worker's environment.
        steps: step("hold", "echo over-tls; sleep 5", ""),
    };
    let master = harness::master(&key, &known, &[HostEntry::new(&host, 1)], &pool)
        .tls_self_signed()
        .start()
        .await?;
    let pin = master.pin().context("a TLS master has a pin")?;
    let id = submit_hello(&master).await?;
    master.wait_step_running(id, 0, FINISH).await?;
    // The sshd is on this machine: its worker is a process here.
    let env = master
        .worker_processes()
        .iter()
        .find_map(|p| burst_e2e::procs::environ(p.pid))
        .context("the ssh worker's environment")?;
    assert_eq!(env.get("BURST_MASTER_PIN"), Some(&pin), "{env:?}");
    assert!(env["BURST_MASTER_URL"].starts_with("https://"), "{env:?}");
    let build = master.finished_json(id, FINISH).await?;
    assert_eq!(build["state"], "succeeded", "{build:#}\n{}", master.log());
    let log = master.log_text(id).await?;
    assert!(log.contains("over-tls"), "{log}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn ssh_hosts_cap_their_workers_and_builds_spread_across_them() -> Result<()> {
    let tmp = tempdir();
    let key = ClientKey::generate(tmp.path());
    let a = Sshd::start(tmp.path(), "a", &key);
    let b = Sshd::start(tmp.path(), "b", &key);
    let known = write_known_hosts(tmp.path(), &[&a, &b]);
    // The pool would allow 4; the hosts allow one each.
    let pool = PoolSpec {
        max_workers: 4,
        steps: step("work", "sleep 3; echo done", ""),
    };
    let hosts = [HostEntry::new(&a, 1), HostEntry::new(&b, 1)];
    let master = harness::master(&key, &known, &hosts, &pool).start().await?;

    let mut ids = Vec::new();
    for _ in 0..4 {
        ids.push(submit_hello(&master).await?);
    }
    let (mut most_a, mut most_b, mut both) = (0, 0, false);
    let deadline = Instant::now() + Duration::from_secs(150);
    loop {
        let (na, nb) = (a.worker_pids().len(), b.worker_pids().len());
        most_a = most_a.max(na);
        most_b = most_b.max(nb);
        both |= na == 1 && nb == 1;
        let mut done = true;
        for id in &ids {
            done &= !matches!(
                master.build_json(*id).await?["state"].as_str(),
                Some("queued" | "running")
            );
        }
        if done {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "builds did not finish:\n{}",
            master.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        most_a <= 1 && most_b <= 1,
        "a host ran more than max_workers: a {most_a}, b {most_b}"
    );
    assert!(both, "the two hosts never ran workers at the same time");
    let mut used = std::collections::BTreeSet::new();
    for id in &ids {
        let build = master.build_json(*id).await?;
        assert_eq!(build["state"], "succeeded", "{build:#}");
        let row = master.instance_json(&attempt_worker(&build, 0)).await?;
        used.insert(
            row["details"]["host"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
    }
    assert_eq!(used.into_iter().collect::<Vec<_>>(), ["a", "b"]);
    // Launches beyond the hosts' room were refused by the provider.
    assert!(
        master.log().contains("no host has room"),
        "{}",
        master.log()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn ssh_dead_host_build_is_retried_on_the_other_host() -> Result<()> {
    let tmp = tempdir();
    let key = ClientKey::generate(tmp.path());
    let mut hosts = [
        Sshd::start(tmp.path(), "a", &key),
        Sshd::start(tmp.path(), "b", &key),
    ];
    let known = write_known_hosts(tmp.path(), &hosts.iter().collect::<Vec<_>>());
    let mark = tmp.path().join("first-attempt");
    // The first attempt hangs until its host dies; the retry finishes.
    let pool = PoolSpec {
        max_workers: 2,
        steps: step(
            "once",
            "if [ -e \"$MARK\" ]; then echo retried-ok; else touch \"$MARK\"; sleep 120; fi",
            &format!("MARK = {}", quote(&mark.display().to_string())),
        ),
    };
    let entries: Vec<HostEntry<'_>> = hosts.iter().map(|h| HostEntry::new(h, 1)).collect();
    let master = harness::master(&key, &known, &entries, &pool)
        .start()
        .await?;
    drop(entries);

    let id = submit_hello(&master).await?;
    let build = master
        .wait_build_json(id, Duration::from_secs(90), "its step to run", running_step)
        .await?;
    wait::until_true(
        "the first attempt's step to start",
        Duration::from_secs(30),
        || mark.exists(),
    )
    .await?;
    let first_worker = attempt_worker(&build, 0);
    let dead = master.instance_json(&first_worker).await?["details"]["host"]
        .as_str()
        .expect("host")
        .to_owned();
    // What this simulates: the machine loses power. sshd, its connections
    // and the worker started through it all die at once (killing sshd alone
    // would leave the detached worker connected to the master).
    let victim = hosts
        .iter_mut()
        .find(|h| h.name == dead)
        .expect("dead host");
    victim.kill();

    let build = master.finished_json(id, FINISH).await?;
    assert_eq!(build["state"], "succeeded", "{build:#}\n{}", master.log());
    assert_eq!(build["attempts"][0]["state"], "worker_lost", "{build:#}");
    let retry = master.instance_json(&attempt_worker(&build, 1)).await?;
    let other = if dead == "a" { "b" } else { "a" };
    assert_eq!(retry["details"]["host"], other, "{retry:#}");
    assert!(master.log_text(id).await?.contains("retried-ok"));
    // The dead host backs off when a call to it fails: the retry's launch
    // (if it tried that host first) or the lost worker's terminate, which
    // runs beside the retry and may well end after the build. Wait for it.
    let _ = wait::until_true(
        &format!("host {dead} to be put into backoff"),
        Duration::from_secs(60),
        || backs_off(&master.log(), &dead),
    )
    .await;
    let log = master.log();
    assert!(
        backs_off(&log, &dead),
        "host {dead} was not put into backoff:\n{log}"
    );
    assert!(
        !backs_off(&log, other),
        "the healthy host {other} was put into backoff:\n{log}"
    );
    // Each host has its backoff gauge; the healthy one's is zero.
    let text = master.metrics().await?;
    let gauge = |host: &str| {
        burst_e2e::prometheus::sample(
            &text,
            &format!("burst_host_backoff_seconds{{pool=\"ssh\",host=\"{host}\"}}"),
        )
    };
    assert!(gauge(&dead).is_some(), "{text}");
    assert_eq!(gauge(other), Some(0.0), "{text}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn ssh_config_paths_cannot_inject_shell_syntax() -> Result<()> {
    let tmp = tempdir();
    let key = ClientKey::generate(tmp.path());
    let host = Sshd::start(tmp.path(), "alpha", &key);
    let known = write_known_hosts(tmp.path(), &[&host]);
    let unique = format!(
        "{}-{}",
        std::process::id(),
        tmp.path()
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("x")
    );
    let marker1 = format!("/tmp/pwned-{unique}");
    let marker2 = format!("/tmp/pwned2-{unique}");
    let install = host.root.join(format!("x; touch {marker1}"));
    let state = host
        .root
        .join(format!("$(touch {marker2}) it's `id` \"state\""));
    let mut entry = HostEntry::new(&host, 1);
    entry.install_dir = install.display().to_string();
    entry.state_dir = state.display().to_string();
    let pool = PoolSpec {
        max_workers: 1,
        steps: step("hi", "echo hi", ""),
    };
    let master = harness::master(&key, &known, &[entry], &pool)
        .start()
        .await?;

    let build = run_hello(&master).await?;
    assert_eq!(build["state"], "succeeded", "{build:#}\n{}", master.log());
    assert!(
        !Path::new(&marker1).exists(),
        "{marker1} exists: install_dir was run as shell"
    );
    assert!(
        !Path::new(&marker2).exists(),
        "{marker2} exists: state_dir was run as shell"
    );
    // The odd names were used literally.
    assert!(
        install.join("burst-worker").is_file(),
        "no worker in {}",
        install.display()
    );
    assert!(state.is_dir(), "{} was not created", state.display());
    let row = master.instance_json(&attempt_worker(&build, 0)).await?;
    let dir = row["details"]["worker_dir"].as_str().expect("worker_dir");
    assert!(dir.starts_with(&state.display().to_string()), "{dir}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn ssh_host_key_mismatch_is_refused() -> Result<()> {
    let tmp = tempdir();
    let key = ClientKey::generate(tmp.path());
    let host = Sshd::start(tmp.path(), "alpha", &key);
    // known_hosts names this host and port, with some other key.
    let impostor_dir = tmp.path().join("impostor");
    std::fs::create_dir_all(&impostor_dir).expect("dir");
    let impostor = ClientKey::generate(&impostor_dir);
    let known = tmp.path().join("known_hosts");
    std::fs::write(
        &known,
        format!("[127.0.0.1]:{} {}\n", host.port, impostor.public),
    )
    .expect("write");
    let pool = PoolSpec {
        max_workers: 1,
        steps: step("hi", "echo hi", ""),
    };
    let master = harness::master(&key, &known, &[HostEntry::new(&host, 1)], &pool)
        .start()
        .await?;

    let build = run_hello(&master).await?;
    assert_eq!(build["state"], "failed", "{build:#}");
    let reason = build["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("host key verification failed"), "{reason}");
    assert!(reason.contains("ssh host alpha"), "{reason}");
    assert!(
        build["attempts"].as_array().is_some_and(Vec::is_empty),
        "{build:#}"
    );
    // Refused before authentication: nothing logged in, nothing uploaded.
    assert!(!host.log().contains("Accepted publickey"), "{}", host.log());
    assert!(!host.root.join("bin").exists());
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn ssh_orphans_of_a_killed_master_are_stopped_on_restart() -> Result<()> {
    let tmp = tempdir();
    let key = ClientKey::generate(tmp.path());
    let host = Sshd::start(tmp.path(), "alpha", &key);
    let known = write_known_hosts(tmp.path(), &[&host]);
    let mark = tmp.path().join("first-attempt");
    let pool = PoolSpec {
        max_workers: 1,
        steps: step(
            "once",
            "if [ -e \"$MARK\" ]; then echo retried-ok; else touch \"$MARK\"; sleep 120; fi",
            &format!("MARK = {}", quote(&mark.display().to_string())),
        ),
    };
    let mut master = harness::master(&key, &known, &[HostEntry::new(&host, 1)], &pool)
        .start()
        .await?;

    let id = submit_hello(&master).await?;
    let build = master
        .wait_build_json(id, Duration::from_secs(90), "its step to run", running_step)
        .await?;
    wait::until_true("the step to start", Duration::from_secs(30), || {
        mark.exists()
    })
    .await?;
    let orphan = attempt_worker(&build, 0);
    let pids = host.worker_pids();
    assert_eq!(pids.len(), 1, "{pids:?}");
    let orphan_pid = pids[0];
    let orphan_dir = master.instance_json(&orphan).await?["details"]["worker_dir"]
        .as_str()
        .expect("worker_dir")
        .to_owned();
    assert!(Path::new(&orphan_dir).is_dir());

    master.sigkill();
    // The worker outlives the master and its SSH connection.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(alive(orphan_pid), "the worker died with the master");

    master.restart().await?;
    wait::until_true(
        "the orphan worker to be stopped",
        Duration::from_secs(60),
        || !alive(orphan_pid),
    )
    .await?;
    wait::until_true(
        "the orphan's directory to be removed",
        Duration::from_secs(10),
        || !Path::new(&orphan_dir).exists(),
    )
    .await?;
    assert!(master
        .log()
        .contains("terminating orphan from a previous run"));
    // The worker dies inside the reaper's terminate call; the ledger row is
    // settled only when that call returns, so wait for it to settle.
    let row = wait::until_seen(
        "the orphan's ledger row to settle",
        Duration::from_secs(30),
        || master.instance_json(&orphan),
        |row| matches!(row["state"].as_str(), Some("gone" | "failed")),
    )
    .await?;
    assert_eq!(row["state"], "gone", "{row:#}");
    // The interrupted build is retried on a fresh worker and finishes.
    let build = master.finished_json(id, FINISH).await?;
    assert_eq!(build["state"], "succeeded", "{build:#}\n{}", master.log());
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn ssh_sleeping_host_is_woken_for_builds_and_put_back_to_sleep() -> Result<()> {
    let tmp = tempdir();
    let key = ClientKey::generate(tmp.path());
    // No sshd runs until the wake command starts one; the sleep command
    // stops it again. Both are argv lists run on the master.
    let host = Sshd::powered_off(tmp.path(), "sleepy", &key);
    let known = write_known_hosts(tmp.path(), &[&host]);
    let pid_file = host.dir.join("sshd.pid").display().to_string();
    let mut entry = HostEntry::new(&host, 1);
    entry.extra = format!(
        "wake = {}\nsleep = {}\nwake_timeout = \"30s\"\n",
        list(&host.daemon_argv()),
        list(&["sh", "-c", "kill \"$(cat \"$1\")\"", "sleep", &pid_file]),
    );
    let pool = PoolSpec {
        max_workers: 1,
        steps: step("hi", "echo awake", ""),
    };
    let master = harness::master(&key, &known, &[entry], &pool)
        .start()
        .await?;
    assert_eq!(host.daemon_pid(), None, "the host should start powered off");

    for round in 1..=2 {
        let build = run_hello(&master).await?;
        assert_eq!(
            build["state"],
            "succeeded",
            "round {round}: {build:#}\n{}",
            master.log()
        );
        // Once its worker is gone, the host is put to sleep.
        let asleep = wait::until_true(
            "the host's sshd to be stopped",
            Duration::from_secs(60),
            || host.daemon_pid().is_none(),
        )
        .await
        .is_ok();
        assert!(
            asleep,
            "round {round}: the host was not put to sleep:\n{}",
            master.log()
        );
        let log = master.log();
        assert_eq!(
            log.matches("running the host's wake command").count(),
            round,
            "{log}"
        );
        assert_eq!(
            log.matches("running the host's sleep command").count(),
            round,
            "{log}"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn ssh_workers_read_their_token_from_a_file_they_delete_and_hold_it_nowhere() -> Result<()> {
    let tmp = tempdir();
    let key = ClientKey::generate(tmp.path());
    let host = Sshd::start(tmp.path(), "tok", &key);
    let known = write_known_hosts(tmp.path(), &[&host]);
    // The step reads its worker's initial environment and arguments, as any
    // process of the same user on the host can.
    let peek = r#"tr '\000' '\n' < /proc/$PPID/environ; tr '\000' ' ' < /proc/$PPID/cmdline; echo; f=$(tr '\000' '\n' < /proc/$PPID/environ | sed -n 's/^BURST_TOKEN_FILE=//p'); if [ -n "$f" ] && [ ! -e "$f" ]; then echo token-file-gone; fi"#;
    let pool = PoolSpec {
        max_workers: 1,
        steps: step("peek", peek, ""),
    };
    let master = harness::master(&key, &known, &[HostEntry::new(&host, 1)], &pool)
        .start()
        .await?;
    let build = run_hello(&master).await?;
    assert_eq!(build["state"], "succeeded", "{build:#}\n{}", master.log());
    let log = master.log_text(build["id"].as_i64().expect("id")).await?;
    assert!(log.contains("token-file-gone"), "{log}");
    assert!(log.contains("BURST_TOKEN_FILE="), "{log}");
    assert!(!log.contains("BURST_TOKEN="), "{log}");
    Ok(())
}
