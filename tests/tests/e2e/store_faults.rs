//! Store faults for real: the database made immutable while the master
//! runs, and a damaged or deleted database at start. Nothing is lost or
//! leaked, and what is wrong is said.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use burst_e2e::db_faults::{self, Immutable};
use burst_e2e::{wait, Master};
use burst_master::model::{BuildState, InstanceState};

/// `gated` appends a mark per run and waits for the gate file; `forever`
/// holds its worker; `quick` just succeeds.
fn config(dir: &Path) -> String {
    let marks = dir.join("marks");
    let gate = dir.join("gate");
    format!(
        r#"
[pools.local]
provider = "local"
labels = ["linux"]
max_workers = 2

[[builders]]
name = "gated"
labels = ["linux"]

[[builders.steps]]
name = "wait-for-gate"
run = "echo run-$BURST_BUILD_ID-$BURST_ATTEMPT >> {marks}; while [ ! -e {gate} ]; do sleep 0.1; done; echo through"

[[builders]]
name = "forever"
labels = ["linux"]
retries = 0

[[builders.steps]]
name = "sleep"
run = "sleep 1000"

[[builders]]
name = "quick"
labels = ["linux"]

[[builders.steps]]
name = "hi"
run = "echo quick-$BURST_BUILD_ID"
"#,
        marks = marks.display(),
        gate = gate.display()
    )
}

async fn start() -> anyhow::Result<(tempfile::TempDir, Master)> {
    let files = tempfile::tempdir()?;
    // A short step lease: a restarted master (on a new worker port, so the
    // old run's workers cannot come back) reaps them once it ran out.
    let master = burst_e2e::MasterBuilder::config(&config(files.path()))
        .master_toml("heartbeat_interval = \"1s\"\nstep_lease = \"3s\"")
        .start()
        .await?;
    Ok((files, master))
}

