//! A step that outlives its timeout is killed with everything it started.

use std::time::Duration;

use burst_e2e::{procs, Master};
use burst_master::model::{BuildState, StepState};

#[tokio::test(flavor = "multi_thread")]
async fn step_timeout_kills_the_whole_tree() -> anyhow::Result<()> {
    let scratch = tempfile::tempdir()?;
    let bg = scratch.path().join("background.pid");
    let shell = scratch.path().join("shell.pid");
    let config = format!(
        r#"
[pools.local]
provider = "local"
labels = ["linux"]

[[builders]]
name = "hang"
labels = ["linux"]

[[builders.steps]]
name = "sleepy"
timeout = "1s"
run = 'echo $$ > {shell}; sleep 1000 & echo $! > {bg}; sleep 1000'
"#,
        shell = shell.display(),
        bg = bg.display()
    );
    let master = Master::start(&config).await?;
    let ids = master.submit("hang", &[]).await?;
    let build = master.wait_build(ids[0], Duration::from_secs(60)).await?;
    assert_eq!(build.state, BuildState::TimedOut, "{build:#?}");
    let step = &build.attempts[0].steps[0];
    assert_eq!(step.state, StepState::TimedOut, "{build:#?}");

    // Both pids were written before the timeout fired (1 s is plenty).
    let bg_pid = procs::wait_pid_file(&bg, Duration::from_secs(1)).await?;
    let shell_pid = procs::wait_pid_file(&shell, Duration::from_secs(1)).await?;
    procs::wait_gone(bg_pid, Duration::from_secs(5)).await?;
    procs::wait_gone(shell_pid, Duration::from_secs(5)).await?;
    // The worker survives its step's timeout and takes the next build.
    assert_eq!(
        master.worker_processes().len(),
        1,
        "{:?}",
        master.processes()
    );
    let log = master.log_text(ids[0]).await?;
    assert!(log.contains("== sleepy timed out"), "{log}");
    Ok(())
}
