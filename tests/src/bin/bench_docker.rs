//! Cold start of a Docker worker: from `burst submit` to the build's first
//! step started on a brand-new container, beside `docker run --rm IMAGE
//! true` on the same engine in the same run.
//!
//!   cargo build --workspace --bins && images/docker/build.sh
//!   cargo run -p burst-e2e --bin bench_docker [RUNS]     # default 10
//!
//! Prints the median and spread of each, their ratio, and where burst's time
//! goes: the provider's create + start calls, and launch -> connected (which
//! adds the worker's boot and dial).

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use burst_e2e::docker_support::{
    builder, docker, image, pool_containers, require_docker_and_image, unique, Cleanup, DockerPool,
};
use burst_e2e::Master;
use serde_json::Value;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// (median, min, max)
fn stats(samples: &[f64]) -> (f64, f64, f64) {
    let mut s = samples.to_vec();
    s.sort_by(f64::total_cmp);
    let median = if s.len() % 2 == 1 {
        s[s.len() / 2]
    } else {
        (s[s.len() / 2 - 1] + s[s.len() / 2]) / 2.0
    };
    (median, s[0], s[s.len() - 1])
}

fn docker_run_true() -> anyhow::Result<Duration> {
    let start = Instant::now();
    docker(&["run", "--rm", "--entrypoint", "/bin/true", &image()])?;
    Ok(start.elapsed())
}

struct BurstSample {
    /// Build created -> first step dispatched, on the master's clock.
    submit_to_step: f64,
    /// Client side: POST /builds -> step seen running.
    client: f64,
    /// Ledger: launched -> connected.
    launch_to_connect: f64,
    /// The provider's launch call: container create + start.
    create_start: f64,
}

async fn burst_cold_start(master: &Master, pool: &str) -> anyhow::Result<BurstSample> {
    // Cold: no container of the pool exists.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !pool_containers(pool)?.is_empty() {
        if Instant::now() > deadline {
            bail!("containers of the previous run linger");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let start = Instant::now();
    let id = *master
        .submit("cold", &[])
        .await?
        .first()
        .context("no build")?;
    let deadline = Instant::now() + Duration::from_secs(60);
    let (build, client) = loop {
        let build = master.build_json(id).await?;
        let started = build["attempts"]
            .as_array()
            .and_then(|a| a.first())
            .and_then(|a| a["steps"].as_array())
            .and_then(|s| s.first())
            .is_some_and(|s| s["started_at"].is_u64());
        if started {
            break (build, start.elapsed());
        }
        if Instant::now() > deadline {
            bail!(
                "build {id} did not start within 60s:\n{}",
                master.log_tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    let created = build["created_at"].as_u64().unwrap_or(0);
    let attempt = &build["attempts"][0];
    let step_started = attempt["steps"][0]["started_at"].as_u64().unwrap_or(0);
    let worker = attempt["worker_id"].as_str().unwrap_or("").to_owned();
    // The ledger row is complete once the build is over.
    master.finished_json(id, Duration::from_secs(60)).await?;
    let row: Value = master
        .instances_json()
        .await?
        .into_iter()
        .find(|r| r["worker_id"] == worker.as_str())
        .context("no ledger row")?;
    let launched = row["launched_at"].as_u64().unwrap_or(0);
    let connected = row["connected_at"].as_u64().unwrap_or(0);
    Ok(BurstSample {
        submit_to_step: step_started.saturating_sub(created) as f64,
        client: ms(client),
        launch_to_connect: connected.saturating_sub(launched) as f64,
        create_start: row["details"]["launch_ms"].as_f64().unwrap_or(f64::NAN),
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let runs: usize = match std::env::args().nth(1) {
        Some(n) => n.parse().context("RUNS must be a number")?,
        None => 10,
    };
    require_docker_and_image()?;
    let pool = unique("bench-docker");
    let _cleanup = Cleanup::new(&pool);
    let master = DockerPool::new(&pool)
        .pool("max_builds = 1\nmax_workers = 1")
        .master()
        .section(&builder("cold", &pool, "true"))
        .quiet()
        .start()
        .await?;

    // One untimed round each: page cache, image layers, the master's client.
    docker_run_true()?;
    burst_cold_start(&master, &pool).await?;

    let mut plain = Vec::new();
    let mut burst = Vec::new();
    for _ in 0..runs {
        plain.push(ms(docker_run_true()?));
        burst.push(burst_cold_start(&master, &pool).await?);
    }
    let (p_med, p_min, p_max) = stats(&plain);
    let b: Vec<f64> = burst.iter().map(|s| s.submit_to_step).collect();
    let (b_med, b_min, b_max) = stats(&b);
    let c: Vec<f64> = burst.iter().map(|s| s.client).collect();
    let (c_med, _, _) = stats(&c);
    let l: Vec<f64> = burst.iter().map(|s| s.launch_to_connect).collect();
    let (l_med, _, _) = stats(&l);
    let cs: Vec<f64> = burst.iter().map(|s| s.create_start).collect();
    let (cs_med, _, _) = stats(&cs);

    println!("docker cold start, {runs} runs each, image {}", image());
    println!(
        "  docker run --rm IMAGE true      median {p_med:7.1} ms  (min {p_min:.1}, max {p_max:.1})"
    );
    println!(
        "  burst submit -> step started    median {b_med:7.1} ms  (min {b_min:.1}, max {b_max:.1})"
    );
    println!("    of which launch -> connected  median {l_med:7.1} ms");
    println!("      docker create + start       median {cs_med:7.1} ms");
    println!("    seen by the client (polling)  median {c_med:7.1} ms");
    println!("  ratio burst / docker run        {:.2}", b_med / p_med);
    Ok(())
}
