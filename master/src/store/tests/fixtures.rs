//! Records the tests store and read back.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::model::{
    Attempt, AttemptState, Build, BuildState, Command, Instance, InstanceState, NewBuild, StepRun,
    StepSpec, StepState,
};

pub(super) fn new_build(builder: &str) -> NewBuild {
    NewBuild {
        submit_id: format!("s-{builder}"),
        builder: builder.to_string(),
        cell: BTreeMap::from([("os".to_string(), "linux".to_string())]),
        params: BTreeMap::from([("branch".to_string(), "main".to_string())]),
        labels: vec!["linux".to_string(), "x86_64".to_string()],
        steps: vec![
            StepSpec {
                name: "build".to_string(),
                command: Command::Script("cargo build".to_string()),
                command_windows: Some(Command::Argv(vec!["cargo".into(), "build".into()])),
                shell: Some("bash".to_string()),
                env: BTreeMap::from([("RUST_LOG".to_string(), "debug".to_string())]),
                working_dir: Some("src".to_string()),
                timeout: Some(Duration::from_secs(90)),
                continue_on_failure: false,
                always_run: false,
                secrets: Vec::new(),
                artifacts: None,
                runner: None,
            },
            StepSpec {
                name: "cleanup".to_string(),
                command: Command::Argv(vec!["rm".into(), "-rf".into(), "target".into()]),
                command_windows: None,
                shell: None,
                env: BTreeMap::new(),
                working_dir: None,
                timeout: None,
                continue_on_failure: true,
                always_run: true,
                secrets: Vec::new(),
                artifacts: None,
                runner: None,
            },
        ],
        retries: 2,
        submitted_by: Some("alice".to_string()),
    }
}

fn step(index: u32, state: StepState) -> StepRun {
    StepRun {
        index,
        name: format!("step-{index}"),
        state,
        exit_code: None,
        signal: None,
        error: None,
        started_at: None,
        duration_ms: None,
        log_bytes: 0,
    }
}

/// `build` after a lost worker and a successful retry: two attempts whose
/// steps use every optional field and every step state.
pub(super) fn with_two_attempts(mut build: Build) -> Build {
    let all_states = [
        StepState::Pending,
        StepState::Running,
        StepState::Succeeded,
        StepState::Failed,
        StepState::TimedOut,
        StepState::Cancelled,
        StepState::Skipped,
        StepState::Lost,
    ];
    let second_steps = all_states
        .iter()
        .zip(0u32..)
        .map(|(&state, index)| StepRun {
            exit_code: Some(-1 - i32::try_from(index).unwrap()),
            signal: (index % 2 == 0).then_some(9),
            error: Some(format!("error {index}")),
            started_at: Some(1_700_000_000_000 + i64::from(index)),
            duration_ms: Some(u64::from(index) * 1000),
            log_bytes: i64::MAX.unsigned_abs() - u64::from(index),
            ..step(index, state)
        })
        .collect();
    build.state = BuildState::Succeeded;
    build.reason = Some("all steps passed".to_string());
    build.started_at = Some(build.created_at + 10);
    build.finished_at = Some(build.created_at + 5000);
    build.attempts = vec![
        Attempt {
            number: 1,
            worker_id: "w-1".to_string(),
            pool: "docker".to_string(),
            state: AttemptState::WorkerLost,
            reason: Some("worker went away".to_string()),
            started_at: build.created_at + 10,
            finished_at: Some(build.created_at + 2000),
            steps: vec![
                StepRun {
                    exit_code: Some(0),
                    log_bytes: 12,
                    ..step(0, StepState::Succeeded)
                },
                step(1, StepState::Lost),
            ],
        },
        Attempt {
            number: 2,
            worker_id: "w-2".to_string(),
            pool: "docker".to_string(),
            state: AttemptState::Succeeded,
            reason: None,
            started_at: build.created_at + 2100,
            finished_at: None,
            steps: second_steps,
        },
    ];
    build
}

pub(super) fn instance(worker_id: &str, state: InstanceState, launched_at: i64) -> Instance {
    Instance {
        worker_id: worker_id.to_string(),
        pool: "docker".to_string(),
        provider: "docker".to_string(),
        provider_id: None,
        state,
        details: serde_json::Value::Null,
        error: None,
        launched_at,
        connected_at: None,
        terminated_at: None,
        ended_by: None,
        resume_hash: None,
        resume_prev_hash: None,
    }
}

pub(super) const ALL_INSTANCE_STATES: [InstanceState; 6] = [
    InstanceState::Launching,
    InstanceState::Launched,
    InstanceState::Connected,
    InstanceState::Terminating,
    InstanceState::Gone,
    InstanceState::Failed,
];

pub(super) const ALL_ATTEMPT_STATES: [AttemptState; 7] = [
    AttemptState::Running,
    AttemptState::Succeeded,
    AttemptState::Failed,
    AttemptState::TimedOut,
    AttemptState::Cancelled,
    AttemptState::WorkerLost,
    AttemptState::Interrupted,
];

pub(super) const ALL_BUILD_STATES: [BuildState; 7] = [
    BuildState::Queued,
    BuildState::Running,
    BuildState::Succeeded,
    BuildState::Failed,
    BuildState::TimedOut,
    BuildState::Cancelled,
    BuildState::WorkerLost,
];
