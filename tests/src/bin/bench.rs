//! burst's benchmark: prints figures, each beside its target (issue 13),
//! asserts nothing.
//!
//!   cargo build --release --bins -p burst-master -p burst-worker -p burst-e2e
//!   target/release/bench [dispatch|cold|throughput|batch|log|rss|shutdown|sim-idle|sim-dispatch|matrix]...
//!
//! It drives the `burst` and `burst-worker` next to itself (or in
//! `$BURST_E2E_BIN_DIR`), on loopback, with local workers, or with simulated
//! ones (`burst_e2e::fleet_sim`, hosted in this process) for the fleet
//! scenarios. Sizes: `BENCH_SHUTDOWN_WORKERS` (1000), `BENCH_SIM_WORKERS`
//! (10000), `BENCH_SIM_PER_CONNECTION` (2: one machine's open-file limit
//! holds 10,000 sessions on 5,000 connections), `BENCH_QUEUED_BUILDS`
//! (10000), `BENCH_DISPATCH_WORKERS` (1000). `tests/tests/e2e/bench_smoke.rs`
//! runs the same scenarios small.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use burst_e2e::fleet_sim::{sim_pool, FleetSim, SimOptions};
use burst_e2e::{procs, wait, Bins, Master, MasterBuilder};
use burst_master::model::{now_millis, Build, BuildId, BuildState, SubmitResponse};
use futures::StreamExt;
use serde_json::{json, Value};

const DISPATCH_BUILDS: usize = 200;
const THROUGHPUT_BUILDS: usize = 200;
const LOG_BYTES: u64 = 100_000_000;
const LOG_RUNS: usize = 5;
const RSS_WORKERS: usize = 50;
const COLD_STARTS: usize = 20;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let all = [
        "dispatch",
        "cold",
        "throughput",
        "batch",
        "log",
        "rss",
        "shutdown",
        "sim-idle",
        "sim-dispatch",
        "matrix",
    ];
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
    if wanted("cold") {
        cold_start(&bins).await?;
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
    if wanted("batch") {
        batch(&bins).await?;
    }
    if wanted("shutdown") {
        shutdown(&bins, size("BENCH_SHUTDOWN_WORKERS", 1000)?).await?;
    }
    if wanted("sim-idle") || wanted("sim-dispatch") || wanted("matrix") {
        raise_nofile();
    }
    if wanted("sim-idle") {
        sim_idle(&bins, size("BENCH_SIM_WORKERS", 10_000)?).await?;
    }
    if wanted("sim-dispatch") {
        let builds = size("BENCH_QUEUED_BUILDS", 10_000)?;
        sim_dispatch(&bins, builds, size("BENCH_DISPATCH_WORKERS", 1000)?).await?;
    }
    if wanted("matrix") {
        matrix(&bins).await?;
    }
    Ok(())
}

fn size(var: &str, default: usize) -> anyhow::Result<usize> {
    match std::env::var(var) {
        Ok(v) => v
            .parse()
            .with_context(|| format!("{var} must be a whole number, got {v:?}")),
        Err(_) => Ok(default),
    }
}

/// One figure and the issue's target for it.
fn figure(what: &str, value: String, target: &str) {
    println!("  {what:<44} {value:>12}   (target {target})");
}

fn warm_pool(workers: usize) -> String {
    // A TOML basic string: the shell's backslash is written twice.
    let flood = FLOOD.replace('\\', "\\\\");
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
run = "{flood}"
"#
    )
}

/// Issue 13's log command: 100 MB of 100-character lines.
const FLOOD: &str = "head -c 100000000 /dev/zero | tr '\\0' x | fold -w 100";

