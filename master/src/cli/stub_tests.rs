//! The client end to end against a tiny axum stand-in for the master.

use std::collections::HashMap;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use clap::Parser;
use futures::{stream, StreamExt};

use super::args::Cli;
use super::exit::{finish, Exit};
use super::follow::Timing;
use super::output::Output;
use super::render::tests::build;
use super::run::execute_with;
use crate::model::{
    ApiError, BuildDetail, BuildState, QueuePosition, SubmitRequest, SubmitResponse,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn api_error(status: StatusCode, msg: &str) -> Response {
    (
        status,
        Json(ApiError {
            error: msg.to_owned(),
        }),
    )
        .into_response()
}

async fn submit(Json(req): Json<SubmitRequest>) -> Response {
    let builds = match req.builder.as_str() {
        "hello" => vec![12, 13],
        "mixed" => vec![14, 15],
        "flaky" => vec![16],
        "quiet" => vec![17],
        "waits" => vec![18],
        other => {
            return api_error(
                StatusCode::UNPROCESSABLE_ENTITY,
                &format!("unknown builder \"{other}\""),
            )
        }
    };
    Json(SubmitResponse {
        submit_id: format!("s-{}", req.builder),
        builds,
    })
    .into_response()
}

/// GETs of build 18 so far: it waits for a worker to start, then for a
/// free one, then runs and succeeds.
static WAITING_GETS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

fn waiting_build() -> Response {
    let n = WAITING_GETS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let (state, reason, position) = match n {
        0..=2 => (
            BuildState::Queued,
            "waiting for a worker of pool p to start",
            (2, 2),
        ),
        3..=4 => (
            BuildState::Queued,
            "waiting for a free worker: pool p is at max_workers (1)",
            (1, 1),
        ),
        5 => (BuildState::Running, "", (0, 0)),
        _ => (BuildState::Succeeded, "", (0, 0)),
    };
    let mut build = build(18, state, &[]);
    let mut queue = None;
    if state == BuildState::Queued {
        build.started_at = None;
        build.reason = Some(reason.to_owned());
        queue = Some(QueuePosition {
            pool: "p".to_owned(),
            position: position.0,
            queued: position.1,
        });
    }
    Json(BuildDetail {
        build,
        estimated_cost: None,
        cost: None,
        queue,
        github_jobs: Vec::new(),
    })
    .into_response()
}

async fn get_build(Path(id): Path<i64>) -> Response {
    if id == 18 {
        return waiting_build();
    }
    let mut b = match id {
        12 | 14 => build(id, BuildState::Succeeded, &[("greeting", "hello")]),
        13 => build(id, BuildState::Succeeded, &[("greeting", "bye")]),
        15 => build(id, BuildState::Failed, &[("greeting", "bye")]),
        16 | 17 => build(id, BuildState::Succeeded, &[]),
        _ => return api_error(StatusCode::NOT_FOUND, &format!("no build {id}")),
    };
    if b.state == BuildState::Failed {
        b.reason = Some("step \"greet\" exited 1".to_owned());
    }
    Json(b).into_response()
}

/// Build 16's live stream breaks after one line; the others arrive in
/// chunks that split lines.
async fn get_log(Path(id): Path<i64>, Query(q): Query<HashMap<String, String>>) -> Response {
    let follow = q.get("follow").is_some_and(|v| v == "true");
    match (id, follow) {
        (16, false) => "one\ntwo\n".into_response(),
        (16, true) => {
            let chunks = stream::unfold(0, |n| async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                match n {
                    0 => Some((Ok("one\n".to_owned()), 1)),
                    1 => Some((Err(std::io::Error::other("master crashed")), 2)),
                    _ => None,
                }
            });
            Body::from_stream(chunks).into_response()
        }
        // A stream that goes silent without ending (a half-dead connection).
        (17, false) => "a\nb\n".into_response(),
        (17, true) => {
            let chunks = stream::iter([Ok::<_, std::io::Error>("a\n")]).chain(stream::pending());
            Body::from_stream(chunks).into_response()
        }
        (_, false) => format!("hello from {id}\npartial\nno newline").into_response(),
        (_, true) => {
            let parts = [
                format!("hello from {id}\npart"),
                "ial\nno ".to_owned(),
                "newline".to_owned(),
            ];
            let chunks = stream::iter(parts.map(Ok::<_, std::io::Error>));
            Body::from_stream(chunks).into_response()
        }
    }
}