fn marks(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("marks"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_store_that_fails_while_running_loses_nothing_and_says_so() -> anyhow::Result<()> {
    let (files, mut master) = start().await?;
    assert_eq!(master.readyz().await?, (200, "ready\n".to_owned()));
    let id = master.submit("gated", &[]).await?[0];
    master
        .wait_step_running(id, 0, Duration::from_secs(30))
        .await?;

    let immutable = Immutable::new(&db_faults::db_files(&master.state_dir()))?;
    std::fs::write(files.path().join("gate"), b"")?;
    // The step finishes; its result cannot be saved.
    let (_, why) = wait::until_seen(
        "/readyz to answer 503",
        Duration::from_secs(30),
        || master.readyz(),
        |(status, _)| *status == 503,
    )
    .await?;
    assert!(
        why.starts_with("not ready: the store fails: failed to "),
        "{why}"
    );
    let health = master
        .api_request(reqwest::Method::GET, "/healthz", None, &[], None)
        .await?;
    assert_eq!(health.0, 200, "/healthz stays liveness only: {health:?}");
    let body = serde_json::json!({ "builder": "quick" });
    let (status, answer) = master.api_post("/api/v1/builds", &body).await?;
    assert_eq!(status, 503, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .is_some_and(|e| e.contains("cannot save builds right now")),
        "{answer}"
    );

    // The filesystem works again: the master recovers by itself.
    drop(immutable);
    wait::until_seen(
        "/readyz to answer 200",
        Duration::from_secs(30),
        || master.readyz(),
        |(status, _)| *status == 200,
    )
    .await?;
    let b = master.wait_build(id, Duration::from_secs(30)).await?;
    assert_eq!(b.state, BuildState::Succeeded, "{b:#?}");
    assert_eq!(b.attempts.len(), 1, "{b:#?}");
    // The refused writes are counted.
    let text = master.metrics().await?;
    let errors = burst_e2e::prometheus::sum(&text, "burst_store_write_errors_total");
    assert!(errors >= 1.0, "{text}");

    // After a restart it does not run again.
    master.sigkill();
    master.restart().await?;
    let after = master.submit("quick", &[]).await?[0];
    let q = master.wait_build(after, Duration::from_secs(60)).await?;
    assert_eq!(q.state, BuildState::Succeeded, "{q:#?}");
    let b = master.build(id).await?;
    assert_eq!(b.state, BuildState::Succeeded, "{b:#?}");
    assert_eq!(marks(files.path()), [format!("run-{id}-1")]);
    Ok(())
}

/// A master with a worker busy on `forever`, SIGKILLed: the worker lives on.
async fn crashed_with_a_worker() -> anyhow::Result<(tempfile::TempDir, Master, BTreeSet<String>)> {
    let (files, mut master) = start().await?;
    let id = master.submit("forever", &[]).await?[0];
    master
        .wait_step_running(id, 0, Duration::from_secs(30))
        .await?;
    let old: BTreeSet<String> = master
        .worker_processes()
        .into_iter()
        .filter_map(|p| p.worker_id)
        .collect();
    assert_eq!(old.len(), 1, "{:?}", master.processes());
    master.sigkill();
    Ok((files, master, old))
}

async fn wait_reaped(master: &Master, old: &BTreeSet<String>) -> anyhow::Result<()> {
    let leftovers = || {
        master
            .processes()
            .into_iter()
            .filter(|p| p.worker_id.as_ref().is_some_and(|w| old.contains(w)))
            .collect::<Vec<_>>()
    };
    wait::until_true(
        "the old run's workers to be gone",
        Duration::from_secs(20),
        || leftovers().is_empty(),
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e:#}: still running: {:?}", leftovers()))
}

/// The old run's ledger rows end `gone`, saying this master reaped them,
/// and when.
async fn wait_rows_end_reaped(
    master: &Master,
    old: &BTreeSet<String>,
    master_id: &str,
) -> anyhow::Result<()> {
    let reaper = format!("reaped at start by master {master_id}");
    let ended = |rows: &Vec<burst_master::model::Instance>| {
        old.iter().all(|w| {
            rows.iter().any(|r| {
                &r.worker_id == w
                    && r.state == InstanceState::Gone
                    && r.ended_by.as_deref() == Some(reaper.as_str())
                    && r.terminated_at.is_some()
            })
        })
    };
    wait::until_seen(
        "the old run's rows to end gone, reaped by this master",
        Duration::from_secs(20),
        || master.instances(),
        ended,
    )
    .await?;
    Ok(())
}

/// Restarts on a damaged database: the master exits non-zero naming the
/// file and `cause`, after reaping the previous run's worker.
async fn refuses_damaged_db(
    damage: impl AsyncFnOnce(&Path) -> anyhow::Result<std::path::PathBuf>,
    causes: &[&str],
) -> anyhow::Result<()> {
    let (_files, mut master, old) = crashed_with_a_worker().await?;
    let db = damage(&master.state_dir()).await?;
    let (status, said) = master.restart_expect_exit(Duration::from_secs(60)).await?;
    assert!(!status.success(), "{status}: {said}");
    assert!(
        said.contains(&db.display().to_string()),
        "names the file: {said}"
    );
    assert!(
        causes.iter().any(|c| said.contains(c)),
        "names the cause ({causes:?}): {said}"
    );
    wait_reaped(&master, &old).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_truncated_database_stops_the_master_after_reaping() -> anyhow::Result<()> {
    refuses_damaged_db(
        async |dir| db_faults::truncate(dir).await,
        &["corrupt", "malformed"],
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_garbage_database_stops_the_master_after_reaping() -> anyhow::Result<()> {
    refuses_damaged_db(async |dir| db_faults::garbage(dir), &["not a database"]).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_from_a_newer_burst_stops_the_master_after_reaping() -> anyhow::Result<()> {
    refuses_damaged_db(
        async |dir| db_faults::from_the_future(dir).await,
        &["schema version 999"],
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_read_only_database_stops_the_master_after_reaping() -> anyhow::Result<()> {
    let (_files, mut master, old) = crashed_with_a_worker().await?;
    let state = master.state_dir();
    let db = state.join("burst.db");
    let immutable = Immutable::new(&db_faults::db_files(&state))?;
    let (status, said) = master.restart_expect_exit(Duration::from_secs(60)).await?;
    drop(immutable);
    assert!(!status.success(), "{status}: {said}");
    assert!(
        said.contains(&db.display().to_string()),
        "names the file: {said}"
    );
    wait_reaped(&master, &old).await
}

/// The database deleted under a SIGKILLed master: the id lives in
/// `master.id`, so the restart finds the old worker, reaps it, records who
/// did, and runs what is submitted next.
#[tokio::test(flavor = "multi_thread")]
async fn a_deleted_database_keeps_the_identity_and_leaks_nothing() -> anyhow::Result<()> {
    let (_files, mut master, old) = crashed_with_a_worker().await?;
    let id = master.master_id();
    let id_file = master.state_dir().join("master.id");
    assert_eq!(std::fs::read_to_string(&id_file)?.trim(), id);
    db_faults::delete(&master.state_dir())?;
    master.restart().await?;
    assert_eq!(master.master_id(), id, "the same identity");
    wait_reaped(&master, &old).await?;
    wait_rows_end_reaped(&master, &old, &id).await?;
    let after = master.submit("quick", &[]).await?[0];
    let b = master.wait_build(after, Duration::from_secs(60)).await?;
    assert_eq!(b.state, BuildState::Succeeded, "{b:#?}");
    Ok(())
}

/// A SIGKILLed master's worker, reaped at the next start: its ledger row
/// ends `gone`, saying who reaped it and when.
#[tokio::test(flavor = "multi_thread")]
async fn an_orphan_reaped_after_sigkill_ends_gone_with_who_and_when() -> anyhow::Result<()> {
    let (_files, mut master, old) = crashed_with_a_worker().await?;
    let id = master.master_id();
    master.restart().await?;
    wait_reaped(&master, &old).await?;
    wait_rows_end_reaped(&master, &old, &id).await?;
    let text = master.metrics().await?;
    let reaped = burst_e2e::prometheus::sum(&text, "burst_orphans_reaped_total");
    assert_eq!(reaped, old.len() as f64, "{text}");
    Ok(())
}

/// `master.id` in the config is the identity: workers carry it, and no
/// identity file is needed.
#[tokio::test(flavor = "multi_thread")]
async fn a_configured_master_id_tags_the_workers() -> anyhow::Result<()> {
    let files = tempfile::tempdir()?;
    let suffix: String = files
        .path()
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect();
    let id = format!("e2e-{suffix}");
    let master = burst_e2e::MasterBuilder::config(&config(files.path()))
        .master_toml(&format!("id = \"{id}\""))
        .start()
        .await?;
    assert_eq!(master.master_id(), id);
    let build = master.submit("forever", &[]).await?[0];
    master
        .wait_step_running(build, 0, Duration::from_secs(30))
        .await?;
    assert_eq!(
        master.worker_processes().len(),
        1,
        "found by the configured id"
    );
    assert!(!master.state_dir().join("master.id").exists());
    Ok(())
}