async fn start(bins: &Bins, workers: usize) -> anyhow::Result<Master> {
    let master = MasterBuilder::config(&warm_pool(workers))
        // The flood prints 101 MB (fold adds a newline per 100 bytes).
        .master_toml(r#"step_log_limit = "200MB""#)
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

/// Submit -> complete when no worker is up: the local provider starts one
/// for the build (`max_builds = 1` stops it after, so each build starts
/// cold).
async fn cold_start(bins: &Bins) -> anyhow::Result<()> {
    let config = r#"
[pools.local]
provider = "local"
labels = ["linux"]
max_workers = 1
min_idle = 0
max_builds = 1

[[builders]]
name = "noop"
labels = ["linux"]

[[builders.steps]]
name = "noop"
run = "true"
"#;
    let master = MasterBuilder::config(config)
        .bins(bins.clone())
        .env("RUST_LOG", "warn")
        .quiet()
        .start()
        .await?;
    let mut done = Vec::new();
    for _ in 0..COLD_STARTS {
        wait::until(
            "the last worker to stop",
            Duration::from_secs(60),
            || async { Ok(master.workers().await?.is_empty().then_some(())) },
        )
        .await?;
        let id = master.submit("noop", &[]).await?[0];
        let build = master.wait_build(id, Duration::from_secs(60)).await?;
        if build.state != BuildState::Succeeded {
            bail!("a cold-start build did not succeed: {build:#?}");
        }
        let finished = build.finished_at.context("no finished_at")?;
        done.push((finished - build.created_at) as f64);
    }
    println!("\n== local latent cold start: {COLD_STARTS} builds, each on a worker started for it");
    report("submit -> build finished (ms, target <= 20)", &mut done);
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
        "\n== log throughput: one step printing {} MB ({FLOOD}), {LOG_RUNS} runs",
        LOG_BYTES / 1_000_000
    );
    let scratch = tempfile::tempdir()?;
    let (mut rates, mut ratios, mut local, mut plain_reads, mut sealed_reads) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..LOG_RUNS {
        // The same command into a local file, in the same run: the floor.
        let file = scratch.path().join("flood.txt");
        let t0 = Instant::now();
        let status = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(format!("{FLOOD} > {}", file.display()))
            .status()
            .await?;
        let to_file = t0.elapsed().as_secs_f64() * 1e3;
        if !status.success() {
            bail!("the flood command failed locally: {status}");
        }
        let expected = std::fs::read(&file)?;

        let t0 = Instant::now();
        let id = master.submit("flood", &[]).await?[0];
        let build = master.wait_build(id, Duration::from_secs(600)).await?;
        let wall = t0.elapsed();
        if build.state != BuildState::Succeeded {
            bail!("the flood build did not succeed: {build:#?}");
        }
        let step = &build.attempts[0].steps[0];
        let ms = step.duration_ms.context("no step duration")?.max(1);
        let rate = step.log_bytes as f64 / 1e6 / (ms as f64 / 1e3);
        // Read back at once (often the plain file), then once sealed.
        let t0 = Instant::now();
        let text = master.log_bytes(id).await?;
        let plain = text.len() as f64 / 1e6 / t0.elapsed().as_secs_f64();
        master
            .wait_logs_compressed(id, Duration::from_secs(120))
            .await?;
        let t0 = Instant::now();
        let again = master.log_bytes(id).await?;
        let sealed = again.len() as f64 / 1e6 / t0.elapsed().as_secs_f64();
        if !contains(&again, &expected) || text != again {
            bail!("build {id}: the log read back is not the step's output byte for byte");
        }
        println!(
            "  build {id}: {} bytes, step {ms} ms ({rate:.1} MB/s), to a local file {to_file:.0} ms \
             ({:.2}x); submit -> finished {:.0} ms; read back {plain:.0} MB/s, sealed {sealed:.0} MB/s",
            step.log_bytes,
            ms as f64 / to_file,
            wall.as_secs_f64() * 1e3
        );
        rates.push(rate);
        ratios.push(ms as f64 / to_file);
        local.push(to_file);
        plain_reads.push(plain);
        sealed_reads.push(sealed);
    }
    report("rate into the log store (MB/s)", &mut rates);
    report("the same command to a local file (ms)", &mut local);
    report("step time / local file time (target <= 1.3)", &mut ratios);
    report("reading back, just finished (MB/s)", &mut plain_reads);
    report(
        "reading back, compressed (MB/s; target >= 1000)",
        &mut sealed_reads,
    );
    Ok(())
}

/// Whether a one-step build's log holds `output` right after its step's
/// header line (`== step 1/1: …`).
fn contains(log: &[u8], output: &[u8]) -> bool {
    let Some(header) = log.iter().position(|b| *b == b'\n') else {
        return false;
    };
    log.get(header + 1..header + 1 + output.len()) == Some(output)
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

/// 200 trivial builds sent as one batched submit, on 4 warm local workers.
async fn batch(bins: &Bins) -> anyhow::Result<()> {
    let master = start(bins, 4).await?;
    let body = Value::Array(vec![json!({ "builder": "noop" }); THROUGHPUT_BUILDS]);
    let ticks0 = procs::cpu_ticks(master.pid()).context("no CPU time")?;
    let t0 = now_millis();
    let clock = Instant::now();
    let ids = submit_batch(&master, &body).await?;
    let submitted = clock.elapsed();
    let builds = wait_finished(&master, &ids, Duration::from_secs(600)).await?;
    let ticks1 = procs::cpu_ticks(master.pid()).context("no CPU time")?;
    let cpu_ms = (ticks1 - ticks0) as f64 * 1e3 / procs::TICKS_PER_SEC as f64;
    let last = builds
        .iter()
        .filter_map(|b| b.finished_at)
        .max()
        .unwrap_or(t0);
    let failed = builds
        .iter()
        .filter(|b| b.state != BuildState::Succeeded)
        .count();
    println!("\n== batch: {THROUGHPUT_BUILDS} trivial builds in one submit, 4 warm local workers");
    figure(
        "the batched submit answered in",
        format!("{:.1} ms", submitted.as_secs_f64() * 1e3),
        "-",
    );
    figure(
        "submit -> last build finished",
        format!("{:.3} s", (last - t0) as f64 / 1e3),
        "<= 0.15 s",
    );
    figure("not succeeded", failed.to_string(), "0");
    figure(
        "master CPU per build (incl. the bench's polls)",
        format!("{:.2} ms", cpu_ms / THROUGHPUT_BUILDS as f64),
        "<= 0.3 ms",
    );
    Ok(())
}

/// A master with `workers` idle local workers, stopped: SIGTERM to exit.
async fn shutdown(bins: &Bins, workers: usize) -> anyhow::Result<()> {
    let master = start(bins, workers).await?;
    let pid = master.pid();
    let master_id = master.master_id();
    let before = procs::with_master_id(&master_id).len();
    let clock = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGTERM,
    )
    .context("failed to send SIGTERM to the master")?;
    let deadline = Instant::now() + Duration::from_secs(300);
    while procs::is_running(pid) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let stopped = clock.elapsed();
    let left = procs::with_master_id(&master_id).len();
    println!("\n== shutdown: a master with {workers} idle local workers, SIGTERM -> exited");
    figure(
        &format!("stop {workers} workers and exit"),
        format!("{:.3} s", stopped.as_secs_f64()),
        "<= 1 s for 1,000",
    );
    figure(
        "processes before / left after",
        format!("{before} / {left}"),
        "- / 0",
    );
    drop(master);
    Ok(())
}

/// The bench hosts every simulated session: it needs a descriptor each.
fn raise_nofile() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}

