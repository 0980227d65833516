//! The web UI's benchmark: prints figures, asserts nothing.
//!
//!   cargo build --release --bins -p burst-master -p burst-worker -p burst-e2e
//!   target/release/bench_ui
//!
//! **grid:** 50 builders × 100 submits of two matrix cells each (10 000
//! builds shown) out of a history five times longer (50 000 builds), seeded
//! straight into a stopped master's database. It times the store query,
//! the grouping and the HTML rendering in-process on the same database,
//! then `GET /grid?submits=100` and `GET /api/v1/grid?submits=100` against
//! the real master on loopback (the server time plus a loopback round
//! trip).

use std::time::{Duration, Instant};

use anyhow::Context;
use burst_e2e::{Bins, MasterBuilder};
use burst_master::model::{Grid, NewBuild};
use burst_master::store::{SqliteStore, Store};

const BUILDERS: usize = 50;
const SUBMITS: u32 = 100;
/// History kept per builder, of which the grid shows the newest `SUBMITS`.
const HISTORY: usize = 500;
const RUNS: usize = 20;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let bins = Bins::locate()?;
    println!("binaries: {}", bins.burst.display());
    println!(
        "machine: {} cpus",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    grid(&bins).await
}

fn config() -> String {
    let mut text = String::from(
        "[pools.local]\nprovider = \"local\"\nlabels = [\"linux\"]\nmax_workers = 1\n",
    );
    for b in 0..BUILDERS {
        text.push_str(&format!(
            "\n[[builders]]\nname = \"builder-{b:02}\"\nlabels = [\"linux\"]\n\n\
             [builders.matrix]\nos = [\"linux\", \"mac\"]\n\n\
             [[builders.steps]]\nname = \"test\"\nrun = \"true\"\n"
        ));
    }
    text
}

/// One submit of `builder`: a build per cell.
fn submit(builder: usize, n: usize) -> Vec<NewBuild> {
    ["linux", "mac"]
        .into_iter()
        .map(|os| NewBuild {
            submit_id: format!("s-{builder}-{n}"),
            builder: format!("builder-{builder:02}"),
            cell: [("os".to_owned(), os.to_owned())].into(),
            params: Default::default(),
            labels: vec!["linux".to_owned()],
            steps: Vec::new(),
            retries: 0,
            submitted_by: Some("bench".to_owned()),
        })
        .collect()
}

async fn grid(bins: &Bins) -> anyhow::Result<()> {
    let mut master = MasterBuilder::config(&config())
        .bins(bins.clone())
        .quiet()
        .start()
        .await?;
    master.sigterm_and_wait(Duration::from_secs(60)).await?;

    let store = SqliteStore::open(&master.state_dir()).await?;
    let started = Instant::now();
    // Submits interleaved across builders, as they arrive in real life.
    let builds: Vec<NewBuild> = (0..HISTORY)
        .flat_map(|n| (0..BUILDERS).flat_map(move |b| submit(b, n)))
        .collect();
    let total = builds.len();
    store.insert_builds(builds).await?;
    store.close().await;
    // Finished, with a mix of results, so the master schedules nothing.
    let pool = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}",
        master.state_dir().join(SqliteStore::DB_FILE).display()
    ))
    .await
    .context("failed to open the database to set build states")?;
    sqlx::query(
        "UPDATE builds SET state = CASE id % 9 WHEN 0 THEN 'failed' WHEN 4 THEN 'timed_out' \
         ELSE 'succeeded' END, started_at = created_at, finished_at = created_at + 1000",
    )
    .execute(&pool)
    .await
    .context("failed to set build states")?;
    pool.close().await;
    println!(
        "grid: seeded {total} builds ({BUILDERS} builders x {HISTORY} submits x 2 cells) in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let store = SqliteStore::open(&master.state_dir()).await?;
    let builders: Vec<String> = (0..BUILDERS).map(|b| format!("builder-{b:02}")).collect();
    let (mut query, mut group, mut render) = (Vec::new(), Vec::new(), Vec::new());
    let mut cells = 0;
    for _ in 0..RUNS {
        let t = Instant::now();
        let summaries = store.recent_submits(SUBMITS).await?;
        query.push(ms(t));
        cells = summaries.len();
        let t = Instant::now();
        let grid = Grid::build(builders.clone(), summaries, SUBMITS);
        group.push(ms(t));
        let t = Instant::now();
        let html = burst_master::ui::grid::render(&grid, SUBMITS).into_string();
        render.push(ms(t));
        std::hint::black_box(html);
    }
    store.close().await;
    println!("grid: {BUILDERS} builders x {SUBMITS} submits = {cells} cells shown");
    report("grid store query (one statement)", &mut query);
    report("grid grouping in memory", &mut group);
    report("grid HTML render", &mut render);

    master.restart().await?;
    let client = reqwest::Client::new();
    let token = master.admin_token();
    for path in ["/grid?submits=100", "/api/v1/grid?submits=100"] {
        let url = format!("{}{path}", master.url());
        let mut times = Vec::new();
        let mut bytes = 0;
        for _ in 0..RUNS {
            let t = Instant::now();
            let resp = client
                .get(&url)
                .bearer_auth(&token)
                .send()
                .await?
                .error_for_status()?;
            bytes = resp.bytes().await?.len();
            times.push(ms(t));
        }
        report(&format!("GET {path} ({bytes} bytes)"), &mut times);
    }
    Ok(())
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

fn report(what: &str, samples: &mut [f64]) {
    samples.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "{what}: p50 {:.1} ms, p90 {:.1} ms, max {:.1} ms ({} runs)",
        at(0.5),
        at(0.9),
        at(1.0),
        samples.len()
    );
}
