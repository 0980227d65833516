//! A broken session leaves running steps alone: the worker comes back with
//! its resume token, names its steps, and sends their output again from the
//! offset the master names, then the result. A step the master no longer
//! names is killed; a step whose lease runs out is killed by the worker.

use burst_proto::{master_message, worker_message, Lease, ResultAck};
use burst_worker::Exit;

use crate::support::{self, FakeMaster, LAUNCH_TOKEN};

#[tokio::test]
async fn a_step_outlives_its_session_and_resumes_its_output() {
    let mut master = FakeMaster::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let worker = support::start(support::config(&master.url, dir.path()));

    let mut first = master.accept().await;
    let hello = first.welcome("resume-1").await;
    assert_eq!(hello.token, LAUNCH_TOKEN);
    let gate = dir.path().join("gate");
    let script = format!(
        "echo one; echo two; while [ ! -e '{}' ]; do sleep 0.05; done; echo three",
        gate.display()
    );
    first.run(support::script("r", &script)).await;
    first.wait_for_output("r", "two").await;

    // The master goes away mid-step; the step goes on.
    drop(first);
    std::fs::write(&gate, "").expect("open the gate");

    let mut second = master.accept().await;
    // The master kept "one\n" (4 bytes) of the step's output.
    let hello = second.welcome_with("resume-2", 60_000, &[("r", 4)]).await;
    assert_eq!(hello.token, "resume-1");
    let named: Vec<&String> = hello
        .running_steps
        .iter()
        .chain(&hello.finished_steps)
        .collect();
    assert_eq!(named, ["r"], "{hello:?}");
    let mut rest = Vec::new();
    let finished = loop {
        match second.recv_no_heartbeat().await {
            worker_message::Msg::Output(o) if o.step_run_id == "r" => {
                assert_eq!(
                    o.offset,
                    4 + rest.len() as u64,
                    "contiguous from the master's offset"
                );
                rest.extend(o.data);
            }
            worker_message::Msg::Finished(f) if f.step_run_id == "r" => break f,
            _ => {}
        }
    };
    assert_eq!(String::from_utf8_lossy(&rest), "two\nthree\n");
    assert_eq!(finished.exit_code, Some(0), "{finished:?}");

    // Not acknowledged: the result is offered again on the next session,
    // with no output left to send.
    drop(second);
    let mut third = master.accept().await;
    let hello = third.welcome_with("resume-3", 60_000, &[("r", 14)]).await;
    assert_eq!(hello.token, "resume-2");
    assert_eq!(hello.finished_steps, ["r"]);
    match third.recv_no_heartbeat().await {
        worker_message::Msg::Finished(f) => assert_eq!(f.step_run_id, "r"),
        other => panic!("expected the result again, got {other:?}"),
    }
    third
        .send(master_message::Msg::ResultAck(ResultAck {
            step_run_id: "r".into(),
        }))
        .await;

    // Acknowledged: a later session hears nothing of it.
    drop(third);
    let mut fourth = master.accept().await;
    let hello = fourth.welcome("resume-4").await;
    assert!(
        hello.running_steps.is_empty() && hello.finished_steps.is_empty(),
        "{hello:?}"
    );
    fourth.run(support::script("after", "echo back")).await;
    assert_eq!(fourth.collect("after").await.stdout(), "back\n");
    fourth.shutdown(false).await;
    assert_eq!(support::exited(worker).await, Exit::Shutdown);
}

#[tokio::test]
async fn a_step_the_master_does_not_take_back_is_killed() {
    let mut master = FakeMaster::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let worker = support::start(support::config(&master.url, dir.path()));
    let mut first = master.accept().await;
    first.welcome("resume-1").await;
    first.run(support::sleeper("r", dir.path())).await;
    first.wait_for_output("r", "ready").await;
    let pids = support::sleeper_pids("r", dir.path());
    support::assert_running(&pids).await;
    drop(first);

    let mut second = master.accept().await;
    let hello = second.welcome_with("resume-2", 60_000, &[]).await;
    assert_eq!(hello.running_steps, ["r"]);
    support::assert_gone(&pids).await;
    // Nothing is reported for it, on this session or the next.
    drop(second);
    let mut third = master.accept().await;
    let hello = third.welcome("resume-3").await;
    assert!(
        hello.running_steps.is_empty() && hello.finished_steps.is_empty(),
        "{hello:?}"
    );
    third.shutdown(false).await;
    assert_eq!(support::exited(worker).await, Exit::Shutdown);
}

/// Fencing: without a renewal the worker kills its step when the lease runs
/// out, whether or not a master is there, and reports why once one is.
#[tokio::test]
async fn a_lease_that_runs_out_kills_the_step() {
    let mut master = FakeMaster::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let worker = support::start(support::config(&master.url, dir.path()));
    let mut first = master.accept().await;
    first.welcome_with("resume-1", 60_000, &[]).await;
    first.run(support::sleeper("r", dir.path())).await;
    first.wait_for_output("r", "ready").await;
    let pids = support::sleeper_pids("r", dir.path());
    // A short renewal, then silence (the session stays open).
    first
        .send(master_message::Msg::Lease(Lease { step_lease_ms: 300 }))
        .await;
    support::assert_gone(&pids).await;
    let finished = loop {
        match first.recv_no_heartbeat().await {
            worker_message::Msg::Finished(f) if f.step_run_id == "r" => break f,
            _ => {}
        }
    };
    assert!(finished.lease_expired, "{finished:?}");
    assert!(finished.error.contains("step lease"), "{finished:?}");
    first.shutdown(false).await;
    assert_eq!(support::exited(worker).await, Exit::Shutdown);
}
