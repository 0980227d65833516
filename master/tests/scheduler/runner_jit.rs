//! Runner steps (GitHub Actions runners): the JIT config is asked for when
//! the step is about to be sent, goes to the worker in the step's stdin
//! and nowhere else; a cancel while it is awaited ends the build without
//! sending the step, and a config that cannot be had fails the step.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use burst_master::model::{BuildId, BuildState, RunnerStep};
use burst_master::scheduler::{JitConfig, RunnerConfigs};
use tokio::sync::Notify;

use crate::harness::{new_build, pool, Harness, NewFake};
use burst_providers::fake::FakeProvider;

/// Hands out its answers one per `release`.
struct Gate {
    answers: Mutex<VecDeque<Result<String, String>>>,
    release: Notify,
    asked: AtomicUsize,
    names: Mutex<Vec<(BuildId, String)>>,
}

impl Gate {
    fn new(answers: Vec<Result<String, String>>) -> Arc<Self> {
        Arc::new(Self {
            answers: Mutex::new(answers.into()),
            release: Notify::new(),
            asked: AtomicUsize::new(0),
            names: Mutex::default(),
        })
    }

    async fn wait_asked(&self, n: usize) {
        for _ in 0..600 {
            if self.asked.load(Ordering::SeqCst) >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the JIT config was not asked for");
    }
}

#[async_trait]
impl RunnerConfigs for Gate {
    async fn jit_config(
        &self,
        runner: &RunnerStep,
        build: BuildId,
        worker_id: &str,
    ) -> Result<JitConfig, String> {
        assert_eq!(runner.target, "acme/app");
        self.names
            .lock()
            .unwrap()
            .push((build, worker_id.to_owned()));
        self.asked.fetch_add(1, Ordering::SeqCst);
        self.release.notified().await;
        let answer = self.answers.lock().unwrap().pop_front();
        answer
            .unwrap_or_else(|| Err("no answer left".into()))
            .map(JitConfig)
    }
}

fn runner_build() -> burst_master::model::NewBuild {
    let mut b = new_build(1);
    b.steps[0].runner = Some(RunnerStep {
        target: "acme/app".into(),
        org: false,
        labels: vec!["self-hosted".into(), "linux".into()],
        runner_group_id: 1,
    });
    b
}

async fn start(gate: Arc<Gate>) -> Harness {
    let provider = FakeProvider::new(Duration::from_secs(1));
    Harness::start_with_runner_configs(pool(2), provider, gate).await
}

#[tokio::test(start_paused = true)]
async fn the_step_waits_for_its_config_and_carries_it_on_stdin_only() {
    let gate = Gate::new(vec![Ok("jit-config-secret".into())]);
    let h = start(gate.clone()).await;
    let id = h.handle.submit(vec![runner_build()]).await.unwrap()[0];
    gate.wait_asked(1).await;
    // Asked while the step is due: nothing was sent before the config.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(h.received().is_empty(), "{:?}", h.received());
    let (build, worker) = gate.names.lock().unwrap()[0].clone();
    assert_eq!(build, id);
    assert!(worker.starts_with("pool-"), "{worker}");
    gate.release.notify_one();
    let done = h
        .wait_build(id, Duration::from_secs(60), |b| b.state.is_finished())
        .await;
    assert_eq!(done.state, BuildState::Succeeded, "{done:#?}");
    let got = h.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].stdin, b"jit-config-secret");
    assert!(got[0].attempt_saved);
    // Kept nowhere: not in the stored build.
    let stored = serde_json::to_string(&h.build(id).await).unwrap();
    assert!(!stored.contains("jit-config-secret"), "{stored}");
    assert_eq!(gate.asked.load(Ordering::SeqCst), 1, "asked once");
}

#[tokio::test(start_paused = true)]
async fn a_cancel_while_the_config_is_awaited_ends_the_build_unsent() {
    let gate = Gate::new(vec![Ok("late-config".into())]);
    let h = start(gate.clone()).await;
    let id = h.handle.submit(vec![runner_build()]).await.unwrap()[0];
    gate.wait_asked(1).await;
    h.handle.cancel(id).await.unwrap();
    let done = h
        .wait_build(id, Duration::from_secs(60), |b| b.state.is_finished())
        .await;
    assert_eq!(done.state, BuildState::Cancelled, "{done:#?}");
    // The config arriving after the cancel is dropped, never sent.
    gate.release.notify_one();
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(h.received().is_empty(), "{:?}", h.received());
}

#[tokio::test(start_paused = true)]
async fn a_config_that_cannot_be_had_fails_the_step_with_the_reason() {
    let gate = Gate::new(vec![Err(
        "GitHub answered 403: Resource not accessible".into()
    )]);
    let h = start(gate.clone()).await;
    let id = h.handle.submit(vec![runner_build()]).await.unwrap()[0];
    gate.wait_asked(1).await;
    gate.release.notify_one();
    let done = h
        .wait_build(id, Duration::from_secs(60), |b| b.state.is_finished())
        .await;
    assert_eq!(done.state, BuildState::Failed, "{done:#?}");
    let step = &done.attempts[0].steps[0];
    let error = step.error.as_deref().unwrap_or("");
    assert!(
        error.contains("failed to get a GitHub runner config") && error.contains("403"),
        "{step:#?}"
    );
    assert!(h.received().is_empty(), "{:?}", h.received());
}
