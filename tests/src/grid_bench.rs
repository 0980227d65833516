//! The grid scenario of `bench_ui`, at any scale: `bench_ui` runs it at
//! 50 builders × 100 submits and prints the figures; the `bench_smoke`
//! tests run it small and check what it showed, so the benchmark keeps
//! working without any timing being asserted.
//!
//! Each submit has two matrix cells. The history is seeded straight into a
//! stopped master's database, longer than the grid shows, then the store
//! query, the grouping and the HTML rendering are timed in-process on that
//! database, and `GET /grid` and `GET /api/v1/grid` against the real master
//! on loopback (server time plus a loopback round trip).

use std::time::{Duration, Instant};

use anyhow::Context;
use burst_master::model::{Grid, NewBuild};
use burst_master::store::{SqliteStore, Store};

use crate::{Bins, MasterBuilder};

/// How big the seeded history is and how often each figure is sampled.
#[derive(Debug, Clone, Copy)]
pub struct GridScale {
    pub builders: usize,
    /// Submits the grid shows per builder.
    pub submits: u32,
    /// Submits seeded per builder, of which the grid shows the newest.
    pub history: usize,
    /// Samples per figure.
    pub runs: usize,
}

impl GridScale {
    /// The target: 50 builders × 100 submits, out of a history five
    /// times longer (50 000 builds).
    pub const BENCH: GridScale = GridScale {
        builders: 50,
        submits: 100,
        history: 500,
        runs: 20,
    };

    /// Seconds, for CI.
    pub const SMOKE: GridScale = GridScale {
        builders: 3,
        submits: 4,
        history: 7,
        runs: 2,
    };

    pub fn builder(b: usize) -> String {
        format!("builder-{b:02}")
    }
}

/// One timed request path.
#[derive(Debug)]
pub struct HttpFigure {
    pub path: String,
    /// Milliseconds per request.
    pub samples: Vec<f64>,
    /// The last response's body.
    pub body: String,
}

/// What one run measured and what it showed.
#[derive(Debug)]
pub struct GridFigures {
    pub seeded: usize,
    pub seed_time: Duration,
    /// Cells the store query returned (one per build shown).
    pub cells: usize,
    /// The grid the in-process path built, for checking.
    pub grid: Grid,
    /// Milliseconds per sample.
    pub query: Vec<f64>,
    pub group: Vec<f64>,
    pub render: Vec<f64>,
    /// `/grid` then `/api/v1/grid`.
    pub http: Vec<HttpFigure>,
}

fn config(scale: GridScale) -> String {
    let mut text = String::from(
        "[pools.local]\nprovider = \"local\"\nlabels = [\"linux\"]\nmax_workers = 1\n",
    );
    for b in 0..scale.builders {
        text.push_str(&format!(
            "\n[[builders]]\nname = \"{}\"\nlabels = [\"linux\"]\n\n\
             [builders.matrix]\nos = [\"linux\", \"mac\"]\n\n\
             [[builders.steps]]\nname = \"test\"\nrun = \"true\"\n",
            GridScale::builder(b)
        ));
    }
    text
}

/// The submit id of `builder`'s `n`th submit (0 is the oldest).
pub fn submit_id(builder: usize, n: usize) -> String {
    format!("s-{builder}-{n}")
}

/// One submit of `builder`: a build per cell.
fn submit(builder: usize, n: usize) -> Vec<NewBuild> {
    ["linux", "mac"]
        .into_iter()
        .map(|os| NewBuild {
            submit_id: submit_id(builder, n),
            builder: GridScale::builder(builder),
            cell: [("os".to_owned(), os.to_owned())].into(),
            params: Default::default(),
            labels: vec!["linux".to_owned()],
            steps: Vec::new(),
            retries: 0,
            submitted_by: Some("bench".to_owned()),
        })
        .collect()
}

/// Seeds the history, then times every path `scale.runs` times.
pub async fn run(bins: &Bins, scale: GridScale) -> anyhow::Result<GridFigures> {
    let mut master = MasterBuilder::config(&config(scale))
        .bins(bins.clone())
        .quiet()
        .start()
        .await?;
    master.sigterm_and_wait(Duration::from_secs(60)).await?;

    let store = SqliteStore::open(&master.state_dir()).await?;
    let started = Instant::now();
    // Submits interleaved across builders, as they arrive in real life.
    let builds: Vec<NewBuild> = (0..scale.history)
        .flat_map(|n| (0..scale.builders).flat_map(move |b| submit(b, n)))
        .collect();
    let seeded = builds.len();
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
    let seed_time = started.elapsed();

    let store = SqliteStore::open(&master.state_dir()).await?;
    let builders: Vec<String> = (0..scale.builders).map(GridScale::builder).collect();
    let (mut query, mut group, mut render) = (Vec::new(), Vec::new(), Vec::new());
    let (mut cells, mut grid) = (0, None);
    for _ in 0..scale.runs {
        let t = Instant::now();
        let summaries = store.recent_submits(scale.submits).await?;
        query.push(ms(t));
        cells = summaries.len();
        let t = Instant::now();
        let built = Grid::build(builders.clone(), summaries, scale.submits);
        group.push(ms(t));
        let t = Instant::now();
        let html = burst_master::ui::grid::render(&built, scale.submits).into_string();
        render.push(ms(t));
        std::hint::black_box(html);
        grid = Some(built);
    }
    store.close().await;
    let grid = grid.context("the grid scenario needs at least one run")?;

    master.restart().await?;
    let client = reqwest::Client::new();
    let token = master.admin_token();
    let mut http = Vec::new();
    for path in [
        format!("/grid?submits={}", scale.submits),
        format!("/api/v1/grid?submits={}", scale.submits),
    ] {
        let url = format!("{}{path}", master.url());
        let (mut samples, mut body) = (Vec::new(), String::new());
        for _ in 0..scale.runs {
            let t = Instant::now();
            let resp = client
                .get(&url)
                .bearer_auth(&token)
                .send()
                .await
                .with_context(|| format!("failed to GET {path}"))?
                .error_for_status()
                .with_context(|| format!("GET {path} was refused"))?;
            body = resp.text().await?;
            samples.push(ms(t));
        }
        http.push(HttpFigure {
            path,
            samples,
            body,
        });
    }
    Ok(GridFigures {
        seeded,
        seed_time,
        cells,
        grid,
        query,
        group,
        render,
        http,
    })
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

/// `what: p50 …, p90 …, max …`, sorting `samples`.
pub fn report(what: &str, samples: &mut [f64]) -> String {
    samples.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    format!(
        "{what}: p50 {:.1} ms, p90 {:.1} ms, max {:.1} ms ({} runs)",
        at(0.5),
        at(0.9),
        at(1.0),
        samples.len()
    )
}
