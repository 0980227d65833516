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
