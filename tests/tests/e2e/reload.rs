//! Config reload: SIGHUP and `burst config reload` read the config file
//! again. Pools and builders change while builds run; an invalid file or a
//! change only a restart can make is refused, named by file, line and key,
//! and the old config stays in force; a removed pool drains.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use burst_e2e::{wait, Master, MasterBuilder};
use burst_master::model::BuildState;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);

/// A pool and a builder whose step runs until `go` exists.
fn base(go: &Path) -> String {
    format!(
        r#"
[pools.local]
provider = "local"
labels = ["linux"]
max_workers = 4

[[builders]]
name = "gate"
labels = ["linux"]

[[builders.steps]]
name = "wait-for-go"
run = 'echo started; i=0; while [ ! -e {go} ] && [ $i -lt 1200 ]; do sleep 0.1; i=$((i+1)); done; echo finished'
"#,
        go = go.display()
    )
}

/// A builder on pool `pool`'s label.
fn builder(name: &str, label: &str) -> String {
    format!(
        r#"
[[builders]]
name = "{name}"
labels = ["{label}"]

[[builders.steps]]
name = "hello"
run = "echo hello from {name}"
"#
    )
}

fn pool(name: &str, label: &str) -> String {
    format!("\n[pools.{name}]\nprovider = \"local\"\nlabels = [\"{label}\"]\n")
}

async fn submit_status(master: &Master, builder: &str) -> anyhow::Result<(u16, serde_json::Value)> {
    master
        .api_post("/api/v1/builds", &json!({ "builder": builder }))
        .await
}

fn sighup(master: &Master) -> anyhow::Result<()> {
    kill(Pid::from_raw(master.pid()), Signal::SIGHUP).context("failed to send SIGHUP")
}

