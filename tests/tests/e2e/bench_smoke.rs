//! The benchmark's scenarios in small (`tests/src/bin/bench.rs` runs them
//! big and prints figures): they must complete with correct results. No
//! timing is asserted.

use std::time::Duration;

use burst_e2e::fleet_sim::{sim_pool, FleetSim, SimOptions};
use burst_e2e::grid_bench::{self, GridScale};
use burst_e2e::{wait, Bins, Master, MasterBuilder};
use burst_master::model::{Build, BuildId, BuildState, Grid, SubmitResponse};
use serde_json::{json, Value};

const SIM_BUILDERS: &str = r#"
[[builders]]
name = "simnoop"
labels = ["sim"]

[[builders.steps]]
name = "noop"
run = "true"

[[builders]]
name = "grid"
labels = ["sim"]

[builders.matrix]
a = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]
b = [
  "00", "01", "02", "03", "04", "05", "06", "07", "08", "09",
  "10", "11", "12", "13", "14", "15", "16", "17", "18", "19",
  "20", "21", "22", "23", "24", "25", "26", "27", "28", "29",
  "30", "31", "32", "33", "34", "35", "36", "37", "38", "39",
  "40", "41", "42", "43", "44", "45", "46", "47", "48", "49",
  "50", "51", "52", "53", "54", "55", "56", "57", "58", "59",
  "60", "61", "62", "63", "64", "65", "66", "67", "68", "69",
  "70", "71", "72", "73", "74", "75", "76", "77", "78", "79",
  "80", "81", "82", "83", "84", "85", "86", "87", "88", "89",
  "90", "91", "92", "93", "94", "95", "96", "97", "98", "99",
]

[[builders.steps]]
name = "cell"
run = "true"
"#;

/// What every simulated step prints.
const SIM_OUTPUT: &[u8] = b"simulated step\n";

async fn sim_master(workers: usize) -> anyhow::Result<(tempfile::TempDir, FleetSim, Master)> {
    let dir = tempfile::tempdir()?;
    let socket = dir.path().join("fleet.sock");
    let sim = FleetSim::start(
        &socket,
        SimOptions {
            output: SIM_OUTPUT.to_vec(),
            ..SimOptions::default()
        },
    )?;
    let master = MasterBuilder::new()
        .section(&sim_pool("sim", &socket, workers, true))
        .section(SIM_BUILDERS)
        .start()
        .await?;
    master
        .wait_idle_workers(workers, Duration::from_secs(120))
        .await?;
    Ok((dir, sim, master))
}

/// Waits for the simulator to have answered `ids.len()` more steps than
/// `steps_before` (no list of every build fetched over and over meanwhile),
/// then for every build of `ids` to be finished.
async fn wait_all(
    master: &Master,
    sim: &FleetSim,
    steps_before: u64,
    ids: &[BuildId],
) -> anyhow::Result<Vec<Build>> {
    let want = steps_before + ids.len() as u64;
    wait::until_true(
        "the simulator to answer every step",
        Duration::from_secs(300),
        || sim.steps() >= want,
    )
    .await?;
    let limit = ids.len() + 10;
    wait::until(
        &format!("{} builds to finish", ids.len()),
        Duration::from_secs(300),
        || async move {
            let builds: Vec<Build> = master
                .api_get(&format!("/api/v1/builds?limit={limit}"))
                .await?;
            let ours: Vec<Build> = builds.into_iter().filter(|b| ids.contains(&b.id)).collect();
            let done = ours.len() == ids.len() && ours.iter().all(|b| b.state.is_finished());
            Ok(done.then_some(ours))
        },
    )
    .await
}

async fn submit(master: &Master, body: &Value) -> anyhow::Result<Vec<BuildId>> {
    let (status, answer) = master.api_post("/api/v1/builds", body).await?;
    anyhow::ensure!(status == 201, "submit: HTTP {status}: {answer}");
    Ok(serde_json::from_value::<SubmitResponse>(answer)?.builds)
}

