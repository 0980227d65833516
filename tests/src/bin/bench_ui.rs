//! The web UI's benchmark: prints figures, asserts nothing.
//!
//!   cargo build --release --bins -p burst-master -p burst-worker -p burst-e2e
//!   target/release/bench_ui
//!
//! **grid:** 50 builders × 100 submits of two matrix cells each (10 000
//! builds shown) out of a history five times longer (50 000 builds): see
//! `burst_e2e::grid_bench`, which `bench_smoke` also runs, small.

use burst_e2e::grid_bench::{self, report, GridScale};
use burst_e2e::Bins;

/// The aim for the grid's server time.
const TARGET_MS: f64 = 200.0;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let bins = Bins::locate()?;
    println!("binaries: {}", bins.burst.display());
    println!(
        "machine: {} cpus",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let scale = GridScale::BENCH;
    let mut f = grid_bench::run(&bins, scale).await?;
    println!(
        "grid: seeded {} builds ({} builders x {} submits x 2 cells) in {:.1} s",
        f.seeded,
        scale.builders,
        scale.history,
        f.seed_time.as_secs_f64()
    );
    println!(
        "grid: {} builders x {} submits = {} cells shown (target: all of it under {TARGET_MS} ms server time)",
        scale.builders, scale.submits, f.cells
    );
    println!(
        "{}",
        report("grid store query (one statement)", &mut f.query)
    );
    println!("{}", report("grid grouping in memory", &mut f.group));
    println!("{}", report("grid HTML render", &mut f.render));
    for h in &mut f.http {
        let what = format!("GET {} ({} bytes)", h.path, h.body.len());
        println!("{}", report(&what, &mut h.samples));
    }
    Ok(())
}
