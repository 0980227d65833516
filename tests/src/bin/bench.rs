//! burst's benchmark: prints figures, asserts nothing.
//!
//!   cargo build --release --bins -p burst-master -p burst-worker -p burst-e2e
//!   target/release/bench [dispatch|throughput|log|rss]...
//!
//! It drives the `burst` and `burst-worker` next to itself (or in
//! `$BURST_E2E_BIN_DIR`), on loopback, with local workers.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use burst_e2e::{procs, wait, Bins, Master, MasterBuilder};
use burst_master::model::{now_millis, Build, BuildState};
use futures::StreamExt;

const DISPATCH_BUILDS: usize = 200;
const THROUGHPUT_BUILDS: usize = 200;
const LOG_BYTES: u64 = 100_000_000;
const LOG_RUNS: usize = 5;
const RSS_WORKERS: usize = 50;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let all = ["dispatch", "throughput", "log", "rss"];
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(bad) = args.iter().find(|a| !all.contains(&a.as_str())) {
        bail!("unknown benchmark {bad:?}; choose from {}", all.join(", "));
    }
    let wanted = |name: &str| args.is_empty() || args.iter().any(|a| a == name);
    let bins = Bins::locate()?;
    println!("binaries: {}", bins.burst.display());
    println!(
        "machine: {} cpus",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    if wanted("dispatch") {
        dispatch(&bins).await?;
    }
    if wanted("throughput") {
        throughput(&bins).await?;
    }
    if wanted("log") {
        log_rate(&bins).await?;
    }
    if wanted("rss") {
        rss(&bins).await?;
    }
    Ok(())
}

fn warm_pool(workers: usize) -> String {
    format!(
        r#"
[pools.local]
provider = "local"
labels = ["linux"]
max_workers = {workers}
min_idle = {workers}
max_starting = {workers}
idle_timeout = "1h"
start_timeout = "300s"

[[builders]]
name = "noop"
labels = ["linux"]

[[builders.steps]]
name = "noop"
run = "true"

[[builders]]
name = "stamp"
labels = ["linux"]

[[builders.steps]]
name = "stamp"
run = "date +stamp=%s%N"

[[builders]]
name = "flood"
labels = ["linux"]

[[builders.steps]]
name = "flood"
run = "yes 0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefghijklmnopqrstuvwxy | head -c {LOG_BYTES}"
"#
    )
}

async fn start(bins: &Bins, workers: usize) -> anyhow::Result<Master> {
    let master = MasterBuilder::config(&warm_pool(workers))
        .bins(bins.clone())
        .env("RUST_LOG", "warn")
        .quiet()
        .start()
        .await?;
    master
        .wait_idle_workers(workers, Duration::from_secs(300))
        .await?;
    Ok(master)
}

/// Submit → step start on an idle worker, one build at a time.
async fn dispatch(bins: &Bins) -> anyhow::Result<()> {
    let master = start(bins, 4).await?;
    let (mut to_dispatch, mut to_process, mut to_done) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..DISPATCH_BUILDS {
        master.wait_idle_workers(4, Duration::from_secs(30)).await?;
        let t0_ns = now_nanos();
        let t0 = Instant::now();
        let id = master.submit("stamp", &[]).await?[0];
        let build = wait_fast(&master, id).await?;
        to_done.push(t0.elapsed().as_secs_f64() * 1e3);
        let step = &build.attempts[0].steps[0];
        let started = step.started_at.context("step without started_at")?;
        // The master stamps started_at in whole ms (same machine clock):
        // compare whole ms to whole ms, so 0 means "within the same ms".
        to_dispatch.push((started - t0_ns / 1_000_000) as f64);
        let log = master.log_text(id).await?;
        let stamp: i64 = log
            .lines()
            .find_map(|l| l.strip_prefix("stamp="))
            .and_then(|s| s.trim().parse().ok())
            .with_context(|| format!("no stamp in {log}"))?;
        to_process.push((stamp - t0_ns) as f64 / 1e6);
    }
    println!(
        "\n== dispatch latency: {DISPATCH_BUILDS} builds, one at a time, 4 idle local workers"
    );
    report(
        "submit -> master dispatches step (whole ms)",
        &mut to_dispatch,
    );
    report("submit -> step's process runs `date` (ms)", &mut to_process);
    report(
        "submit -> build finished, seen by client (ms)",
        &mut to_done,
    );
    Ok(())
}

