//! SIGTERM: running builds get the grace period, then everything burst
//! launched is terminated and the master exits 0.

use std::time::Duration;

use burst_e2e::{procs, wait, Master};
use burst_master::model::{BuildState, InstanceState};
use burst_master::store::{SqliteStore, Store};

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_cancels_after_grace_and_leaves_nothing() -> anyhow::Result<()> {
    let scratch = tempfile::tempdir()?;
    let bg = scratch.path().join("background.pid");
    let config = format!(
        r#"
[master]
shutdown_grace = "2s"

[pools.local]
provider = "local"
labels = ["linux"]
max_workers = 3
min_idle = 1

[[builders]]
name = "long"
labels = ["linux"]

[[builders.steps]]
name = "forever"
run = 'sleep 1000 & echo $! > {bg}; wait'
"#,
        bg = bg.display()
    );
    let mut master = Master::start(&config).await?;
    let id = master.submit("long", &[]).await?[0];
    master
        .wait_step_running(id, 0, Duration::from_secs(30))
        .await?;
    let bg_pid = procs::wait_pid_file(&bg, Duration::from_secs(10)).await?;
    // One busy worker and (min_idle) one idle one.
    master.wait_idle_workers(1, Duration::from_secs(30)).await?;
    let master_id = master.master_id();
    assert!(
        master.worker_processes().len() >= 2,
        "{:?}",
        master.processes()
    );

    // Grace 2 s; the rest is room for terminating workers on a busy machine.
    let status = master.sigterm_and_wait(Duration::from_secs(30)).await?;
    assert!(status.success(), "{status}");
    wait::until_true(
        "no process of this master left",
        Duration::from_secs(5),
        || procs::with_master_id(&master_id).is_empty(),
    )
    .await?;
    procs::wait_gone(bg_pid, Duration::from_secs(1)).await?;
    assert!(!master.state_dir().join("run.json").exists());
    // A clean stop checkpoints the WAL: the database file stands alone.
    let wal = master.state_dir().join("burst.db-wal");
    assert!(
        std::fs::metadata(&wal).map_or(true, |m| m.len() == 0),
        "{} holds {:?} bytes after a clean stop",
        wal.display(),
        std::fs::metadata(&wal).map(|m| m.len())
    );

    // The master is gone: read what it left in its store.
    let store = SqliteStore::open(&master.state_dir()).await?;
    let ledger = store.list_instances(100).await?;
    assert!(ledger.len() >= 2, "{ledger:#?}");
    for row in &ledger {
        assert!(
            matches!(row.state, InstanceState::Gone | InstanceState::Failed),
            "{row:#?}"
        );
    }
    let build = store
        .get_build(id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("build {id} missing from the store"))?;
    assert_eq!(build.state, BuildState::Cancelled, "{build:#?}");
    assert!(
        build.reason.as_deref().unwrap_or("").contains("shut down"),
        "{build:#?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_a_build_finish_within_grace() -> anyhow::Result<()> {
    let scratch = tempfile::tempdir()?;
    let go = scratch.path().join("go");
    let config = format!(
        r#"
[master]
shutdown_grace = "60s"

[pools.local]
provider = "local"
labels = ["linux"]

[[builders]]
name = "gate"
labels = ["linux"]

[[builders.steps]]
name = "wait-for-go"
run = 'i=0; while [ ! -e {go} ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; echo finished-in-grace'
"#,
        go = go.display()
    );
    let mut master = Master::start(&config).await?;
    let id = master.submit("gate", &[]).await?[0];
    master
        .wait_step_running(id, 0, Duration::from_secs(30))
        .await?;
    let master_id = master.master_id();

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(master.pid()),
        nix::sys::signal::Signal::SIGTERM,
    )?;
    // While the build finishes, new submits are refused.
    let refused = wait::until("submits to be refused", Duration::from_secs(10), || async {
        let (status, body) = master
            .api_post("/api/v1/builds", &serde_json::json!({"builder": "gate"}))
            .await?;
        Ok((status == 503).then_some(body))
    })
    .await?;
    assert!(refused.to_string().contains("shutting down"), "{refused}");
    assert_eq!(master.build(id).await?.state, BuildState::Running);

    std::fs::write(&go, "")?;
    let status = master.sigterm_and_wait(Duration::from_secs(60)).await?;
    assert!(status.success(), "{status}");
    wait::until_true(
        "no process of this master left",
        Duration::from_secs(5),
        || procs::with_master_id(&master_id).is_empty(),
    )
    .await?;
    let store = SqliteStore::open(&master.state_dir()).await?;
    let build = store
        .get_build(id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("build {id} missing from the store"))?;
    assert_eq!(build.state, BuildState::Succeeded, "{build:#?}");
    for row in store.list_instances(100).await? {
        assert_eq!(row.state, InstanceState::Gone, "{row:#?}");
    }
    Ok(())
}