/// Waits until `builder` is known (a reload put it in force), submits it and
/// waits for it to succeed.
async fn runs(master: &Master, builder: &str) -> anyhow::Result<()> {
    let answer = wait::until(&format!("builder {builder} to be known"), WAIT, || async {
        let (status, answer) = submit_status(master, builder).await?;
        Ok((status == 201).then_some(answer))
    })
    .await?;
    let id = answer["builds"][0].as_i64().context("no build id")?;
    let build = master.wait_build(id, WAIT).await?;
    assert_eq!(build.state, BuildState::Succeeded, "{build:#?}");
    let log = master.log_text(id).await?;
    assert!(log.contains(&format!("hello from {builder}")), "{log}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn builders_and_pools_added_by_sighup_and_by_the_cli_run_while_a_build_goes_on(
) -> anyhow::Result<()> {
    let scratch = tempfile::tempdir()?;
    let go = scratch.path().join("go");
    let master = MasterBuilder::config(&base(&go)).start().await?;
    let gate = master.submit("gate", &[]).await?[0];
    master.wait_step_running(gate, 0, WAIT).await?;
    let (status, answer) = submit_status(&master, "added").await?;
    assert_eq!(status, 422, "not configured yet: {answer}");

    // SIGHUP: a new pool and a builder on it.
    master.edit_config(|text| {
        format!(
            "{text}{}{}",
            pool("extra", "extra"),
            builder("added", "extra")
        )
    })?;
    sighup(&master)?;
    runs(&master, "added").await?;
    let pools: Vec<serde_json::Value> = master.api_get("/api/v1/pools").await?;
    assert!(pools.iter().any(|p| p["pool"] == "extra"), "{pools:?}");

    // The CLI: another builder, on the first pool.
    master.edit_config(|text| format!("{text}{}", builder("by-cli", "linux")))?;
    let out = master.cli(&["config", "reload"]).await?;
    assert!(out.success(), "{out:?}");
    assert!(out.stdout.contains("reloaded "), "{out:?}");
    assert!(out.stdout.contains("by-cli"), "{out:?}");
    runs(&master, "by-cli").await?;

    // The build that ran all along goes on as the same attempt.
    let running = master.build(gate).await?;
    assert_eq!(running.state, BuildState::Running, "{running:#?}");
    std::fs::write(&go, "")?;
    let done = master.wait_build(gate, WAIT).await?;
    assert_eq!(done.state, BuildState::Succeeded, "{done:#?}");
    assert_eq!(done.attempts.len(), 1, "{done:#?}");
    let log = master.log();
    assert!(log.contains("SIGHUP received"), "{log}");
    assert!(log.contains("config reloaded"), "{log}");
    Ok(())
}

/// The 1-based line of the first line of `text` that contains `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .map_or(0, |i| i + 1)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broken_reload_changes_nothing_and_names_file_line_and_key() -> anyhow::Result<()> {
    let scratch = tempfile::tempdir()?;
    let go = scratch.path().join("go");
    let good = format!("{}{}", base(&go), builder("hello", "linux"));
    let mut master = MasterBuilder::config(&good).start().await?;
    let path = master.config_path().to_owned();
    let file = path.display().to_string();

    // An invalid value and a builder it would add: neither takes effect.
    let broken = format!(
        "{}{}",
        good.replace("max_workers = 4", "max_workers = 0"),
        builder("never", "linux")
    );
    std::fs::write(&path, &broken)?;
    let line = line_of(&broken, "max_workers = 0");
    let expected = format!("{file}:{line}: pools.local.max_workers: must be at least 1 (got 0)");
    let out = master.cli(&["config", "reload"]).await?;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains(&expected), "{out:?}");
    assert!(
        out.stderr.contains("the old config stays in force"),
        "{out:?}"
    );
    sighup(&master)?;
    wait::until_true("the master to log the refused reload", WAIT, || {
        master.log().matches(&expected).count() >= 2
    })
    .await
    .with_context(|| master.log())?;

    // A key only a restart can change is refused the same way.
    let fixed = good.replace(
        "[pools.local]",
        "[master]\nstep_lease = \"7m\"\n\n[pools.local]",
    );
    std::fs::write(&path, &fixed)?;
    let line = line_of(&fixed, "step_lease");
    let out = master.cli(&["config", "reload"]).await?;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains(&format!(
            "{file}:{line}: master.step_lease: cannot change on reload; restart the master to change it"
        )),
        "{out:?}"
    );

    // A file that is not TOML at all.
    std::fs::write(&path, "[pools.local\n")?;
    let out = master.cli(&["config", "reload"]).await?;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains(&format!("{file}:")), "{out:?}");

    // The old config is in force: its builder runs, the new one is unknown,
    // the cap is still 4 (the refused 0 would have been invalid anyway).
    assert!(!master.has_exited(), "the master is still running");
    let (status, answer) = submit_status(&master, "never").await?;
    assert_eq!(status, 422, "{answer}");
    runs(&master, "hello").await?;
    let pools: Vec<serde_json::Value> = master.api_get("/api/v1/pools").await?;
    assert_eq!(pools[0]["max_workers"], 4, "{pools:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_removed_pool_drains_its_running_build_then_its_worker_goes() -> anyhow::Result<()> {
    let scratch = tempfile::tempdir()?;
    let go = scratch.path().join("go");
    let config = format!(
        "{}{}{}",
        base(&go).replace("labels = [\"linux\"]", "labels = [\"old\"]"),
        pool("new", "linux"),
        builder("hello", "linux")
    );
    let master = MasterBuilder::config(&config).start().await?;
    let gate = master.submit("gate", &[]).await?[0];
    master.wait_step_running(gate, 0, WAIT).await?;
    let worker = master.build(gate).await?.attempts[0].worker_id.clone();
    assert!(worker.starts_with("local-"), "{worker}");

    // Pool `local` and its builder go.
    master.edit_config(|_| format!("{}{}", pool("new", "linux"), builder("hello", "linux")))?;
    let out = master.cli(&["config", "reload"]).await?;
    assert!(out.success(), "{out:?}");
    assert!(
        out.stdout.contains("pools removed (draining): local"),
        "{out:?}"
    );
    let (status, answer) = submit_status(&master, "gate").await?;
    assert_eq!(status, 422, "{answer}");
    runs(&master, "hello").await?;

    // Its build finishes on its worker, which is then stopped.
    let running = master.build(gate).await?;
    assert_eq!(running.state, BuildState::Running, "{running:#?}");
    std::fs::write(&go, "")?;
    let done = master.wait_build(gate, WAIT).await?;
    assert_eq!(done.state, BuildState::Succeeded, "{done:#?}");
    assert_eq!(done.attempts.len(), 1);
    let row = wait::until("the drained worker's row to end", WAIT, || async {
        let row = master.instance_json(&worker).await?;
        Ok((row["state"] == "gone").then_some(row))
    })
    .await?;
    assert!(row["terminated_at"].is_i64(), "{row}");
    wait::until_true("the drained worker's process to exit", WAIT, || {
        !master
            .worker_processes()
            .iter()
            .any(|p| p.worker_id.as_deref() == Some(worker.as_str()))
    })
    .await?;
    Ok(())
}
