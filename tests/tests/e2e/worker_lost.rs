//! A worker killed mid-build: the build is retried on a new worker.

use std::time::Duration;

use burst_e2e::{procs, Master};
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
