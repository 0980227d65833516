//! The master SIGKILLed with workers up: a restart reaps the old run's
//! workers, runs the builds that were still queued, and runs again the
//! builds it interrupted, without using up their retries.

use std::collections::BTreeSet;
use std::time::Duration;

use burst_e2e::{wait, Master};
use burst_master::model::{AttemptState, BuildState};

const CONFIG: &str = r#"
[pools.local]
provider = "local"
labels = ["linux"]
max_workers = 1

[[builders]]
name = "long"
labels = ["linux"]
# No retries: a restart must not need one.
retries = 0

[[builders.steps]]
name = "forever"
run = 'if [ "$BURST_ATTEMPT" = 1 ]; then sleep 1000; fi; echo long-done'


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
    let b = master.wait_build(long, Duration::from_secs(60)).await?;
    assert_eq!(b.state, BuildState::Succeeded, "{b:#?}");
    assert_eq!(b.attempts.len(), 2, "{b:#?}");
    assert_eq!(b.attempts[0].state, AttemptState::Interrupted, "{b:#?}");
    // The old workers' ledger rows are settled.
    let ledger = master.instances().await?;
    for row in ledger.iter().filter(|r| old.contains(&r.worker_id)) {
        assert!(!row.state.is_live(), "{row:#?}");
    }
    Ok(())
}

const RESTARTS: &str = r#"
[master]
build_retries = 1

[pools.local]
provider = "local"
labels = ["linux"]
max_workers = 1

[[builders]]
name = "survivor"
labels = ["linux"]

[[builders.steps]]
name = "work"
run = 'echo started-$BURST_ATTEMPT; if [ "$BURST_ATTEMPT" -lt 3 ]; then sleep 1000; fi; echo finished-$BURST_ATTEMPT'
"#;

/// Two SIGKILLs of the master while the build runs, with one retry: the
/// restarts use none, the build succeeds, and the history keeps both
/// interrupted attempts, none blamed on a worker.
#[tokio::test(flavor = "multi_thread")]
async fn two_master_sigkills_use_up_no_retry() -> anyhow::Result<()> {
    let mut master = Master::start(RESTARTS).await?;
    let id = master.submit("survivor", &[]).await?[0];
    for attempt in 1..=2 {
        let started = format!("started-{attempt}");
        wait::until(
            &format!("attempt {attempt} to start its step"),
            Duration::from_secs(60),
            || {
                let started = started.clone();
                let master = &master;
                async move { Ok(master.log_text(id).await?.contains(&started).then_some(())) }
            },
        )
        .await?;
        master.sigkill();
        master.restart().await?;
    }
    let b = master.wait_build(id, Duration::from_secs(120)).await?;
    assert_eq!(b.state, BuildState::Succeeded, "{b:#?}");
    assert_eq!(b.attempts.len(), 3, "{b:#?}");
    for a in &b.attempts[..2] {
        assert_eq!(a.state, AttemptState::Interrupted, "{b:#?}");
        assert_eq!(
            a.reason.as_deref(),
            Some("the master restarted while the build ran"),
            "{b:#?}"
        );
    }
    assert!(
        b.attempts
            .iter()
            .all(|a| a.state != AttemptState::WorkerLost),
        "{b:#?}"
    );
    // Every attempt's output is kept: none overwrote another.
    let log = master.log_text(id).await?;
    for line in ["started-1", "started-2", "started-3", "finished-3"] {
        assert!(log.contains(line), "{line} missing from:\n{log}");
    }
    let cli = master.cli(&["build", &id.to_string()]).await?;
    assert!(
        cli.stdout.contains("interrupted") && !cli.stdout.contains("worker_lost"),
        "{}",
        cli.stdout
    );
    Ok(())
}

const DISPATCH: &str = r#"
[pools.local]
provider = "local"
labels = ["linux"]
max_workers = 1

[[builders]]
name = "once"
labels = ["linux"]
# No retries: the crash must not need one.
retries = 0

[[builders.steps]]
name = "hi"
run = "echo ran-attempt-$BURST_ATTEMPT"
"#;

/// The master is SIGKILLed (failpoint) right after it sent a build's first
/// step: the attempt was saved before, so after the restart the history
/// keeps it as interrupted and the build runs again as attempt 2, not as a
/// second, unseen "attempt 1".
#[tokio::test(flavor = "multi_thread")]
async fn a_master_killed_right_after_dispatch_keeps_the_attempt() -> anyhow::Result<()> {
    let marks = tempfile::tempdir()?;
    let mark = marks.path().join("after_dispatch");
    let spec = format!(
        "{}:{}",
        burst_master::failpoint::AFTER_DISPATCH,
        mark.display()
    );
    let mut master = burst_e2e::MasterBuilder::config(DISPATCH)
        .env("BURST_FAILPOINT", &spec)
        .start()
        .await?;
    let id = master.submit("once", &[]).await?[0];
    wait::until_true(
        "the master to hit the failpoint (it needs the e2e build: \
         cargo build --workspace --bins, which enables burst-master/failpoints)",
        Duration::from_secs(60),
        || mark.exists() && master.has_exited(),
    )
    .await?;
    master.sigkill();
    master.restart().await?;
    let b = master.wait_build(id, Duration::from_secs(60)).await?;
    assert_eq!(b.state, BuildState::Succeeded, "{b:#?}");
    assert_eq!(
        b.attempts.len(),
        2,
        "the first run is in the history: {b:#?}"
    );
    assert_eq!(b.attempts[0].state, AttemptState::Interrupted, "{b:#?}");
    assert_eq!(b.attempts[1].number, 2, "{b:#?}");
    let log = master.log_text(id).await?;
    assert!(log.contains("ran-attempt-2"), "{log}");
    Ok(())
}
