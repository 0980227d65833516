//! The master SIGKILLed with workers up: a restart reaps the old run's
//! workers and runs the builds that were still queued.

use std::collections::BTreeSet;
use std::time::Duration;

use burst_e2e::{wait, Master};
use burst_master::model::BuildState;

const CONFIG: &str = r#"
[pools.local]
provider = "local"
labels = ["linux"]
max_workers = 1

[[builders]]
name = "long"
labels = ["linux"]
# Not retried after the crash: the queued builds get the one worker.
retries = 0

[[builders.steps]]
name = "forever"
run = "sleep 1000"

[[builders]]
name = "quick"
labels = ["linux"]

[[builders.steps]]
name = "hi"
run = "echo quick-done-$BURST_BUILD_ID"
"#;

#[tokio::test(flavor = "multi_thread")]
async fn master_sigkill_restart_reaps_old_workers_and_runs_queued() -> anyhow::Result<()> {
    let mut master = Master::start(CONFIG).await?;
    let long = master.submit("long", &[]).await?[0];
    master
        .wait_step_running(long, 0, Duration::from_secs(30))
        .await?;
    let queued = [
        master.submit("quick", &[]).await?[0],
        master.submit("quick", &[]).await?[0],
    ];
    for id in queued {
        let b = master.build(id).await?;
        assert_eq!(b.state, BuildState::Queued, "{b:#?}");
    }
    let old: BTreeSet<String> = master
        .processes()
        .into_iter()
        .filter_map(|p| p.worker_id)
        .collect();
    assert_eq!(old.len(), 1, "{:?}", master.processes());

    master.sigkill();
    // The workers outlive their master (that is what must be cleaned up).
    assert!(
        master.processes().iter().any(|p| p.is_worker_agent()),
        "{:?}",
        master.processes()
    );

    master.restart().await?;
    let leftovers = || {
        master
            .processes()
            .into_iter()
            .filter(|p| p.worker_id.as_ref().is_some_and(|w| old.contains(w)))
            .collect::<Vec<_>>()
    };
    wait::until_true(
        "the old run's processes to be gone",
        Duration::from_secs(20),
        || leftovers().is_empty(),
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e:#}: still running: {:?}", leftovers()))?;

    for id in queued {
        let b = master.wait_build(id, Duration::from_secs(60)).await?;
        assert_eq!(b.state, BuildState::Succeeded, "{b:#?}");
        assert!(
            master
                .log_text(id)
                .await?
                .contains(&format!("quick-done-{id}")),
            "build {id}"
        );
        assert!(!old.contains(&b.attempts[0].worker_id), "{b:#?}");
    }
    let b = master.build(long).await?;
    assert_eq!(b.state, BuildState::WorkerLost, "{b:#?}");
    // The old workers' ledger rows are settled.
    let ledger = master.instances().await?;
    for row in ledger.iter().filter(|r| old.contains(&r.worker_id)) {
        assert!(!row.state.is_live(), "{row:#?}");
    }
    Ok(())
}