const SIM_BUILDERS: &str = r#"
[[builders]]
name = "simnoop"
labels = ["sim"]

[[builders.steps]]
name = "noop"
run = "true"
"#;

/// A fleet simulator and a master whose `sim` pool keeps `workers` idle
/// when `warm` (else launches them on demand, up to `workers`).
async fn sim_master(
    bins: &Bins,
    dir: &std::path::Path,
    workers: usize,
    warm: bool,
    extra: &str,
) -> anyhow::Result<(FleetSim, Master)> {
    let socket = dir.join(format!("fleet-{workers}-{warm}.sock"));
    let per = size(
        "BENCH_SIM_PER_CONNECTION",
        if workers > 5000 { 2 } else { 1 },
    )?;
    let sim = FleetSim::start(
        &socket,
        SimOptions {
            sessions_per_connection: per,
            ..SimOptions::default()
        },
    )?;
    let master = MasterBuilder::new()
        .master_toml(&format!("max_connections = {}", workers + 100))
        .section(&sim_pool("sim", &socket, workers, warm))
        .section(SIM_BUILDERS)
        .section(extra)
        .bins(bins.clone())
        .env("RUST_LOG", "warn")
        .quiet()
        .start()
        .await?;
    Ok((sim, master))
}

/// Many idle simulated workers: connect time, memory, idle CPU.
async fn sim_idle(bins: &Bins, workers: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (_empty_sim, empty) = sim_master(bins, dir.path(), 1, false, "").await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let base = procs::rss_kib(empty.pid()).context("no RSS")?;
    drop(empty);

    let clock = Instant::now();
    let (sim, master) = sim_master(bins, dir.path(), workers, true, "").await?;
    let deadline = Instant::now() + Duration::from_secs(600);
    while sim.welcomed() < workers as u64 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let connected = clock.elapsed();
    master
        .wait_idle_workers(workers, Duration::from_secs(300))
        .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let with = procs::rss_kib(master.pid()).context("no RSS")?;
    let ticks0 = procs::cpu_ticks(master.pid()).context("no CPU time")?;
    let idle_for = Duration::from_secs(10);
    tokio::time::sleep(idle_for).await;
    let ticks1 = procs::cpu_ticks(master.pid()).context("no CPU time")?;
    let cpu = (ticks1 - ticks0) as f64 / procs::TICKS_PER_SEC as f64 / idle_for.as_secs_f64();
    println!(
        "\n== fleet: {workers} idle simulated workers (real gRPC sessions, {} failed)",
        sim.stats().failed.load(std::sync::atomic::Ordering::SeqCst)
    );
    figure(
        &format!("time to connect all {workers}"),
        format!("{:.2} s", connected.as_secs_f64()),
        "<= 10 s for 10,000",
    );
    figure(
        "master RSS, no workers",
        format!("{:.1} MiB", base as f64 / 1024.0),
        "<= 15 MiB",
    );
    figure(
        &format!("master RSS, {workers} idle workers"),
        format!("{:.1} MiB", with as f64 / 1024.0),
        "-",
    );
    figure(
        "per idle worker on the master",
        format!("{:.1} KiB", (with as f64 - base as f64) / workers as f64),
        "<= 20 KiB",
    );
    figure(
        "master CPU while idle (one core = 100 %)",
        format!("{:.1} %", cpu * 100.0),
        "-",
    );
    Ok(())
}

