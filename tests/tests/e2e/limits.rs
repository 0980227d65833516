//! Limits the master enforces whatever a worker or client does: the per-step
//! log cap, hello field lengths, and connection exhaustion.

use std::time::Duration;

use burst_e2e::{wait, Master, MasterBuilder};
use burst_master::model::{BuildState, StepState};
use burst_proto::worker_service_client::WorkerServiceClient;
use burst_proto::{worker_message, Hello, WorkerMessage};
use tokio::io::AsyncReadExt;

/// A local pool and a builder whose build succeeds.
const LOCAL: &str = r#"
[pools.local]
provider = "local"
labels = ["linux"]

[[builders]]
name = "ok"
labels = ["linux"]

[[builders.steps]]
name = "ok"
run = "echo ok"
"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_step_past_the_log_cap_is_cancelled_and_fails_saying_why() -> anyhow::Result<()> {
    // Unique, so the check for a leftover process sees only this test's.
    let flood = format!("burst-log-flood-{}", std::process::id());
    let master = MasterBuilder::new()
        .master_toml(r#"step_log_limit = "64KB""#)
        .section(&format!(
            r#"
[pools.local]
provider = "local"
labels = ["linux"]

[[builders]]
name = "flood"
labels = ["linux"]

[[builders.steps]]
name = "flood"
# Never ends by itself: only the cap (a cancel) stops it.
run = "yes {flood}"

[[builders.steps]]
name = "after"
run = "echo after-the-flood"
"#
        ))
        .start()
        .await?;
    let id = master.submit("flood", &[]).await?[0];
    let build = master.wait_build(id, Duration::from_secs(60)).await?;
    assert_eq!(build.state, BuildState::Failed, "{build:#?}");
    let message = "step output exceeded step_log_limit (64.0 kB)";
    let reason = build.reason.clone().unwrap_or_default();
    assert!(reason.contains(message), "{reason}");
    let steps = &build.attempts[0].steps;
    assert_eq!(steps[0].state, StepState::Failed, "{steps:#?}");
    assert_eq!(steps[0].error.as_deref(), Some(message), "{steps:#?}");
    assert_eq!(steps[1].state, StepState::Skipped, "{steps:#?}");
    // The file holds the limit and the closing line, no more.
    assert!((64_000..64_200).contains(&steps[0].log_bytes), "{steps:#?}");
    let log = master.log_text(id).await?;
    assert!(
        log.contains(&format!("[burst] {message}")),
        "{}",
        &log[log.len().saturating_sub(500)..]
    );
    assert!(!log.contains("after-the-flood"));
    // The worker was told to cancel: the flooding process is gone.
    wait::until_true(
        "the flooding step to be killed",
        Duration::from_secs(30),
        || !running_cmdline_contains(&flood),
    )
    .await?;
    Ok(())
}

/// Whether a live process's command line contains `needle`.
fn running_cmdline_contains(needle: &str) -> bool {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return false;
    };
    dir.flatten().any(|e| {
        std::fs::read(e.path().join("cmdline"))
            .is_ok_and(|c| String::from_utf8_lossy(&c).contains(needle))
    })
}

