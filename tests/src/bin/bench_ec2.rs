//! Launch throughput of the ec2 provider against moto: 100 builds submitted
//! at once (one submit of a 100-cell matrix) to a pool of up to 100 workers with `max_starting = 20`. Every
//! instance boots through the real user-data (the boot harness) and runs a
//! short step. Prints when all 100 ledger rows had instance ids, when all
//! workers had connected, and when all builds had finished.
//!
//!   bash scripts/setup/30-moto.sh && cargo build --workspace --bins
//!   target/debug/bench_ec2 [builds]

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use burst_e2e::ec2_harness::{self, Booter};
use burst_e2e::master::last_lines as tail;
use burst_e2e::moto::{ec2_client, Moto};
use burst_e2e::wait;

#[tokio::main]
async fn main() -> Result<()> {
    let n: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()
        .context("usage: bench_ec2 [builds]")?
        .unwrap_or(100);
    let dir = tempfile::tempdir()?;
    let moto = Moto::start().await?;
    let client = ec2_client(&moto.url).await;
    let booter = Booter::start(client, &dir.path().join("instances"), vec![])?;
    let config = format!(
        r#"
[pools.ec2]
provider = "ec2"
labels = ["linux"]
max_workers = {n}
max_starting = 20
# A fresh instance per build, so n builds need n instances.
max_builds = 1
idle_timeout = "60s"
start_timeout = "120s"

[pools.ec2.ec2]
region = "us-east-1"
endpoint_url = "{url}"
ami = "ami-12c6146b"
instance_types = ["t3.micro"]
market = "spot_with_fallback"
imds_url = "http://127.0.0.1:9"

[[builders]]
name = "b"
labels = ["linux"]
matrix = {{ n = [{cells}] }}
steps = [{{ name = "s", run = "sleep 5" }}]
"#,
        url = moto.url,
        cells = (0..n)
            .map(|i| format!("\"{i}\""))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let master = ec2_harness::master(&moto.url)
        .section(&config)
        .quiet()
        .start()
        .await?;

    let start = Instant::now();
    // One submit: a matrix of n cells is n builds requested at once.
    let ids = master.submit("b", &[]).await?;
    let submitted = start.elapsed();
    let limit = Duration::from_secs(600);
    let recorded = wait::until(
        "every launch recorded with an instance id",
        limit,
        || async {
            let rows = master.instances_json().await?;
            let with_id = rows.iter().filter(|r| r["provider_id"].is_string()).count();
            Ok((with_id >= n).then(|| start.elapsed()))
        },
    )
    .await
    .with_context(|| tail(&master.log(), 30))?;
    let connected = wait::until("every worker connected", limit, || async {
        let rows = master.instances_json().await?;
        let up = rows.iter().filter(|r| r["connected_at"].is_i64()).count();
        eprint!(
            "\r  {:6.1}s: {up} connected ",
            start.elapsed().as_secs_f64()
        );
        Ok((up >= n).then(|| start.elapsed()))
    })
    .await?;
    for id in &ids {
        let b = master.finished_json(*id, limit).await?;
        if b["state"] != "succeeded" {
            bail!("build {id} did not succeed: {b}");
        }
    }
    let finished = start.elapsed();
    let rows = master.instances_json().await?;
    let launched = rows.iter().filter(|r| r["provider_id"].is_string()).count();

    println!("ec2 launch benchmark (moto on loopback, max_starting = 20)");
    println!(
        "  builds submitted:              {n} in {:.2}s",
        submitted.as_secs_f64()
    );
    println!(
        "  instances launched:            {launched} (booted {})",
        booter.booted().len()
    );
    println!(
        "  all {n} recorded with ids:      {:.2}s  ({:.1} launches/s)",
        recorded.as_secs_f64(),
        n as f64 / recorded.as_secs_f64()
    );
    println!(
        "  all {n} workers connected:      {:.2}s",
        connected.as_secs_f64()
    );
    println!(
        "  all {n} builds succeeded:       {:.2}s (each step sleeps 5s)",
        finished.as_secs_f64()
    );
    Ok(())
}