/// Many queued builds over many simulated workers that answer at once.
async fn sim_dispatch(bins: &Bins, builds: usize, workers: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (sim, master) = sim_master(bins, dir.path(), workers, true, "").await?;
    master
        .wait_idle_workers(workers, Duration::from_secs(300))
        .await?;
    let t0 = now_millis();
    let clock = Instant::now();
    let mut ids = Vec::new();
    for chunk in (0..builds).collect::<Vec<_>>().chunks(1000) {
        let body = Value::Array(vec![json!({ "builder": "simnoop" }); chunk.len()]);
        ids.extend(submit_batch(&master, &body).await?);
    }
    let submitted = clock.elapsed();
    // The simulator counts answered steps: no polling of the master's API
    // (a list of 10,000 builds) while it dispatches.
    let deadline = Instant::now() + Duration::from_secs(900);
    while sim.steps() < builds as u64 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let done = wait_finished(&master, &ids, Duration::from_secs(900)).await?;
    let last = done
        .iter()
        .filter_map(|b| b.finished_at)
        .max()
        .unwrap_or(t0);
    let secs = ((last - t0) as f64 / 1e3).max(1e-3);
    let failed = done
        .iter()
        .filter(|b| b.state != BuildState::Succeeded)
        .count();
    println!("\n== fleet dispatch: {builds} queued builds over {workers} simulated workers");
    figure(
        "submitted (batches of 1,000) in",
        format!("{:.2} s", submitted.as_secs_f64()),
        "-",
    );
    figure("first submit -> last finish", format!("{secs:.2} s"), "-");
    figure(
        "builds/s",
        format!("{:.0}", builds as f64 / secs),
        ">= 5,000/s",
    );
    figure(
        "not succeeded / steps answered",
        format!("{failed} / {}", sim.steps()),
        "0 / -",
    );
    Ok(())
}

