//! What happens to a build whose attempt lost its worker, wherever the loss
//! is noticed (a live session, or a restart of the master).

use crate::model::{
    now_millis, AttemptState, Build, BuildState, InterruptReason, LostReason, Retrying, StepState,
};

/// Marks the build's last attempt interrupted (not lost: its worker did
/// nothing wrong) and requeues the build without using up a retry.
pub fn settle_interrupted_attempt(build: &mut Build, reason: &InterruptReason) {
    end_last_attempt(build, AttemptState::Interrupted, &reason.to_string());
    build.state = BuildState::Queued;
    build.reason = Retrying::of(build).map(|r| r.to_string());
}

/// The attempt was interrupted after a cancel was asked for: the build ends
/// cancelled.
pub fn settle_cancelled_attempt(build: &mut Build, reason: &InterruptReason) {
    let reason = format!("cancelled; meanwhile {reason}");
    end_last_attempt(build, AttemptState::Cancelled, &reason);
    build.state = BuildState::Cancelled;
    build.reason = Some(reason);
    build.finished_at = Some(now_millis());
}

fn end_last_attempt(build: &mut Build, state: AttemptState, reason: &str) {
    if let Some(attempt) = build.attempts.last_mut() {
        attempt.state = state;
        attempt.reason = Some(reason.to_owned());
        attempt.finished_at = Some(now_millis());
        for step in &mut attempt.steps {
            match step.state {
                StepState::Running => step.state = StepState::Lost,
                StepState::Pending => step.state = StepState::Skipped,
                _ => {}
            }
        }
    }
}

/// Marks the build's last attempt lost and decides its fate: requeued while
/// retries remain (returns true), otherwise finished as `worker_lost`, or
/// `cancelled` when a cancel was already asked for.
pub fn settle_lost_attempt(build: &mut Build, reason: &LostReason, cancel_requested: bool) -> bool {
    let reason = reason.to_string();
    end_last_attempt(build, AttemptState::WorkerLost, &reason);
    let lost = build
        .attempts
        .iter()
        .filter(|a| a.state == AttemptState::WorkerLost)
        .count() as u32;
    if cancel_requested {
        build.state = BuildState::Cancelled;
        build.reason = Some(format!(
            "cancelled; the worker was lost meanwhile: {reason}"
        ));
        build.finished_at = Some(now_millis());
        false
    } else if lost > build.retries {
        build.state = BuildState::WorkerLost;
        build.reason = Some(format!("{reason} (no retries left after {lost} attempts)"));
        build.finished_at = Some(now_millis());
        false
    } else {
        build.state = BuildState::Queued;
        build.reason = Retrying::of(build).map(|r| r.to_string());
        true
    }
}
