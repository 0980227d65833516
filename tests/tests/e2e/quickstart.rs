//! The README's first run: the shipped example config, `burst submit hello
//! --follow`, fresh workers that go away once idle.

use std::time::Duration;

use burst_e2e::bins::workspace_root;
use burst_e2e::{wait, MasterBuilder};
use burst_master::model::InstanceState;

#[tokio::test(flavor = "multi_thread")]
async fn quickstart_submit_follow_then_workers_torn_down() -> anyhow::Result<()> {
    // The example file unchanged; only where it lives and how fast idle
    // workers go come from the environment.
    let master = MasterBuilder::config_file(workspace_root().join("examples/quickstart.toml"))
        .env("BURST__POOLS__LOCAL__IDLE_TIMEOUT", "2s")
        .start()
        .await?;

    let out = master
        .cli_timeout(&["submit", "hello", "--follow"], Duration::from_secs(60))
        .await?;
    assert!(out.success(), "{out:?}");
    assert!(out.stdout.contains("hello from burst build"), "{out:?}");
    assert!(out.stdout.contains("bonjour from burst build"), "{out:?}");

    // Both cells got a freshly launched worker.
    let ledger = master.instances().await?;
    assert_eq!(ledger.len(), 2, "{ledger:#?}");

    wait::until(
        "the idle workers to be stopped",
        Duration::from_secs(30),
        || async { Ok(master.workers().await?.is_empty().then_some(())) },
    )
    .await?;
    wait::until_true(
        "no burst-worker process left",
        Duration::from_secs(10),
        || master.worker_processes().is_empty(),
    )
    .await?;
    let ledger = master.instances().await?;
    assert_eq!(ledger.len(), 2, "{ledger:#?}");
    assert!(
        ledger.iter().all(|i| i.state == InstanceState::Gone),
        "{ledger:#?}"
    );
    assert!(master.live_instances().await?.is_empty());
    Ok(())
}
