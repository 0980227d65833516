//! A broken session kills running steps; the worker comes back with its
//! resume token.

use burst_worker::Exit;

use crate::support::{self, FakeMaster, LAUNCH_TOKEN};

#[tokio::test]
async fn reconnects_with_the_resume_token_and_kills_steps() {
    let mut master = FakeMaster::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let worker = support::start(support::config(&master.url, dir.path()));

    let mut first = master.accept().await;
    let hello = first.welcome("resume-1").await;
    assert_eq!(hello.token, LAUNCH_TOKEN);
    first.run(support::sleeper("r", dir.path())).await;
    first.wait_for_output("r", "ready").await;
    let pids = support::sleeper_pids("r", dir.path());
    support::assert_running(&pids).await;

    // The master goes away mid-step.
    drop(first);

    let mut second = master.accept().await;
    let hello = second.welcome("resume-2").await;
    assert_eq!(hello.token, "resume-1");
    assert!(hello.running_steps.is_empty());
    support::assert_gone(&pids).await;

    // And again: each Welcome's token is the one to present next.
    drop(second);
    let mut third = master.accept().await;
    assert_eq!(third.welcome("resume-3").await.token, "resume-2");

    third.run(support::script("after", "echo back")).await;
    assert_eq!(third.collect("after").await.stdout(), "back\n");
    third.shutdown(false).await;
    assert_eq!(support::exited(worker).await, Exit::Shutdown);
}
