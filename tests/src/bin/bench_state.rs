//! How much the state dir holds per 10,000 trivial builds, and what
//! `[retention]` leaves of it. Prints figures, asserts nothing.
//!
//!   cargo build --release --bins -p burst-master -p burst-worker -p burst-e2e
//!   target/release/bench_state            # BENCH_STATE_BUILDS (10000)
//!   BENCH_STATE_BEFORE=1 BURST_E2E_BIN_DIR=<older burst> target/release/bench_state
//!
//! The second form measures a `burst` from before retention and log
//! compression (no `[retention]`, no gc): the "before" figure.
//!
//! The builds run on simulated workers (`burst_e2e::fleet_sim`), each step
//! printing one line, as a trivial build does. Sizes are allocated bytes
//! (`du`), so a small file counts as the block it takes.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use burst_e2e::fleet_sim::{sim_pool, FleetSim, SimOptions};
use burst_e2e::{wait, Bins, Master, MasterBuilder};
use burst_master::model::SubmitResponse;
use serde_json::{json, Value};

const WORKERS: usize = 50;
const KEEP_LAST: u32 = 100;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let builds: usize = match std::env::var("BENCH_STATE_BUILDS") {
        Ok(v) => v.parse().context("BENCH_STATE_BUILDS must be a number")?,
        Err(_) => 10_000,
    };
    let before = std::env::var_os("BENCH_STATE_BEFORE").is_some();
    let bins = Bins::locate()?;
    let dir = tempfile::tempdir()?;
    let socket = dir.path().join("fleet.sock");
    let _sim = FleetSim::start(
        &socket,
        SimOptions {
            output: b"hello from a trivial build\n".to_vec(),
            ..SimOptions::default()
        },
    )?;
    let master = MasterBuilder::new()
        .section(&sim_pool("sim", &socket, WORKERS, true))
        .section(&format!(
            r#"
{retention}

[[builders]]
name = "trivial"
labels = ["sim"]

[[builders.steps]]
name = "hello"
run = "echo hello"
"#,
            retention = if before {
                String::new()
            } else {
                // Only the pass at start: this benchmark runs the gc itself.
                format!("[retention]\nkeep_last = {KEEP_LAST}\ninterval = \"24h\"")
            }
        ))
        .bins(bins)
        .env("RUST_LOG", "warn")
        .quiet()
        .start()
        .await?;
    master
        .wait_idle_workers(WORKERS, Duration::from_secs(300))
        .await?;
    let state = master.state_dir();
    let empty = usage(&state)?;
    println!("== state dir per {builds} trivial builds ({WORKERS} simulated workers)");
    figure("empty state dir", empty);

    let clock = Instant::now();
    run_builds(&master, builds, !before).await?;
    let ran = clock.elapsed();
    let kept = usage(&state)?;
    println!("  ({builds} builds in {:.1} s)", ran.as_secs_f64());
    if before {
        figure(
            &format!("{builds} builds, before retention and compression"),
            kept,
        );
        return Ok(());
    }
    figure(&format!("{builds} builds kept, logs compressed"), kept);

    let report = gc(&master).await?;
    let after = usage(&state)?;
    figure(
        &format!("after `burst gc` (keep_last = {KEEP_LAST}: {report} deleted)"),
        after,
    );

    // The database does not shrink (SQLite reuses freed pages): another
    // round grows it by no more than the kept builds need.
    run_builds(&master, builds, true).await?;
    gc(&master).await?;
    let steady = usage(&state)?;
    figure(
        &format!("after {builds} more builds and another gc (steady state)"),
        steady,
    );
    Ok(())
}

/// Allocated bytes and files under `dir`.
#[derive(Clone, Copy)]
struct Usage {
    bytes: u64,
    files: u64,
}

fn usage(dir: &Path) -> anyhow::Result<Usage> {
    let mut total = Usage { bytes: 0, files: 0 };
    let mut todo = vec![dir.to_owned()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).with_context(|| format!("read {}", d.display()))? {
            let entry = entry?;
            let meta = entry.metadata()?;
            total.bytes += meta.blocks() * 512;
            if meta.is_dir() {
                todo.push(entry.path());
            } else {
                total.files += 1;
            }
        }
    }
    Ok(total)
}

fn figure(what: &str, u: Usage) {
    println!(
        "  {what:<64} {:>8.1} MB  {:>7} files",
        u.bytes as f64 / 1e6,
        u.files
    );
}

async fn run_builds(master: &Master, builds: usize, compressed: bool) -> anyhow::Result<()> {
    for chunk in (0..builds).collect::<Vec<_>>().chunks(1000) {
        let body = Value::Array(vec![json!({ "builder": "trivial" }); chunk.len()]);
        let (status, answer) = master.api_post("/api/v1/builds", &body).await?;
        if status != 201 {
            bail!("submit: HTTP {status}: {answer}");
        }
        serde_json::from_value::<SubmitResponse>(answer)?;
    }
    wait::until(
        "every build to finish",
        Duration::from_secs(1800),
        || async {
            let pools: Vec<Value> = master.api_get("/api/v1/pools").await?;
            Ok(pools
                .iter()
                .all(|p| p["queued"] == 0 && p["busy"] == 0)
                .then_some(()))
        },
    )
    .await?;
    if compressed {
        let logs = master.state_dir().join("logs");
        wait::until(
            "every log to be compressed",
            Duration::from_secs(600),
            || {
                let logs = logs.clone();
                async move { Ok((plain_logs(&logs)? == 0).then_some(())) }
            },
        )
        .await?;
    }
    Ok(())
}

fn plain_logs(dir: &Path) -> anyhow::Result<usize> {
    let mut n = 0;
    for build in std::fs::read_dir(dir)? {
        for file in std::fs::read_dir(build?.path())? {
            if file?.path().extension().is_some_and(|e| e == "log") {
                n += 1;
            }
        }
    }
    Ok(n)
}

async fn gc(master: &Master) -> anyhow::Result<usize> {
    let (status, answer) = master.api_post("/api/v1/gc", &json!({})).await?;
    if status != 200 {
        bail!("gc: HTTP {status}: {answer}");
    }
    Ok(answer["builds"].as_array().map_or(0, Vec::len))
}
