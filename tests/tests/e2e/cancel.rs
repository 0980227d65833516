//! `burst cancel` stops a running build and its whole process tree.

use std::time::Duration;

use burst_e2e::{procs, Master};
use burst_master::model::BuildState;

#[tokio::test(flavor = "multi_thread")]
async fn cancel_running_build_kills_its_tree() -> anyhow::Result<()> {
    let scratch = tempfile::tempdir()?;
    let bg = scratch.path().join("background.pid");
    let shell = scratch.path().join("shell.pid");
    let config = format!(
        r#"
[pools.local]
provider = "local"
labels = ["linux"]

[[builders]]
name = "long"
labels = ["linux"]

[[builders.steps]]
name = "forever"
run = 'echo $$ > {shell}; sleep 1000 & echo $! > {bg}; wait'

[[builders.steps]]
name = "after"
run = "echo should-not-run"
"#,
        shell = shell.display(),
        bg = bg.display()
    );
    let master = Master::start(&config).await?;
    let id = master.submit("long", &[]).await?[0];
    master
        .wait_step_running(id, 0, Duration::from_secs(30))
        .await?;
    let bg_pid = procs::wait_pid_file(&bg, Duration::from_secs(10)).await?;
    let shell_pid = procs::wait_pid_file(&shell, Duration::from_secs(10)).await?;
    assert!(procs::is_running(bg_pid) && procs::is_running(shell_pid));

    let out = master.cli(&["cancel", &id.to_string()]).await?;
    assert!(out.success(), "{out:?}");
    assert!(out.stdout.starts_with(&format!("build {id}: ")), "{out:?}");

    let build = master.wait_build(id, Duration::from_secs(30)).await?;
    assert_eq!(build.state, BuildState::Cancelled, "{build:#?}");
    procs::wait_gone(bg_pid, Duration::from_secs(5)).await?;
    procs::wait_gone(shell_pid, Duration::from_secs(5)).await?;
    let log = master.log_text(id).await?;
    assert!(!log.contains("should-not-run"), "{log}");

    // Cancelling again is refused: the build is finished.
    let again = master.cli(&["cancel", &id.to_string()]).await?;
    assert_eq!(again.code, Some(2), "{again:?}");
    assert!(again.stderr.contains("already finished"), "{again:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_queued_build_never_runs_it() -> anyhow::Result<()> {
    let scratch = tempfile::tempdir()?;
    let ran = scratch.path().join("ran");
    let config = format!(
        r#"
[pools.local]
provider = "local"
labels = ["linux"]
max_workers = 1

[[builders]]
name = "block"
labels = ["linux"]

[[builders.steps]]
name = "hold"
run = "sleep 1000"

[[builders]]
name = "marker"
labels = ["linux"]

[[builders.steps]]
name = "touch"
run = "touch {ran}"
"#,
        ran = ran.display()
    );
    let master = Master::start(&config).await?;
    let blocker = master.submit("block", &[]).await?[0];
    master
        .wait_step_running(blocker, 0, Duration::from_secs(30))
        .await?;
    let queued = master.submit("marker", &[]).await?[0];
    assert_eq!(master.build(queued).await?.state, BuildState::Queued);

    let out = master.cli(&["cancel", &queued.to_string()]).await?;
    assert!(out.success(), "{out:?}");
    assert_eq!(
        out.stdout,
        format!("build {queued}: cancelled\n"),
        "{out:?}"
    );
    // Free the worker: the cancelled build must not take it.
    let out = master.cli(&["cancel", &blocker.to_string()]).await?;
    assert!(out.success(), "{out:?}");
    let b = master.wait_build(blocker, Duration::from_secs(30)).await?;
    assert_eq!(b.state, BuildState::Cancelled, "{b:#?}");
    master.wait_idle_workers(1, Duration::from_secs(30)).await?;
    let q = master.build(queued).await?;
    assert_eq!(q.state, BuildState::Cancelled, "{q:#?}");
    assert!(q.attempts.is_empty(), "{q:#?}");
    assert!(!ran.exists());
    Ok(())
}
