//! The real binary's exit codes: 2 refused, 3 orphaned, 0 on SIGTERM.

use std::time::{Duration, Instant};

use crate::support::{self, FakeMaster};

#[tokio::test]
async fn fatal_refusal_exits_2() {
    let mut master = FakeMaster::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = support::spawn_binary(&master.url, dir.path(), &[]);
    master.accept().await.refuse("unknown worker", true).await;
    assert_eq!(support::exit_code(&mut child, dir.path()).await, 2);
    let log = support::read_log(dir.path());
    assert!(log.contains("unknown worker"), "{log}");
    assert!(
        !log.contains(support::LAUNCH_TOKEN),
        "the token leaked into the log:\n{log}"
    );
}

#[tokio::test]
async fn no_master_for_max_disconnected_exits_3() {
    // A port nobody listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    drop(listener);

    let dir = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();
    let mut child = support::spawn_binary(&url, dir.path(), &["--max-disconnected", "1s"]);
    assert_eq!(support::exit_code(&mut child, dir.path()).await, 3);
    let took = started.elapsed();
    assert!(took >= Duration::from_secs(1), "{took:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    let log = support::read_log(dir.path());
    assert!(log.contains("orphaned"), "{log}");
}

#[tokio::test]
async fn sigterm_kills_steps_and_exits_0() {
    let mut master = FakeMaster::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = support::spawn_binary(&master.url, dir.path(), &[]);
    let mut conn = master.accept().await;
    conn.welcome("resume-1").await;
    conn.run(support::sleeper("s", dir.path())).await;
    conn.wait_for_output("s", "ready").await;
    let pids = support::sleeper_pids("s", dir.path());
    support::assert_running(&pids).await;

    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id().expect("pid")).expect("pid"));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("kill");
    let finished = conn.collect("s").await.finished;
    assert!(finished.cancelled, "{finished:?}");
    drop(conn);
    assert_eq!(support::exit_code(&mut child, dir.path()).await, 0);
    support::assert_gone(&pids).await;
}