/// Many trivial builds on warm workers.
async fn throughput(bins: &Bins) -> anyhow::Result<()> {
    let master = start(bins, 4).await?;
    let t0 = now_millis();
    let clock = Instant::now();
    let ids: Vec<i64> = futures::stream::iter(0..THROUGHPUT_BUILDS)
        .map(|_| master.submit("noop", &[]))
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<Vec<Vec<i64>>>>()?
        .into_iter()
        .flatten()
        .collect();
    let submitted = clock.elapsed();
    let builds = wait::until(
        "every build to finish",
        Duration::from_secs(600),
        || async {
            let builds: Vec<Build> = master
                .api_get(&format!("/api/v1/builds?limit={}", THROUGHPUT_BUILDS + 10))
                .await?;
            let ours: Vec<Build> = builds.into_iter().filter(|b| ids.contains(&b.id)).collect();
            Ok(
                (ours.len() == ids.len() && ours.iter().all(|b| b.state.is_finished()))
                    .then_some(ours),
            )
        },
    )
    .await?;
    let failed = builds
        .iter()
        .filter(|b| b.state != BuildState::Succeeded)
        .count();
    let last = builds
        .iter()
        .filter_map(|b| b.finished_at)
        .max()
        .unwrap_or(t0);
    let secs = (last - t0) as f64 / 1e3;
    println!("\n== throughput: {THROUGHPUT_BUILDS} trivial builds (`true`), 4 warm local workers");
    println!(
        "  submitted all in             {:>9.1} ms (16 concurrent POSTs)",
        submitted.as_secs_f64() * 1e3
    );
    println!("  first submit -> last finish  {:>9.1} ms", secs * 1e3);
    println!(
        "  builds/s                     {:>9.1}",
        THROUGHPUT_BUILDS as f64 / secs
    );
    println!("  not succeeded                {failed:>9}");
    Ok(())
}

/// One step printing 100 MB: the rate it reaches the master's log store.
/// Repeated, as the figure swings with whatever else the machine runs.
async fn log_rate(bins: &Bins) -> anyhow::Result<()> {
    let master = start(bins, 1).await?;
    println!(
        "\n== log throughput: one step printing {} MB, {LOG_RUNS} runs",
        LOG_BYTES / 1_000_000
    );
    let mut rates = Vec::new();
    for _ in 0..LOG_RUNS {
        let t0 = Instant::now();
        let id = master.submit("flood", &[]).await?[0];
        let build = master.wait_build(id, Duration::from_secs(600)).await?;
        let wall = t0.elapsed();
        if build.state != BuildState::Succeeded {
            bail!("the flood build did not succeed: {build:#?}");
        }
        let step = &build.attempts[0].steps[0];
        let ms = step.duration_ms.context("no step duration")?.max(1);
        let on_disk = std::fs::metadata(master.state_dir().join(format!("logs/{id}/1.0.log")))
            .map_or(0, |m| m.len());
        let rate = step.log_bytes as f64 / 1e6 / (ms as f64 / 1e3);
        println!(
            "  build {id}: {} bytes persisted ({on_disk} on disk), step {ms} ms, \
             {rate:.1} MB/s; submit -> finished {:.0} ms",
            step.log_bytes,
            wall.as_secs_f64() * 1e3
        );
        rates.push(rate);
    }
    report("rate into the log store (MB/s)", &mut rates);
    Ok(())
}

/// The master's memory with many idle workers connected.
async fn rss(bins: &Bins) -> anyhow::Result<()> {
    let empty = MasterBuilder::config(&warm_pool(1).replace("min_idle = 1", "min_idle = 0"))
        .bins(bins.clone())
        .env("RUST_LOG", "warn")
        .quiet()
        .start()
        .await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let base = procs::rss_kib(empty.pid()).context("no RSS")?;
    drop(empty);

    let t0 = Instant::now();
    let master = start(bins, RSS_WORKERS).await?;
    let ready = t0.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let with = procs::rss_kib(master.pid()).context("no RSS")?;
    let workers = master.worker_processes();
    let worker_rss: Vec<u64> = workers
        .iter()
        .filter_map(|p| procs::rss_kib(p.pid))
        .collect();
    let avg = worker_rss.iter().sum::<u64>() as f64 / worker_rss.len().max(1) as f64;
    println!("\n== memory: master RSS with {RSS_WORKERS} idle local workers connected");
    println!(
        "  master RSS, no workers       {:>9.1} MiB",
        base as f64 / 1024.0
    );
    println!(
        "  master RSS, {RSS_WORKERS} idle workers   {:>9.1} MiB",
        with as f64 / 1024.0
    );
    println!(
        "  per worker on the master     {:>9.1} KiB",
        (with as f64 - base as f64) / RSS_WORKERS as f64
    );
    println!(
        "  burst-worker RSS (mean)      {:>9.1} MiB over {} processes",
        avg / 1024.0,
        worker_rss.len()
    );
    println!(
        "  time to {RSS_WORKERS} idle workers      {:>9.1} ms",
        ready.as_secs_f64() * 1e3
    );
    Ok(())
}

/// Like `Master::wait_build`, polling faster (figures in ms).
async fn wait_fast(master: &Master, id: i64) -> anyhow::Result<Build> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let b = master.build(id).await?;
        if b.state.is_finished() {
            return Ok(b);
        }
        if Instant::now() > deadline {
            bail!("build {id} did not finish within 60 s: {b:#?}");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

fn report(what: &str, samples: &mut [f64]) {
    samples.sort_by(f64::total_cmp);
    let pct = |q: f64| {
        let i = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len().max(1)) - 1;
        samples.get(i).copied().unwrap_or(f64::NAN)
    };
    println!(
        "  {what:<46} p50 {:>7.2}  p99 {:>7.2}  max {:>7.2}",
        pct(0.50),
        pct(0.99),
        samples.last().copied().unwrap_or(f64::NAN)
    );
}