/// One submit of a 1,000-cell matrix, run on 100 simulated workers.
async fn matrix(bins: &Bins) -> anyhow::Result<()> {
    let a: Vec<String> = (0..10).map(|i| format!("\"{i}\"")).collect();
    let b: Vec<String> = (0..100).map(|i| format!("\"{i:02}\"")).collect();
    let grid = format!(
        r#"
[[builders]]
name = "grid"
labels = ["sim"]

[builders.matrix]
a = [{}]
b = [{}]

[[builders.steps]]
name = "cell"
run = "true"
"#,
        a.join(", "),
        b.join(", ")
    );
    let dir = tempfile::tempdir()?;
    let (_sim, master) = sim_master(bins, dir.path(), 100, true, &grid).await?;
    master
        .wait_idle_workers(100, Duration::from_secs(300))
        .await?;
    let t0 = now_millis();
    let clock = Instant::now();
    let ids = submit_batch(&master, &json!({ "builder": "grid" })).await?;
    let answered = clock.elapsed();
    let done = wait_finished(&master, &ids, Duration::from_secs(600)).await?;
    let last = done
        .iter()
        .filter_map(|b| b.finished_at)
        .max()
        .unwrap_or(t0);
    let failed = done
        .iter()
        .filter(|b| b.state != BuildState::Succeeded)
        .count();
    println!(
        "\n== matrix: one submit of a {}-cell matrix, 100 simulated workers",
        ids.len()
    );
    figure(
        "the submit answered in",
        format!("{:.1} ms", answered.as_secs_f64() * 1e3),
        "-",
    );
    figure(
        "submit -> last cell finished",
        format!("{:.2} s", (last - t0) as f64 / 1e3),
        "-",
    );
    figure("not succeeded", failed.to_string(), "0");
    Ok(())
}

async fn submit_batch(master: &Master, body: &Value) -> anyhow::Result<Vec<BuildId>> {
    let (status, answer) = master.api_post("/api/v1/builds", body).await?;
    if status != 201 {
        bail!("submit: HTTP {status}: {answer}");
    }
    Ok(serde_json::from_value::<SubmitResponse>(answer)?.builds)
}

/// Waits until every build of `ids` finished; polls the list, newest first.
async fn wait_finished(
    master: &Master,
    ids: &[BuildId],
    timeout: Duration,
) -> anyhow::Result<Vec<Build>> {
    let wanted: std::collections::HashSet<BuildId> = ids.iter().copied().collect();
    let limit = ids.len() + 10;
    wait::until("every build to finish", timeout, || {
        let wanted = &wanted;
        async move {
            let builds: Vec<Build> = master
                .api_get(&format!("/api/v1/builds?limit={limit}"))
                .await?;
            let ours: Vec<Build> = builds
                .into_iter()
                .filter(|b| wanted.contains(&b.id))
                .collect();
            let done = ours.len() == wanted.len() && ours.iter().all(|b| b.state.is_finished());
            Ok(done.then_some(ours))
        }
    })
    .await
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
