//! Limits the master enforces whatever a worker or client does: the per-step
//! log cap, hello field lengths, and connection exhaustion.

use std::time::Duration;

use burst_e2e::{wait, MasterBuilder};
use burst_master::model::{BuildState, StepState};

#[tokio::test(flavor = "multi_thread")]
async fn a_step_past_the_log_cap_is_cancelled_and_fails_saying_why() -> anyhow::Result<()> {
    // Unique, so the check for a leftover process sees only this test's.
    let flood = format!("burst-log-flood-{}", std::process::id());
    let master = MasterBuilder::new()
        .master_toml(r#"step_log_limit = "64KB""#)
        .section(&format!(
            r#"
[pools.local]
provider = "local"
labels = ["linux"]

[[builders]]
name = "flood"
labels = ["linux"]

[[builders.steps]]
name = "flood"
# Never ends by itself: only the cap (a cancel) stops it.
run = "yes {flood}"

[[builders.steps]]
name = "after"
run = "echo after-the-flood"
"#
        ))
        .start()
        .await?;
    let id = master.submit("flood", &[]).await?[0];
    let build = master.wait_build(id, Duration::from_secs(60)).await?;
    assert_eq!(build.state, BuildState::Failed, "{build:#?}");
    let message = "step output exceeded step_log_limit (64.0 kB)";
    let reason = build.reason.clone().unwrap_or_default();
    assert!(reason.contains(message), "{reason}");
    let steps = &build.attempts[0].steps;
    assert_eq!(steps[0].state, StepState::Failed, "{steps:#?}");
    assert_eq!(steps[0].error.as_deref(), Some(message), "{steps:#?}");
    assert_eq!(steps[1].state, StepState::Skipped, "{steps:#?}");
    // The file holds the limit and the closing line, no more.
    assert!((64_000..64_200).contains(&steps[0].log_bytes), "{steps:#?}");
    let log = master.log_text(id).await?;
    assert!(
        log.contains(&format!("[burst] {message}")),
        "{}",
        &log[log.len().saturating_sub(500)..]
    );
    assert!(!log.contains("after-the-flood"));
    // The worker was told to cancel: the flooding process is gone.
    wait::until_true(
        "the flooding step to be killed",
        Duration::from_secs(30),
        || !running_cmdline_contains(&flood),
    )
    .await?;
    Ok(())
}

/// Whether a live process's command line contains `needle`.
fn running_cmdline_contains(needle: &str) -> bool {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return false;
    };
    dir.flatten().any(|e| {
        std::fs::read(e.path().join("cmdline"))
            .is_ok_and(|c| String::from_utf8_lossy(&c).contains(needle))
    })
}
