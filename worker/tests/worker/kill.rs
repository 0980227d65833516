//! Timeouts, cancels and shutdowns kill the step's whole process tree, and
//! nothing a finished step started in the background survives it.

use std::time::Duration;

use burst_proto::worker_message;
use burst_worker::Exit;

use crate::support;

#[tokio::test]
async fn timeout_kills_the_tree() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_master, mut conn, worker) = support::connected(support::config("", dir.path())).await;

    let mut step = support::sleeper("t", dir.path());
    step.timeout_ms = 500;
    conn.run(step).await;
    let run = conn.collect("t").await;
    let f = &run.finished;
    assert!(f.timed_out, "{f:?}");
    assert!(!f.cancelled);
    assert_eq!(f.signal, Some(libc_sigterm()), "{f:?}");
    assert!(f.duration_ms >= 500 && f.duration_ms < 5000, "{f:?}");
    support::assert_gone(&support::sleeper_pids("t", dir.path())).await;

    conn.shutdown(false).await;
    support::exited(worker).await;
}

#[tokio::test]
async fn background_processes_die_with_the_step() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_master, mut conn, worker) = support::connected(support::config("", dir.path())).await;

    let pidfile = dir.path().join("bg.pid");
    conn.run(support::script(
        "bg",
        &format!(
            "sleep 1000 & echo $! > '{}'; echo started",
            pidfile.display()
        ),
    ))
    .await;
    let run = conn.collect("bg").await;
    assert_eq!(run.finished.exit_code, Some(0), "{run:?}");
    assert_eq!(run.stdout(), "started\n");
    // The background sleep held the output pipe; the step must not wait on it.
    assert!(run.finished.duration_ms < 3000, "{run:?}");
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .expect("pidfile")
        .trim()
        .parse()
        .expect("pid");
    support::assert_gone(&[pid]).await;

    conn.shutdown(false).await;
    support::exited(worker).await;
}

#[tokio::test]
async fn cancel_kills_the_tree() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_master, mut conn, worker) = support::connected(support::config("", dir.path())).await;

    conn.run(support::sleeper("c", dir.path())).await;
    conn.wait_for_output("c", "ready").await;
    let pids = support::sleeper_pids("c", dir.path());
    support::assert_running(&pids).await;
    conn.cancel("c").await;
    let run = conn.collect("c").await;
    assert!(run.finished.cancelled, "{run:?}");
    assert!(!run.finished.timed_out);
    support::assert_gone(&pids).await;

    // Cancelling something unknown is harmless.
    conn.cancel("nope").await;
    conn.run(support::script("after", "echo still here")).await;
    assert_eq!(conn.collect("after").await.stdout(), "still here\n");

    conn.shutdown(false).await;
    support::exited(worker).await;
}

#[tokio::test]
async fn shutdown_without_drain_kills_running_steps() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_master, mut conn, worker) = support::connected(support::config("", dir.path())).await;

    conn.run(support::sleeper("k", dir.path())).await;
    conn.wait_for_output("k", "ready").await;
    let pids = support::sleeper_pids("k", dir.path());
    support::assert_running(&pids).await;
    let rest = tokio::time::timeout(Duration::from_secs(10), conn.shutdown(false))
        .await
        .expect("shutdown in time");
    let cancelled = rest
        .iter()
        .any(|m| matches!(m, worker_message::Msg::Finished(f) if f.cancelled));
    assert!(cancelled, "{rest:?}");
    assert_eq!(support::exited(worker).await, Exit::Shutdown);
    support::assert_gone(&pids).await;
}

fn libc_sigterm() -> i32 {
    nix::sys::signal::Signal::SIGTERM as i32
}