#[tokio::test(flavor = "multi_thread")]
async fn simulated_workers_connect_and_run_queued_builds() -> anyhow::Result<()> {
    let (_dir, sim, master) = sim_master(20).await?;
    // The master may count a worker idle before its session reads the welcome.
    wait::until_true("20 welcomed sessions", Duration::from_secs(30), || {
        sim.welcomed() == 20
    })
    .await?;
    let workers = master.workers().await?;
    assert_eq!(workers.len(), 20, "{workers:#?}");

    // 500 queued builds in batches, over 20 simulated workers.
    let mut ids = Vec::new();
    for _ in 0..5 {
        let batch = Value::Array(vec![json!({ "builder": "simnoop" }); 100]);
        ids.extend(submit(&master, &batch).await?);
    }
    let builds = wait_all(&master, &sim, 0, &ids).await?;
    let failed: Vec<&Build> = builds
        .iter()
        .filter(|b| b.state != BuildState::Succeeded)
        .collect();
    assert!(failed.is_empty(), "{failed:#?}");
    assert!(sim.steps() >= 500, "{} steps", sim.steps());
    // A sample of logs, byte for byte.
    let output = String::from_utf8_lossy(SIM_OUTPUT);
    for build in builds.iter().step_by(97) {
        let text = master.log_text(build.id).await?;
        let step = &build.attempts[0].steps[0];
        let want = format!(
            "== step 1/1: noop (attempt 1, worker {})\n{output}== noop succeeded",
            build.attempts[0].worker_id
        );
        assert!(text.starts_with(&want), "{text}");
        assert_eq!(step.log_bytes, SIM_OUTPUT.len() as u64, "{step:#?}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_1000_cell_matrix_runs_on_simulated_workers() -> anyhow::Result<()> {
    let (_dir, sim, master) = sim_master(20).await?;
    let ids = submit(&master, &json!({ "builder": "grid" })).await?;
    assert_eq!(ids.len(), 1000);
    let builds = wait_all(&master, &sim, 0, &ids).await?;
    assert!(builds.iter().all(|b| b.state == BuildState::Succeeded));
    let mut cells: Vec<String> = builds
        .iter()
        .map(|b| format!("{}{}", b.cell["a"], b.cell["b"]))
        .collect();
    cells.sort();
    cells.dedup();
    assert_eq!(cells.len(), 1000, "every cell once");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn terminated_simulated_workers_leave_the_master() -> anyhow::Result<()> {
    let (_dir, sim, mut master) = sim_master(30).await?;
    let status = master.sigterm_and_wait(Duration::from_secs(60)).await?;
    assert!(status.success(), "{status}");
    assert_eq!(
        sim.stats()
            .terminated
            .load(std::sync::atomic::Ordering::SeqCst),
        30
    );
    wait::until_true(
        "every simulated session to end",
        Duration::from_secs(30),
        || sim.live() == 0,
    )
    .await?;
    Ok(())
}

/// `bench_ui`'s grid scenario, small: the grid it times shows exactly the
/// newest submits of every builder, and the page and the API agree with the
/// in-process result.
#[tokio::test(flavor = "multi_thread")]
async fn the_grid_benchmark_shows_each_builders_newest_submits() -> anyhow::Result<()> {
    let scale = GridScale::SMOKE;
    let f = grid_bench::run(&Bins::locate()?, scale).await?;
    assert_eq!(f.seeded, scale.builders * scale.history * 2);
    assert_eq!(f.cells, scale.builders * scale.submits as usize * 2);
    assert_eq!(f.grid.rows.len(), scale.builders, "{:#?}", f.grid);
    for (b, row) in f.grid.rows.iter().enumerate() {
        assert_eq!(row.builder, GridScale::builder(b));
        let ids: Vec<&str> = row.submits.iter().map(|s| s.submit_id.as_str()).collect();
        let want: Vec<String> = (0..scale.submits as usize)
            .map(|k| grid_bench::submit_id(b, scale.history - 1 - k))
            .collect();
        assert_eq!(ids, want, "row {b}: newest first");
        for s in &row.submits {
            let oses: Vec<&str> = s.cells.iter().map(|c| c.cell["os"].as_str()).collect();
            assert_eq!(oses, ["linux", "mac"], "{s:#?}");
        }
    }
    let [page, api] = &f.http[..] else {
        anyhow::bail!("two paths timed: {:#?}", f.http);
    };
    let served: Grid = serde_json::from_str(&api.body)?;
    assert_eq!(served, f.grid, "the API's grid is the one timed in-process");
    for cell in f
        .grid
        .rows
        .iter()
        .flat_map(|r| &r.submits)
        .flat_map(|s| &s.cells)
    {
        let link = format!("href=\"/builds/{}\"", cell.build);
        assert!(page.body.contains(&link), "{} lacks {link}", page.path);
    }
    Ok(())
}

/// The log scenario, small: 8 MB of 100-character lines on stdout with
/// stderr lines between them, through the worker's joined messages, the
/// master's log file and its compressed form, read back byte for byte.
#[tokio::test(flavor = "multi_thread")]
async fn a_fast_steps_log_reads_back_byte_for_byte_plain_and_compressed() -> anyhow::Result<()> {
    // Stderr is written between stdout bursts, so messages of both streams
    // alternate; the order within each stream must survive the joining.
    let part = "head -c 2000000 /dev/zero | tr '\\\\0' x | fold -w 100";
    let script = (1..=4)
        .map(|i| format!("{part}; echo err {i} >&2"))
        .collect::<Vec<_>>()
        .join("; ");
    let config = format!(
        r#"
[pools.local]
provider = "local"
labels = ["linux"]

[[builders]]
name = "flood"
labels = ["linux"]

[[builders.steps]]
name = "flood"
run = "{script}"
"#
    );
    let master = Master::start(&config).await?;
    let id = master.submit("flood", &[]).await?[0];
    let build = master.wait_build(id, Duration::from_secs(120)).await?;
    assert_eq!(build.state, BuildState::Succeeded, "{build:#?}");
    // fold breaks lines, so the last of each part has no newline of its own.
    let line = "x".repeat(100);
    let stdout_part = vec![line; 20_000].join("\n");
    let step = &build.attempts[0].steps[0];
    let total = 4 * stdout_part.len() + 4 * "err 1\n".len();
    assert_eq!(step.log_bytes, total as u64, "{step:#?}");

    let plain = master.log_text(id).await?;
    master
        .wait_logs_compressed(id, Duration::from_secs(60))
        .await?;
    let sealed = master.log_text(id).await?;
    assert_eq!(plain.len(), sealed.len());
    assert!(plain == sealed, "the compressed log reads back differently");
    let body = plain
        .split_once('\n')
        .and_then(|(_, rest)| rest.split_once("== flood succeeded"))
        .map(|(body, _)| body)
        .ok_or_else(|| anyhow::anyhow!("no step header or footer in the log"))?;
    // After output ending mid-line, the footer starts a line of its own.
    let body = match body.strip_suffix('\n') {
        Some(cut) if body.len() == total + 1 => cut,
        _ => body,
    };
    assert_eq!(body.len(), total);
    // The two pipes are read as their bytes arrive, so a stderr line may
    // land anywhere in stdout's output; each stream keeps its own order.
    let at: Vec<usize> = (1..=4)
        .map(|i| body.find(&format!("err {i}\n")))
        .collect::<Option<_>>()
        .ok_or_else(|| anyhow::anyhow!("a stderr line is missing"))?;
    assert!(
        at.windows(2).all(|w| w[0] < w[1]),
        "stderr reordered: {at:?}"
    );
    let mut stdout = body.to_owned();
    for i in (1..=4).rev() {
        let start = at[i - 1];
        stdout.replace_range(start..start + "err 1\n".len(), "");
    }
    assert!(
        stdout == stdout_part.repeat(4),
        "stdout was reordered or lost"
    );
    Ok(())
}
