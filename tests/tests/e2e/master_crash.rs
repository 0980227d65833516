//! The master SIGKILLed with workers up: a restart takes back the old run's
//! workers (they went on with their steps meanwhile) and their builds go on
//! as the same attempt; builds still queued run; workers that cannot come
//! back are reaped once their step lease ran out, and their builds run
//! again without using up a retry.

use std::collections::BTreeSet;
use std::time::Duration;

use burst_e2e::{wait, Master};
use burst_master::model::{AttemptState, BuildState};

const CONFIG: &str = r#"
[master]
heartbeat_interval = "1s"

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
name = "slow"
run = 'echo long-started; sleep 4; echo long-done'


[[builders]]
name = "quick"
labels = ["linux"]

[[builders.steps]]
name = "hi"
run = "echo quick-done-$BURST_BUILD_ID"
"#;

#[tokio::test(flavor = "multi_thread")]
async fn master_sigkill_restart_takes_back_its_worker_and_runs_queued() -> anyhow::Result<()> {
    let mut master = burst_e2e::MasterBuilder::config(CONFIG)
        .same_grpc_port_on_restart()?
        .start()
        .await?;
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
    // The workers outlive their master, and keep running their steps.
    assert!(
        master.processes().iter().any(|p| p.is_worker_agent()),
        "{:?}",
        master.processes()
    );

    master.restart().await?;
    let b = master.wait_build(long, Duration::from_secs(60)).await?;
    assert_eq!(b.state, BuildState::Succeeded, "{b:#?}");
    assert_eq!(b.attempts.len(), 1, "the same attempt: {b:#?}");
    assert!(old.contains(&b.attempts[0].worker_id), "{b:#?}");
    let log = master.log_text(long).await?;
    assert!(
        log.contains("long-started") && log.contains("long-done"),
        "{log}"
    );
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
    }
    // The taken-back worker is live in the ledger; nothing else is.
    let live = master.live_instances().await?;
    assert!(live.iter().all(|r| old.contains(&r.worker_id)), "{live:#?}");
    Ok(())
}

/// A worker that cannot come back (the restarted master listens on another
/// port) is reaped once its step lease surely ran out, with its step; its
/// build runs again, its first attempt ended interrupted, not lost.
#[tokio::test(flavor = "multi_thread")]
async fn a_worker_that_cannot_come_back_is_reaped_after_its_lease() -> anyhow::Result<()> {
    let config = CONFIG
        .replace(
            "heartbeat_interval = \"1s\"",
            "heartbeat_interval = \"1s\"\nstep_lease = \"4s\"",
        )
        .replace(
            "sleep 4",
            "if [ \"$BURST_ATTEMPT\" = 1 ]; then sleep 1000; fi",
        );
    let mut master = Master::start(&config).await?;
    let long = master.submit("long", &[]).await?[0];
    master
        .wait_step_running(long, 0, Duration::from_secs(30))
        .await?;
    let old: BTreeSet<String> = master
        .processes()
        .into_iter()
        .filter_map(|p| p.worker_id)
        .collect();
    master.sigkill();
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
        Duration::from_secs(60),
        || leftovers().is_empty(),
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e:#}: still running: {:?}", leftovers()))?;
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
heartbeat_interval = "1s"

[pools.local]
provider = "local"
labels = ["linux"]
max_workers = 1

[[builders]]
name = "survivor"
labels = ["linux"]

[[builders.steps]]
name = "work"
run = 'echo started-$BURST_ATTEMPT; i=0; while [ $i -lt 16 ]; do echo tick-$i; i=$((i+1)); sleep 0.5; done; echo finished-$BURST_ATTEMPT'
"#;

/// Two SIGKILLs of the master while the build runs, with one retry: the
/// build goes on across both as its first attempt, uses no retry, and no
/// attempt is blamed on a worker or interrupted.
#[tokio::test(flavor = "multi_thread")]
async fn two_master_sigkills_neither_retry_nor_interrupt_a_build() -> anyhow::Result<()> {
    let mut master = burst_e2e::MasterBuilder::config(RESTARTS)
        .same_grpc_port_on_restart()?
        .start()
        .await?;
    let id = master.submit("survivor", &[]).await?[0];
    for tick in ["tick-2", "tick-8"] {
        wait::until(
            &format!("the step to print {tick}"),
            Duration::from_secs(60),
            || {
                let master = &master;
                async move { Ok(master.log_text(id).await?.contains(tick).then_some(())) }
            },
        )
        .await?;
        master.sigkill();
        master.restart().await?;
    }
    let b = master.wait_build(id, Duration::from_secs(120)).await?;
    assert_eq!(b.state, BuildState::Succeeded, "{b:#?}");
    assert_eq!(b.attempts.len(), 1, "{b:#?}");
    assert_eq!(b.attempts[0].state, AttemptState::Succeeded, "{b:#?}");
    // The whole output, once, in order, across both restarts.
    let log = master.log_text(id).await?;
    let ticks: Vec<&str> = log.lines().filter(|l| l.starts_with("tick-")).collect();
    let want: Vec<String> = (0..16).map(|i| format!("tick-{i}")).collect();
    assert_eq!(ticks, want, "{log}");
    assert!(log.contains("finished-1"), "{log}");
    let cli = master.cli(&["build", &id.to_string()]).await?;
    assert!(
        !cli.stdout.contains("interrupted") && !cli.stdout.contains("worker_lost"),
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
run = "echo ran-attempt-$BURST_ATTEMPT; echo ran >> \"$MARKS/$BURST_BUILD_ID.$BURST_ATTEMPT\""
"#;

/// The master is SIGKILLed (failpoint) right after it sent a build's first
/// step: the attempt was saved before, so after the restart the build goes
/// on as that attempt: its worker reports the step (or, if the step never
/// reached it, gets it again), and the step ran exactly once.
#[tokio::test(flavor = "multi_thread")]
async fn a_master_killed_right_after_dispatch_keeps_the_attempt() -> anyhow::Result<()> {
    let marks = tempfile::tempdir()?;
    let mark = marks.path().join("after_dispatch");
    let spec = format!(
        "{}:{}",
        burst_master::failpoint::AFTER_DISPATCH,
        mark.display()
    );
    let config = DISPATCH.replace("$MARKS", &marks.path().display().to_string());
    let mut master = burst_e2e::MasterBuilder::config(&config)
        .same_grpc_port_on_restart()?
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
    assert_eq!(b.attempts.len(), 1, "one attempt, no unseen one: {b:#?}");
    assert_eq!(b.attempts[0].state, AttemptState::Succeeded, "{b:#?}");
    let runs = std::fs::read_to_string(marks.path().join(format!("{id}.1")))?;
    assert_eq!(runs.lines().count(), 1, "the step ran once: {runs:?}");
    let log = master.log_text(id).await?;
    assert!(log.contains("ran-attempt-1"), "{log}");
    Ok(())
}
