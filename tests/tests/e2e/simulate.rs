//! `burst simulate` runs the scheduler a real master runs: a small trace
//! replayed by the simulator and submitted, at the trace's times, to a real
//! master with the same pool gives the same launches and the same order of
//! starts.

use std::time::{Duration, Instant};

use anyhow::Context;
use burst_e2e::{wait, MasterBuilder};
use burst_master::model::BuildState;
use serde_json::Value;

/// Two workers at most, gone two seconds after their last build: the first
/// two jobs overlap (two launches), the third comes after both are gone (a
/// third launch).
const CONFIG: &str = r#"
[pools.local]
provider = "local"
labels = ["linux"]
max_workers = 2
idle_timeout = "2s"
price_per_hour = 36.0

[[builders]]
name = "job"
labels = ["linux"]
steps = [{ name = "run", run = "sleep 3" }]

[simulate.pools.local]
boot = "1s"
"#;

/// (submit second, duration): each job one build of `job`.
const JOBS: [(u64, u64); 3] = [(0, 3), (1, 3), (20, 3)];

#[tokio::test(flavor = "multi_thread")]
async fn the_simulator_and_a_real_master_launch_alike_and_start_builds_in_the_same_order(
) -> anyhow::Result<()> {
    let master = MasterBuilder::config(CONFIG).start().await?;

    // The simulator, on the master's own config file.
    let trace = master.dir().join("trace.csv");
    let mut csv = String::from("submit,labels,duration\n");
    for (at, secs) in JOBS {
        csv.push_str(&format!("{at},linux,{secs}\n"));
    }
    std::fs::write(&trace, csv)?;
    let config = master.config_path().display().to_string();
    let out = master
        .cli(&[
            "simulate",
            "--config",
            &config,
            "--trace",
            &trace.display().to_string(),
            "--json",
        ])
        .await?;
    anyhow::ensure!(out.success(), "burst simulate: {out:?}");
    let sim: Value = serde_json::from_str(&out.stdout).with_context(|| out.stdout.clone())?;
    let sim_launches = sim["pools"][0]["launches"].as_u64().context("launches")?;
    let sim_order: Vec<u64> = sim["start_order"]
        .as_array()
        .context("start_order")?
        .iter()
        .filter_map(Value::as_u64)
        .collect();

    // The real master, the same jobs at the same times.
    let t0 = Instant::now();
    let mut ids = Vec::new();
    for (at, _) in JOBS {
        let due = t0 + Duration::from_secs(at);
        tokio::time::sleep(due.saturating_duration_since(Instant::now())).await;
        ids.push(master.submit("job", &[]).await?[0]);
    }
    let mut started = Vec::new();
    for (job, id) in ids.iter().enumerate() {
        let b = master.wait_build(*id, Duration::from_secs(120)).await?;
        anyhow::ensure!(b.state == BuildState::Succeeded, "{b:#?}");
        started.push((b.attempts[0].started_at, job as u64));
    }
    started.sort();
    let real_order: Vec<u64> = started.into_iter().map(|(_, job)| job).collect();
    let rows = wait::until_seen(
        "the ledger to hold every launch",
        Duration::from_secs(30),
        || master.instances_json(),
        |rows| !rows.is_empty(),
    )
    .await?;

    assert_eq!(sim_order, real_order, "start order: simulated vs real");
    assert_eq!(
        sim_launches,
        rows.len() as u64,
        "launches: simulated vs real ledger {rows:#?}"
    );
    assert_eq!(sim_launches, 3);
    Ok(())
}