/// Opens a session with `hello` as a fake worker would; the error the master
/// answered with, if any.
async fn say_hello(master: &Master, hello: Hello) -> anyhow::Result<Option<tonic::Status>> {
    let mut client = WorkerServiceClient::connect(master.worker_url()).await?;
    let first = WorkerMessage {
        msg: Some(worker_message::Msg::Hello(hello)),
    };
    Ok(client.session(tokio_stream::iter(vec![first])).await.err())
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_hellos_are_refused_and_logged_short() -> anyhow::Result<()> {
    let master = MasterBuilder::new().section(LOCAL).start().await?;
    let huge_id = "w".repeat(3 << 20);
    let cases = [
        (
            "3 MB worker id",
            Hello {
                worker_id: huge_id.clone(),
                ..Hello::default()
            },
        ),
        (
            "129-char worker id",
            Hello {
                worker_id: "x".repeat(129),
                ..Hello::default()
            },
        ),
        (
            "65 labels",
            Hello {
                worker_id: "w1".into(),
                labels: vec!["l".into(); 65],
                ..Hello::default()
            },
        ),
        (
            "65-char label",
            Hello {
                worker_id: "w1".into(),
                labels: vec!["l".repeat(65)],
                ..Hello::default()
            },
        ),
    ];
    for (what, hello) in cases {
        let status = say_hello(&master, hello).await?;
        assert!(status.is_some(), "a hello with a {what} was accepted");
    }
    let status = say_hello(
        &master,
        Hello {
            worker_id: "x".repeat(129),
            ..Hello::default()
        },
    )
    .await?
    .unwrap();
    assert!(status.message().contains("worker id"), "{status:?}");
    // Each refusal is logged, with the id cut short.
    wait::until_true("the refusals to be logged", Duration::from_secs(10), || {
        master.log().matches("refused a").count() >= 5
    })
    .await?;
    let log = master.log();
    assert!(log.len() < 64 * 1024, "master.log is {} bytes", log.len());
    assert!(
        !log.contains(&"w".repeat(200)),
        "a long worker id was logged in full"
    );
    assert!(
        !log.contains(&"x".repeat(100)),
        "a long worker id was logged in full"
    );
    // The master still answers real workers' ports.
    let health = reqwest::get(format!("{}/healthz", master.url())).await?;
    assert!(health.status().is_success(), "{health:?}");
    Ok(())
}

/// Idle connections opened to each endpoint.
const IDLE_PER_PORT: usize = 1000;

#[tokio::test(flavor = "multi_thread")]
async fn idle_connections_with_few_descriptors_neither_freeze_nor_stay() -> anyhow::Result<()> {
    let master = MasterBuilder::new()
        .section(LOCAL)
        .nofile_limit(256)
        .start()
        .await?;
    let http_addr = master.url().trim_start_matches("http://").to_owned();
    let grpc_addr = master.worker_url().trim_start_matches("http://").to_owned();
    let mut idle = Vec::new();
    for addr in [&grpc_addr, &http_addr] {
        for _ in 0..IDLE_PER_PORT {
            // Bounded: a connect the backlog cannot take is given up.
            let connect = tokio::net::TcpStream::connect(addr.as_str());
            if let Ok(Ok(stream)) = tokio::time::timeout(Duration::from_secs(2), connect).await {
                idle.push(stream);
            }
        }
    }
    assert!(
        idle.len() > IDLE_PER_PORT,
        "only {} connections opened",
        idle.len()
    );

    // Health checks are answered while the idle connections are open.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let healthz = format!("{}/healthz", master.url());
    wait::until("/healthz to answer", Duration::from_secs(20), || {
        let (client, healthz) = (client.clone(), healthz.clone());
        async move {
            let r = client.get(&healthz).send().await?;
            Ok(r.status().is_success().then_some(()))
        }
    })
    .await?;
    // And builds still run: a worker gets through to the gRPC endpoint.
    // Connections past the cap are closed at once, so a client retries.
    let id = wait::until(
        "a submit to get through",
        Duration::from_secs(30),
        || async { Ok(Some(master.submit("ok", &[]).await?[0])) },
    )
    .await?;
    let build = master.wait_build(id, Duration::from_secs(60)).await?;
    assert_eq!(build.state, BuildState::Succeeded, "{build:#?}");

    // The master closes every idle connection: sheds them or times them out.
    let opened = idle.len();
    let reads = idle.into_iter().map(|mut s| async move {
        let mut buf = [0u8; 16];
        matches!(
            tokio::time::timeout(Duration::from_secs(60), s.read(&mut buf)).await,
            Ok(Ok(0) | Err(_))
        )
    });
    let closed = futures::future::join_all(reads)
        .await
        .into_iter()
        .filter(|c| *c)
        .count();
    assert_eq!(closed, opened, "idle connections the master left open");
    let log = master.log();
    assert!(
        log.contains("connection limit reached"),
        "{}",
        burst_e2e::master::last_lines(&log, 40)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_state_dir_and_step_logs_are_owner_only() -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let master = MasterBuilder::new().section(LOCAL).start().await?;
    let id = master.submit("ok", &[]).await?[0];
    let build = master.wait_build(id, Duration::from_secs(60)).await?;
    assert_eq!(build.state, BuildState::Succeeded, "{build:#?}");
    let mode = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.permissions().mode() & 0o777);
    let state = master.state_dir();
    assert_eq!(mode(&state)?, 0o700, "{}", state.display());
    // Compressed once the build is saved, still owner-only.
    let logs = master
        .wait_logs_compressed(id, Duration::from_secs(60))
        .await?;
    for log in logs {
        assert_eq!(mode(&log)?, 0o600, "{}", log.display());
    }
    Ok(())
}
