//! Hello, Welcome, Refused and heartbeats.

use burst_proto::worker_message;
use burst_worker::Exit;

use crate::support::{self, FakeMaster, LAUNCH_TOKEN};

#[tokio::test]
async fn hello_describes_the_worker() {
    let mut master = FakeMaster::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = support::config(&master.url, dir.path());
    config.capacity = 3;
    let worker = support::start(config);
    let mut conn = master.accept().await;
    let hello = conn.refuse("not today", true).await;

    assert_eq!(hello.worker_id, "w1");
    assert_eq!(hello.token, LAUNCH_TOKEN);
    assert_eq!(hello.protocol_version, burst_proto::PROTOCOL_VERSION);
    let platform = hello.platform.expect("platform");
    assert_eq!(platform.os, std::env::consts::OS);
    assert_eq!(platform.arch, std::env::consts::ARCH);
    assert_eq!(platform.default_shell, "sh");
    assert_eq!(hello.labels, ["linux", "test"]);
    assert_eq!(hello.capacity, 3);
    assert_eq!(hello.version, env!("CARGO_PKG_VERSION"));
    assert!(hello.running_steps.is_empty());

    let exit = support::exited(worker).await;
    assert_eq!(exit, Exit::Refused("not today".to_owned()));
    assert_eq!(exit.code(), 2);
}

#[tokio::test]
async fn non_fatal_refusal_retries_with_the_launch_token() {
    let mut master = FakeMaster::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let worker = support::start(support::config(&master.url, dir.path()));
    let first = master.accept().await.refuse("busy", false).await;
    let second = master.accept().await.refuse("go away", true).await;
    assert_eq!(first.token, LAUNCH_TOKEN);
    assert_eq!(second.token, LAUNCH_TOKEN);
    assert_eq!(
        support::exited(worker).await,
        Exit::Refused("go away".to_owned())
    );
}

#[tokio::test]
async fn heartbeats_list_running_steps() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_master, mut conn, worker) = support::connected(support::config("", dir.path())).await;
    // Welcome asked for a heartbeat every 200ms.
    match conn.recv().await.expect("message") {
        worker_message::Msg::Heartbeat(hb) => assert!(hb.running_steps.is_empty()),
        other => panic!("expected a heartbeat, got {other:?}"),
    }
    conn.run(support::script("s1", "sleep 1")).await;
    loop {
        match conn.recv().await.expect("message") {
            worker_message::Msg::Heartbeat(hb) if hb.running_steps == ["s1"] => break,
            worker_message::Msg::Finished(f) => panic!("no heartbeat listed the step: {f:?}"),
            _ => {}
        }
    }
    let run = conn.collect("s1").await;
    assert_eq!(run.finished.exit_code, Some(0));
    conn.shutdown(false).await;
    assert_eq!(support::exited(worker).await, Exit::Shutdown);
}
