//! A worker killed mid-build: the build is retried on a new worker.

use std::time::Duration;

use burst_e2e::{procs, wait, Master};
use burst_master::model::{AttemptState, BuildState};

const CONFIG: &str = r#"
[master]
build_retries = 1

[pools.local]
provider = "local"
labels = ["linux"]
max_workers = 2

[[builders]]
name = "slow"
labels = ["linux"]

[[builders.steps]]
name = "nap"
run = "sleep 3; echo woke-up"
"#;

#[tokio::test(flavor = "multi_thread")]
async fn worker_sigkilled_mid_build_is_retried_on_a_new_worker() -> anyhow::Result<()> {
    let master = Master::start(CONFIG).await?;
    let id = master.submit("slow", &[]).await?[0];
    let build = master
        .wait_step_running(id, 0, Duration::from_secs(30))
        .await?;
    let first = build.attempts[0].worker_id.clone();

    let ledger = master.instances().await?;
    let row = ledger
        .iter()
        .find(|i| i.worker_id == first)
        .ok_or_else(|| anyhow::anyhow!("worker {first} not in the ledger: {ledger:#?}"))?;
    let pid = row.details["pid"]
        .as_i64()
        .ok_or_else(|| anyhow::anyhow!("no pid in {row:#?}"))? as i32;
    // The pid really is that worker (read back from its environment).
    let env = procs::environ(pid).unwrap_or_default();
    assert_eq!(env.get("BURST_WORKER_ID"), Some(&first), "pid {pid}");
    procs::sigkill(pid);

    let build = master.wait_build(id, Duration::from_secs(60)).await?;
    assert_eq!(build.state, BuildState::Succeeded, "{build:#?}");
    assert_eq!(build.attempts.len(), 2, "{build:#?}");
    assert_eq!(
        build.attempts[0].state,
        AttemptState::WorkerLost,
        "{build:#?}"
    );
    assert_eq!(
        build.attempts[1].state,
        AttemptState::Succeeded,
        "{build:#?}"
    );
    assert_ne!(build.attempts[1].worker_id, first, "{build:#?}");
    let log = master.log_text(id).await?;
    assert!(log.contains("== attempt 1 lost"), "{log}");
    assert!(log.contains("woke-up"), "{log}");
    Ok(())
}

/// A worker that stops answering (SIGSTOP: its connection stays open) is
/// declared lost after the missed heartbeats, its build is retried, and the
/// frozen process is terminated, not leaked.
#[tokio::test(flavor = "multi_thread")]
async fn frozen_worker_is_declared_lost_and_terminated() -> anyhow::Result<()> {
    let config = CONFIG.replace(
        "build_retries = 1",
        "build_retries = 1\nheartbeat_interval = \"300ms\"\nheartbeat_misses = 2",
    );
    let master = Master::start(&config).await?;
    let id = master.submit("slow", &[]).await?[0];
    let build = master
        .wait_step_running(id, 0, Duration::from_secs(30))
        .await?;
    let first = build.attempts[0].worker_id.clone();
    let frozen: Vec<i32> = master
        .processes()
        .into_iter()
        .filter(|p| p.worker_id.as_deref() == Some(first.as_str()))
        .map(|p| p.pid)
        .collect();
    assert!(!frozen.is_empty());
    for pid in &frozen {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(*pid),
            nix::sys::signal::Signal::SIGSTOP,
        )?;
    }

    let build = master.wait_build(id, Duration::from_secs(60)).await?;
    assert_eq!(build.state, BuildState::Succeeded, "{build:#?}");
    assert_eq!(build.attempts.len(), 2, "{build:#?}");
    assert_eq!(
        build.attempts[0].state,
        AttemptState::WorkerLost,
        "{build:#?}"
    );
    assert_ne!(build.attempts[1].worker_id, first, "{build:#?}");
    // The local provider SIGKILLs what SIGTERM did not stop.
    for pid in frozen {
        procs::wait_gone(pid, Duration::from_secs(30)).await?;
    }
    wait::until(
        "the frozen worker to leave the ledger",
        Duration::from_secs(30),
        || async {
            let ledger = master.instances().await?;
            Ok(ledger
                .iter()
                .find(|i| i.worker_id == first)
                .filter(|i| !i.state.is_live())
                .cloned())
        },
    )
    .await?;
    Ok(())
}

/// A worker that dies abruptly cannot stop its steps (they run in their own
/// process groups): terminating the lost worker must still take them.
#[tokio::test(flavor = "multi_thread")]
async fn steps_of_a_killed_worker_do_not_outlive_it() -> anyhow::Result<()> {
    let scratch = tempfile::tempdir()?;
    let bg = scratch.path().join("background.pid");
    let config = format!(
        r#"
[master]
build_retries = 1

[pools.local]
provider = "local"
labels = ["linux"]
max_workers = 2

[[builders]]
name = "first-hangs"
labels = ["linux"]

[[builders.steps]]
name = "hang-once"
run = 'if [ "$BURST_ATTEMPT" = 1 ]; then sleep 1000 & echo $! > {bg}; wait; fi; echo attempt-$BURST_ATTEMPT'
"#,
        bg = bg.display()
    );
    let master = Master::start(&config).await?;
    let id = master.submit("first-hangs", &[]).await?[0];
    let build = master
        .wait_step_running(id, 0, Duration::from_secs(30))
        .await?;
    let first = build.attempts[0].worker_id.clone();
    let bg_pid = procs::wait_pid_file(&bg, Duration::from_secs(10)).await?;
    let agent = master
        .worker_processes()
        .into_iter()
        .find(|p| p.worker_id.as_deref() == Some(first.as_str()))
        .ok_or_else(|| anyhow::anyhow!("no agent for {first}: {:?}", master.processes()))?;
    procs::sigkill(agent.pid);

    let build = master.wait_build(id, Duration::from_secs(60)).await?;
    assert_eq!(build.state, BuildState::Succeeded, "{build:#?}");
    assert_eq!(build.attempts.len(), 2, "{build:#?}");
    assert!(master.log_text(id).await?.contains("attempt-2"));
    procs::wait_gone(bg_pid, Duration::from_secs(30))
        .await
        .map_err(|e| anyhow::anyhow!("{e:#}; left over: {:?}", master.processes()))?;
    Ok(())
}
