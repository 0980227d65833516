//! Idempotent submits: a submit repeated with its `Idempotency-Key` creates
//! nothing new, over the API and from the CLI retrying a lost answer.

use std::sync::atomic::Ordering;
use std::time::Duration;

use burst_e2e::fault_proxy::FaultProxy;
use burst_e2e::Master;
use burst_master::model::BuildState;
use reqwest::Method;
use serde_json::json;

const CONFIG: &str = r#"
[pools.local]
provider = "local"
labels = ["linux"]

[[builders]]
name = "quick"
labels = ["linux"]

[builders.params]
WHO = { default = "world" }

[[builders.steps]]
name = "hi"
run = "echo hi-$BURST_BUILD_ID"
"#;

async fn submit_with_key(
    master: &Master,
    token: &str,
    key: &str,
    body: &serde_json::Value,
) -> anyhow::Result<(u16, serde_json::Value)> {
    master
        .api_request(
            Method::POST,
            "/api/v1/builds",
            Some(token),
            &[("Idempotency-Key", key)],
            Some(body),
        )
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_repeated_key_returns_the_same_builds_and_creates_none() -> anyhow::Result<()> {
    let master = Master::start(CONFIG).await?;
    let admin = master.admin_token();
    let body = json!({ "builder": "quick", "params": { "WHO": "a" } });
    let key = "6f1c3a52-0b7e-4d0e-9d7e-2f6f4b1f9a10";

    let first = submit_with_key(&master, &admin, key, &body).await?;
    assert_eq!(first.0, 201, "{first:?}");
    let again = submit_with_key(&master, &admin, key, &body).await?;
    assert_eq!(again, first, "the same answer");
    let builds = master
        .api_get::<Vec<serde_json::Value>>("/api/v1/builds")
        .await?;
    assert_eq!(builds.len(), 1, "one build: {builds:#?}");

    // The same key for another request is refused, and stores nothing.
    let other = json!({ "builder": "quick", "params": { "WHO": "b" } });
    let (status, answer) = submit_with_key(&master, &admin, key, &other).await?;
    assert_eq!(status, 422, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .is_some_and(|e| e.contains("Idempotency-Key") && e.contains("different submit")),
        "{answer}"
    );
    // Keys are checked.
    let (status, answer) = submit_with_key(&master, &admin, "not a key!", &body).await?;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .is_some_and(|e| e.contains("Idempotency-Key")),
        "{answer}"
    );
    // Keys belong to the token that sent them.
    let ci = master.create_token("ci", "submitter").await?;
    let theirs = submit_with_key(&master, &ci, key, &body).await?;
    assert_eq!(theirs.0, 201, "{theirs:?}");
    assert_ne!(theirs.1["builds"], first.1["builds"], "{theirs:?}");
    let builds = master
        .api_get::<Vec<serde_json::Value>>("/api/v1/builds")
        .await?;
    assert_eq!(builds.len(), 2, "{builds:#?}");
    Ok(())
}

/// The first answer is lost after the master took the submit: the CLI
/// retries with the same key and gets the same build, not a second one.
#[tokio::test(flavor = "multi_thread")]
async fn the_cli_retries_a_lost_answer_without_submitting_twice() -> anyhow::Result<()> {
    let master = Master::start(CONFIG).await?;
    let proxy = FaultProxy::start(&master.url()).await?;
    proxy.faults.drop_answers.store(1, Ordering::SeqCst);
    let cmd = master.cli_command_at(&proxy.url, &["submit", "quick"]);
    let out = burst_e2e::cmd::run(cmd, Duration::from_secs(60)).await?;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(proxy.faults.answers_dropped.load(Ordering::SeqCst), 1);
    assert_eq!(
        proxy.faults.forwarded.load(Ordering::SeqCst),
        2,
        "one retry"
    );
    assert!(out.stderr.contains("retrying the submit"), "{out:?}");

    let builds = master
        .api_get::<Vec<burst_master::model::Build>>("/api/v1/builds")
        .await?;
    assert_eq!(builds.len(), 1, "one build: {builds:#?}");
    let id = builds[0].id;
    assert!(
        out.stdout
            .contains(&format!("submitted quick: builds {id} ")),
        "{out:?}"
    );
    let b = master.wait_build(id, Duration::from_secs(60)).await?;
    assert_eq!(b.state, BuildState::Succeeded, "{b:#?}");
    Ok(())
}