async fn stub() -> Result<String, std::io::Error> {
    let app = Router::new()
        .route(
            "/api/v1/builds",
            post(submit).get(|| async { Json(vec![build(12, BuildState::Running, &[])]) }),
        )
        .route("/api/v1/builds/{id}", get(get_build))
        .route("/api/v1/builds/{id}/log", get(get_log))
        .route(
            "/api/v1/builds/{id}/cancel",
            post(|| async { Json(serde_json::json!({"state": "cancelled"})) }),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/api/v1/workers",
            get(|| async { Json(Vec::<crate::model::WorkerView>::new()) }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(format!("http://{addr}"))
}

/// Runs `burst ARGS` against `url`: exit, stdout, stderr.
async fn burst(
    url: &str,
    args: &[&str],
) -> Result<(Exit, String, String), Box<dyn std::error::Error>> {
    let cli = Cli::try_parse_from(["burst", "--url", url].iter().chain(args))?;
    let (out, buf) = Output::buffer();
    let timing = Timing {
        poll: Duration::from_millis(20),
        idle_probe: Duration::from_millis(300),
        max_poll_failures: 3,
        wait_poll: Duration::from_millis(20),
        wait_repeat: Duration::from_secs(60),
    };
    let result = execute_with(&cli.url, None, cli.command, &out, &timing).await;
    let mut err = Vec::new();
    let exit = finish(result, &mut err);
    Ok((
        exit,
        buf.contents(),
        String::from_utf8_lossy(&err).into_owned(),
    ))
}

#[tokio::test]
async fn submit_follow_streams_every_build_and_succeeds() -> TestResult {
    let url = stub().await?;
    let (exit, out, err) =
        burst(&url, &["submit", "hello", "--param", "who=me", "--follow"]).await?;
    assert_eq!((exit, err.as_str()), (Exit::Success, ""), "{out}");
    assert!(
        out.starts_with("submitted hello: builds 12, 13 (submit s-hello)\n"),
        "{out}"
    );
    for line in [
        "[12 greeting=hello] hello from 12\n",
        "[12 greeting=hello] partial\n",
        "[12 greeting=hello] no newline\n",
        "[13 greeting=bye]   hello from 13\n",
        "[13 greeting=bye]   no newline\n",
    ] {
        assert_eq!(out.matches(line).count(), 1, "{line:?} in\n{out}");
    }
    assert!(out.ends_with(
        "build 12 (greeting=hello): succeeded in 1.2s\nbuild 13 (greeting=bye): succeeded in 1.2s\n"
    ), "{out}");
    Ok(())
}

#[tokio::test]
async fn submit_follow_exits_1_when_a_build_fails() -> TestResult {
    let url = stub().await?;
    let (exit, out, _) = burst(&url, &["submit", "mixed", "--follow"]).await?;
    assert_eq!(exit, Exit::BuildsFailed, "{out}");
    assert!(
        out.contains("build 15 (greeting=bye): failed in 1.2s: step \"greet\" exited 1\n"),
        "{out}"
    );
    // Without --follow, submitting is success enough.
    let (exit, out, _) = burst(&url, &["submit", "mixed"]).await?;
    assert_eq!(
        (exit, out.as_str()),
        (
            Exit::Success,
            "submitted mixed: builds 14, 15 (submit s-mixed)\n"
        )
    );
    Ok(())
}

#[tokio::test]
async fn a_broken_stream_falls_back_and_prints_the_rest() -> TestResult {
    let url = stub().await?;
    let (exit, out, err) = burst(&url, &["submit", "flaky", "--follow"]).await?;
    assert_eq!(exit, Exit::Success, "{out}{err}");
    assert!(
        out.contains("[16] one\n[16] two\nbuild 16: succeeded"),
        "{out}"
    );
    assert_eq!(out.matches("one").count(), 1, "{out}");
    Ok(())
}

#[tokio::test]
async fn submit_follow_says_why_a_build_waits_then_streams_its_log() -> TestResult {
    let url = stub().await?;
    let (exit, out, err) = burst(&url, &["submit", "waits", "--follow"]).await?;
    assert_eq!(exit, Exit::Success, "{out}{err}");
    let want = "submitted waits: builds 18 (submit s-waits)\n\
        [18] queued 0 s: position 2 of 2 for pool p; waiting for a worker of pool p to start\n\
        [18] queued 0 s: position 1 of 1 for pool p; waiting for a free worker: pool p is at max_workers (1)\n\
        [18] started after 0 s in the queue\n\
        [18] hello from 18\n";
    assert!(out.starts_with(want), "{out}");
    Ok(())
}

#[tokio::test]
async fn a_silent_stream_of_a_finished_build_is_left() -> TestResult {
    let url = stub().await?;
    let (exit, out, err) = burst(&url, &["submit", "quiet", "--follow"]).await?;
    assert_eq!(exit, Exit::Success, "{out}{err}");
    assert!(
        out.ends_with("[17] a\n[17] b\nbuild 17: succeeded in 1.2s\n"),
        "{out}"
    );
    Ok(())
}

#[tokio::test]
async fn api_errors_exit_2_with_their_message() -> TestResult {
    let url = stub().await?;
    let (exit, out, err) = burst(&url, &["submit", "nope", "--follow"]).await?;
    assert_eq!((exit, out.as_str()), (Exit::Error, ""));
    assert_eq!(err, "burst: unknown builder \"nope\"\n");
    let (exit, _, err) = burst(&url, &["build", "99"]).await?;
    assert_eq!((exit, err.as_str()), (Exit::Error, "burst: no build 99\n"));
    Ok(())
}

#[tokio::test]
async fn an_unreachable_master_exits_2_with_a_hint() -> TestResult {
    // A port that was free a moment ago: nothing listens there.
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let url = format!("http://{}", listener.local_addr()?);
    drop(listener);
    let (exit, _, err) = burst(&url, &["builds"]).await?;
    assert_eq!(exit, Exit::Error);
    assert!(
        err.starts_with(&format!(
            "burst: failed to reach the burst master at {url}: "
        )),
        "{err}"
    );
    assert!(
        err.contains("is `burst master` running? (set --url or BURST_URL)"),
        "{err}"
    );
    Ok(())
}

#[tokio::test]
async fn healthcheck_exits_0_on_ok_and_1_when_unreachable() -> TestResult {
    let url = stub().await?;
    let (exit, out, err) = burst(&url, &["healthcheck"]).await?;
    assert_eq!(
        (exit, out.as_str(), err.as_str()),
        (Exit::Success, "ok\n", "")
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let gone = format!("http://{}", listener.local_addr()?);
    drop(listener);
    let cli = Cli::try_parse_from(["burst", "--url", &gone, "healthcheck"])?;
    let (out, buf) = Output::buffer();
    let client = super::client::Client::new(&cli.url)?;
    let mut err = Vec::new();
    let exit = super::commands::healthcheck(&client, &out, &mut err).await?;
    assert_eq!((exit, exit.code()), (Exit::Unhealthy, 1));
    assert_eq!(buf.contents(), "");
    let err = String::from_utf8_lossy(&err);
    assert!(
        err.starts_with("burst: unhealthy: failed to reach"),
        "{err}"
    );
    Ok(())
}

#[tokio::test]
async fn other_commands() -> TestResult {
    let url = stub().await?;
    let (exit, out, _) = burst(&url, &["logs", "12"]).await?;
    assert_eq!(
        (exit, out.as_str()),
        (Exit::Success, "hello from 12\npartial\nno newline")
    );
    let (exit, out, _) = burst(&url, &["logs", "13", "--follow"]).await?;
    assert_eq!(
        (exit, out.as_str()),
        (Exit::Success, "hello from 13\npartial\nno newline")
    );
    let (_, out, _) = burst(&url, &["cancel", "12"]).await?;
    assert_eq!(out, "build 12: cancelled\n");
    let (_, out, _) = burst(&url, &["workers"]).await?;
    assert_eq!(out, "no workers\n");
    let (_, out, _) = burst(&url, &["builds"]).await?;
    assert!(
        out.starts_with(
            "ID  BUILDER  CELL  STATE    ATTEMPTS  TIME\n12  hello    -     running  0"
        ),
        "{out}"
    );
    let (_, out, _) = burst(&url, &["build", "12", "--json"]).await?;
    let v: serde_json::Value = serde_json::from_str(&out)?;
    assert_eq!(v["state"], "succeeded");
    let (_, out, _) = burst(&url, &["build", "15"]).await?;
    assert!(out.starts_with("build 15\n  state:    failed\n"), "{out}");
    Ok(())
}
