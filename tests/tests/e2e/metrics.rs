//! `GET /metrics` as a Prometheus server scrapes it, who may read it, and
//! the master's own log: plain text off a terminal, JSON on request, and
//! local workers' logs in files of their own.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use burst_e2e::prometheus::{promtool_check, Prometheus};
use burst_e2e::{wait, Master, MasterBuilder};
use reqwest::Method;
use serde_json::Value;

/// One local worker that stays idle after its builds; steps take a moment,
/// so scrapes happen while builds run.
const CONFIG: &str = r#"
[pools.local]
provider = "local"
labels = ["linux"]
max_workers = 1
idle_timeout = "10m"

[[builders]]
name = "hello"
labels = ["linux"]

[[builders.steps]]
name = "greet"
run = "echo hi; sleep 1"
"#;

const BUILD_TIMEOUT: Duration = Duration::from_secs(90);
/// Scrapes come every second; this allows for a slow machine.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(90);

async fn metrics_text(master: &Master, token: Option<&str>) -> anyhow::Result<(u16, String)> {
    let (status, body) = master
        .api_request(Method::GET, "/metrics", token, &[], None)
        .await?;
    let text = match body {
        Value::String(s) => s,
        other => other.to_string(),
    };
    Ok((status, text))
}

/// Runs `n` builds of `hello` to success.
async fn run_builds(master: &Master, n: usize) -> anyhow::Result<()> {
    let mut ids = Vec::new();
    for _ in 0..n {
        ids.extend(master.submit("hello", &[]).await?);
    }
    for id in ids {
        let build = master.wait_build(id, BUILD_TIMEOUT).await?;
        assert_eq!(build.state.as_str(), "succeeded", "{build:#?}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn prometheus_scrapes_builds_queue_wait_and_workers() -> anyhow::Result<()> {
    let master = Master::start(CONFIG).await?;
    // The narrow role, made with the CLI as an operator would.
    let out = master
        .cli(&["token", "create", "prometheus", "--role", "metrics"])
        .await?;
    assert!(out.success(), "{out:?}");
    let token = out.stdout.trim().to_owned();
    let target = master.url().trim_start_matches("http://").to_owned();
    let prometheus = Prometheus::scrape(&target, &token).await?;
    prometheus
        .wait_value("up{job=\"burst\"}", 1.0, SCRAPE_TIMEOUT)
        .await?;

    run_builds(&master, 3).await?;

    prometheus
        .wait_value(
            "burst_builds_finished_total{builder=\"hello\",result=\"succeeded\"}",
            3.0,
            SCRAPE_TIMEOUT,
        )
        .await?;
    prometheus
        .wait_value(
            "burst_queue_wait_seconds_count{pool=\"local\"}",
            3.0,
            SCRAPE_TIMEOUT,
        )
        .await?;
    // One worker ran all three, one after the other, and waits idle.
    prometheus
        .wait_value(
            "burst_workers{pool=\"local\",state=\"idle\"}",
            1.0,
            SCRAPE_TIMEOUT,
        )
        .await?;
    prometheus
        .wait_value("sum(burst_workers{pool=\"local\"})", 1.0, SCRAPE_TIMEOUT)
        .await?;
    prometheus
        .wait_value(
            "burst_worker_startup_seconds_count{pool=\"local\",provider=\"local\"}",
            1.0,
            SCRAPE_TIMEOUT,
        )
        .await?;
    prometheus
        .wait_value(
            "burst_sessions_connected{pool=\"local\"}",
            1.0,
            SCRAPE_TIMEOUT,
        )
        .await?;
    let idle = master.workers().await?;
    assert_eq!(idle.len(), 1, "{idle:?}");
    assert_eq!(idle[0].state, "idle", "{idle:?}");
    // Output arrived ("hi\n" per build at least), and the store was written.
    let logged = prometheus.query("burst_log_received_bytes_total").await?;
    assert!(logged.len() == 1 && logged[0].value >= 9.0, "{logged:?}");
    // Group commit: a turn's changed builds are saved in one
    // `save_builds`; three builds on one worker take at least four turns
    // (a start, then a finish with the next start, …).
    let writes = prometheus
        .query("burst_store_write_seconds_count{operation=\"save_builds\"}")
        .await?;
    assert!(writes.len() == 1 && writes[0].value >= 3.0, "{writes:?}");
    let calls = prometheus
        .query("burst_provider_call_seconds_count{pool=\"local\",operation=\"launch\"}")
        .await?;
    assert!(calls.len() == 1 && calls[0].value == 1.0, "{calls:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_exposition_passes_promtool_and_has_no_ids() -> anyhow::Result<()> {
    let master = Master::start(CONFIG).await?;
    run_builds(&master, 1).await?;
    let worker = master.workers().await?.pop().expect("one worker");
    let (status, text) = metrics_text(&master, Some(&master.admin_token())).await?;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("burst_builds_finished_total"), "{text}");
    let out = promtool_check(&text, master.dir())?;
    assert!(
        out.success() && out.stdout.trim().is_empty() && out.stderr.trim().is_empty(),
        "promtool check metrics: {out:?}\n{text}"
    );
    assert!(!text.contains(&worker.worker_id), "a worker id in\n{text}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_need_the_metrics_role_or_metrics_open_on_loopback() -> anyhow::Result<()> {
    let master = Master::start(CONFIG).await?;
    let (status, text) = metrics_text(&master, None).await?;
    assert_eq!(status, 401, "{text}");
    wait::until_true("the refusal in the log", Duration::from_secs(10), || {
        master.log().lines().any(|l| {
            l.contains("refused API request")
                && l.contains("GET /metrics")
                && l.contains("anonymous")
        })
    })
    .await?;
    let (status, _) = metrics_text(&master, Some("burst_not-a-token")).await?;
    assert_eq!(status, 401);

    let scraper = master.create_token("scraper", "metrics").await?;
    let (status, text) = metrics_text(&master, Some(&scraper)).await?;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("# TYPE burst_workers gauge"), "{text}");
    // The metrics role reads nothing else.
    let (status, _) = master
        .api_request(Method::GET, "/api/v1/builds", Some(&scraper), &[], None)
        .await?;
    assert_eq!(status, 403);
    let viewer = master.create_token("eyes", "viewer").await?;
    let (status, _) = metrics_text(&master, Some(&viewer)).await?;
    assert_eq!(status, 200);
    drop(master);

    // metrics_open: a scraper on this host needs no token (the test's
    // requests come from 127.0.0.1); a bad token is still refused, and the
    // rest of the API still needs one.
    let open = MasterBuilder::config(CONFIG)
        .master_toml("metrics_open = true")
        .start()
        .await?;
    let (status, text) = metrics_text(&open, None).await?;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("burst_workers"), "{text}");
    let (status, _) = metrics_text(&open, Some("burst_not-a-token")).await?;
    assert_eq!(status, 401);
    let (status, _) = open
        .api_request(Method::GET, "/api/v1/builds", None, &[], None)
        .await?;
    assert_eq!(status, 401);
    Ok(())
}

/// The master's log lines, without the harness's own markers.
fn master_lines(master: &Master) -> Vec<String> {
    master
        .log()
        .lines()
        .filter(|l| !l.starts_with("=== e2e:"))
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn text_logs_have_no_escapes_and_worker_logs_have_their_own_file() -> anyhow::Result<()> {
    // No NO_COLOR: only "not a terminal" keeps colours out.
    let master = MasterBuilder::config(CONFIG)
        .colours_allowed()
        .start()
        .await?;
    run_builds(&master, 1).await?;
    let worker = master.workers().await?.pop().expect("one worker");
    let file = master
        .state_dir()
        .join("workers")
        .join(format!("{}.log", worker.worker_id));
    let worker_log = std::fs::read_to_string(&file).unwrap_or_default();
    assert!(
        worker_log.contains("connected to master"),
        "{}: {worker_log:?}",
        file.display()
    );
    let mode = std::fs::metadata(&file)?.permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{}", file.display());
    assert!(!worker_log.contains('\u{1b}'), "{worker_log:?}");

    let log = master.log();
    assert!(log.contains("build finished"), "{log}");
    assert!(
        !log.contains('\u{1b}'),
        "an ANSI escape in the master's log:\n{log:?}"
    );
    assert!(
        !log.contains("connected to master"),
        "the worker's own log reached the master's:\n{log}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn json_logs_are_one_object_per_line() -> anyhow::Result<()> {
    let master = MasterBuilder::config(CONFIG)
        .log_format("json")
        .start()
        .await?;
    run_builds(&master, 1).await?;
    let lines = master_lines(&master);
    assert!(lines.len() > 3, "{lines:?}");
    for line in &lines {
        let value: Value =
            serde_json::from_str(line).map_err(|e| anyhow::anyhow!("not JSON ({e}): {line}"))?;
        assert!(value.is_object(), "{line}");
        assert!(value["level"].is_string(), "{line}");
        assert!(value["message"].is_string(), "{line}");
    }
    let finished = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["message"] == "build finished")
        .expect("a build finished line");
    // Fields are keys of their own, not text inside the message.
    assert_eq!(finished["state"], "succeeded", "{finished}");
    assert_eq!(finished["level"], "INFO", "{finished}");
    Ok(())
}
