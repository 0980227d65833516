//! Batch submits: `POST /api/v1/builds` with a list, and `burst submit
//! --from FILE|-`. A batch is queued whole or not at all.

use std::time::Duration;

use anyhow::Context;
use burst_e2e::Master;
use burst_master::model::{Build, BuildId, BuildState, SubmitResponse};
use reqwest::Method;
use serde_json::{json, Value};

const CONFIG: &str = r#"
[pools.local]
provider = "local"
labels = ["linux"]
max_workers = 4

[[builders]]
name = "quick"
labels = ["linux"]

[builders.params]
N = { default = "0", regex = "^[0-9]+$" }

[[builders.steps]]
name = "say"
run = "echo n=$N"

[[builders]]
name = "pair"
labels = ["linux"]

[builders.matrix]
side = ["left", "right"]

[[builders.steps]]
name = "s"
run = "echo pair"
"#;

fn batch(n: usize) -> Value {
    Value::Array(
        (0..n)
            .map(|i| json!({ "builder": "quick", "params": { "N": i.to_string() } }))
            .collect(),
    )
}

async fn all_builds(master: &Master) -> anyhow::Result<Vec<Build>> {
    master.api_get("/api/v1/builds?limit=1000").await
}

async fn wait_all_succeeded(master: &Master, ids: &[BuildId]) -> anyhow::Result<Vec<Build>> {
    let mut done = Vec::new();
    for id in ids {
        let build = master.wait_build(*id, Duration::from_secs(120)).await?;
        assert_eq!(build.state, BuildState::Succeeded, "{build:#?}");
        done.push(build);
    }
    Ok(done)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_of_200_queues_200_builds_that_all_succeed() -> anyhow::Result<()> {
    let master = Master::start(CONFIG).await?;
    let (status, answer) = master.api_post("/api/v1/builds", &batch(200)).await?;
    assert_eq!(status, 201, "{answer}");
    let resp: SubmitResponse = serde_json::from_value(answer)?;
    assert_eq!(resp.builds.len(), 200, "{resp:?}");

    let builds = wait_all_succeeded(&master, &resp.builds).await?;
    // In the batch's order, one submit id, each with its own params.
    for (i, build) in builds.iter().enumerate() {
        assert_eq!(build.submit_id, resp.submit_id, "{build:#?}");
        assert_eq!(build.params.get("N"), Some(&i.to_string()), "{build:#?}");
        let log = master.log_text(build.id).await?;
        assert!(
            log.contains(&format!("n={i}\n")),
            "build {}: {log}",
            build.id
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_element_refuses_the_whole_batch_naming_its_index() -> anyhow::Result<()> {
    let master = Master::start(CONFIG).await?;
    let mut body = batch(5);
    body[3] = json!({ "builder": "quick", "params": { "N": "not-a-number" } });
    let (status, answer) = master.api_post("/api/v1/builds", &body).await?;
    assert_eq!(status, 400, "{answer}");
    let error = answer["error"].as_str().unwrap_or_default();
    assert!(error.starts_with("element 3: "), "{answer}");
    assert!(error.contains("N"), "{answer}");

    // An element that is not a submit at all, and an unknown builder.
    body[3] = json!({ "params": {} });
    let (status, answer) = master.api_post("/api/v1/builds", &body).await?;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("element 3: missing field `builder`")),
        "{answer}"
    );
    body[3] = json!({ "builder": "nosuch" });
    let (status, answer) = master.api_post("/api/v1/builds", &body).await?;
    assert_eq!(status, 422, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("element 3: unknown builder \"nosuch\"")),
        "{answer}"
    );
    let (status, answer) = master.api_post("/api/v1/builds", &json!([])).await?;
    assert_eq!(status, 400, "{answer}");

    // Nothing was queued, nothing launched.
    assert!(all_builds(&master).await?.is_empty());
    assert!(master.workers().await?.is_empty());
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_retried_with_its_key_returns_the_same_builds() -> anyhow::Result<()> {
    let master = Master::start(CONFIG).await?;
    let admin = master.admin_token();
    let body = json!([
        { "builder": "quick", "params": { "N": "1" } },
        { "builder": "pair" },
    ]);
    let key = "batch-6f1c3a52-0b7e-4d0e";
    let post = |body: Value| {
        let (admin, master) = (admin.clone(), &master);
        async move {
            master
                .api_request(
                    Method::POST,
                    "/api/v1/builds",
                    Some(&admin),
                    &[("Idempotency-Key", key)],
                    Some(&body),
                )
                .await
        }
    };
    let first = post(body.clone()).await?;
    assert_eq!(first.0, 201, "{first:?}");
    assert_eq!(
        first.1["builds"].as_array().map(Vec::len),
        Some(3),
        "{first:?}"
    );
    let again = post(body.clone()).await?;
    assert_eq!(again, first, "the same answer");
    assert_eq!(all_builds(&master).await?.len(), 3);

    // The key covers the whole batch: another batch under it is refused.
    let other = json!([{ "builder": "quick", "params": { "N": "1" } }]);
    let (status, answer) = post(other).await?;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(all_builds(&master).await?.len(), 3);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn submit_from_stdin_and_from_a_file() -> anyhow::Result<()> {
    let master = Master::start(CONFIG).await?;

    // JSON lines on stdin, blank lines skipped.
    let lines = "{\"builder\": \"quick\", \"params\": {\"N\": \"7\"}}\n\n{\"builder\": \"pair\"}\n";
    let out = master
        .cli_with_stdin(&["submit", "--from", "-", "--follow"], lines.as_bytes())
        .await?;
    assert!(out.success(), "{out:?}");
    assert!(
        out.stdout.starts_with("submitted 2 submits: builds "),
        "{out:?}"
    );
    assert!(out.stdout.contains("n=7\n"), "{out:?}");
    assert_eq!(out.stdout.matches("== s succeeded").count(), 2, "{out:?}");
    assert_eq!(all_builds(&master).await?.len(), 3);

    // A JSON array in a file.
    let file = master.dir().join("batch.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&batch(3))?)?;
    let file_arg = file.to_str().context("non-UTF-8 path")?;
    let out = master.cli(&["submit", "--from", file_arg]).await?;
    assert!(out.success(), "{out:?}");
    assert!(
        out.stdout.starts_with("submitted 3 submits: builds "),
        "{out:?}"
    );
    assert_eq!(all_builds(&master).await?.len(), 6);

    // A bad line is named with its number, and nothing is sent.
    let bad = "{\"builder\": \"quick\"}\n{\"builder\": \"quick\", \"params\": 5}\n";
    let out = master
        .cli_with_stdin(&["submit", "--from", "-"], bad.as_bytes())
        .await?;
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(
        out.stderr.contains("stdin, line 2: not a submit"),
        "{out:?}"
    );
    // A refused element is named by its index; nothing is queued.
    let refused =
        "{\"builder\": \"quick\"}\n{\"builder\": \"quick\", \"params\": {\"N\": \"x\"}}\n";
    let out = master
        .cli_with_stdin(&["submit", "--from", "-"], refused.as_bytes())
        .await?;
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(out.stderr.contains("element 1: "), "{out:?}");
    let missing = master.dir().join("missing.jsonl");
    let missing_arg = missing.to_str().context("non-UTF-8 path")?;
    let out = master.cli(&["submit", "--from", missing_arg]).await?;
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(
        out.stderr.contains("failed to read submits from") && out.stderr.contains("missing.jsonl"),
        "{out:?}"
    );
    assert_eq!(all_builds(&master).await?.len(), 6);
    Ok(())
}
