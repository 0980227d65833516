//! Results are bound to the session a step was sent on: another worker's
//! session, or a stale one, cannot report it.

use std::time::Duration;

use burst_master::model::BuildState;
use burst_proto::{master_message, worker_message, MasterMessage, StepFinished};
use tokio::sync::mpsc;

use crate::harness::*;

fn finished(step_run_id: &str, exit_code: i32) -> worker_message::Msg {
    worker_message::Msg::Finished(StepFinished {
        step_run_id: step_run_id.to_owned(),
        exit_code: Some(exit_code),
        ..Default::default()
    })
}

/// The step id of the first `RunStep` in `rx`, if one came.
fn run_step(rx: &mut mpsc::Receiver<Box<MasterMessage>>) -> Option<String> {
    while let Ok(msg) = rx.try_recv() {
        if let Some(master_message::Msg::Run(run)) = msg.msg {
            return Some(run.step_run_id);
        }
    }
    None
}

#[tokio::test(start_paused = true)]
async fn a_result_from_another_workers_session_or_a_stale_one_is_refused() {
    let provider = FakeProvider::new(Duration::from_secs(1));
    provider.plan([Behaviour::Silent, Behaviour::Silent]);
    let mut cfg = pool(2);
    cfg.min_idle = 2;
    let h = Harness::start(cfg, provider).await;
    let workers = h
        .wait_workers(Duration::from_secs(5), |w| w.len() == 2)
        .await;
    // Both workers say hello themselves: each holds a valid session.
    let mut sessions = Vec::new();
    for w in &workers {
        let (tx, rx) = mpsc::channel(16);
        let token = h.provider.token(&w.worker_id);
        let session = h
            .handle
            .hello(hello(&w.worker_id, &token), tx)
            .await
            .unwrap();
        sessions.push((w.worker_id.clone(), session, rx));
    }
    let id = h.submit(1, 1).await[0];
    let mut sent = None;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        for (i, (_, _, rx)) in sessions.iter_mut().enumerate() {
            if let Some(step) = run_step(rx) {
                sent = Some((i, step));
            }
        }
        if sent.is_some() {
            break;
        }
    }
    let (runner, step) = sent.expect("a RunStep to one of the workers");
    let (real_id, real_session, _) = &sessions[runner];
    let (other_id, other_session, _) = &sessions[1 - runner];

    // The other worker, on its own valid session, reports a failure.
    h.handle
        .from_worker(other_id, *other_session, finished(&step, 1))
        .await;
    // The right worker on a session that is not its current one.
    h.handle
        .from_worker(real_id, real_session + 100, finished(&step, 1))
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let build = h.build(id).await;
    assert_eq!(build.state, BuildState::Running, "{build:#?}");

    // The real result stands.
    h.handle
        .from_worker(real_id, *real_session, finished(&step, 0))
        .await;
    let builds = h.wait_finished(&[id], Duration::from_secs(10)).await;
    assert_eq!(builds[0].state, BuildState::Succeeded, "{builds:#?}");
    assert_eq!(builds[0].attempts.len(), 1);
}
