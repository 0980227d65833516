//! Submits the master cannot take are refused at once with a reason.

use burst_e2e::Master;

const CONFIG: &str = r#"
[pools.local]
provider = "local"
labels = ["linux"]

[[builders]]
name = "alpha"
labels = ["linux"]

[builders.matrix]
os = ["linux"]

[[builders.steps]]
name = "s"
run = "true"

[[builders]]
name = "beta"
labels = ["linux"]

[[builders.steps]]
name = "s"
run = "true"

[[builders]]
name = "broken"
labels = ["linux"]

[[builders.steps]]
name = "fail"
run = "echo about-to-fail; exit 3"

[[builders.steps]]
name = "never"
run = "echo never-runs"
"#;

#[tokio::test(flavor = "multi_thread")]
async fn unknown_builder_and_bad_params_are_refused() -> anyhow::Result<()> {
    let master = Master::start(CONFIG).await?;

    let out = master.cli(&["submit", "nosuchbuilder"]).await?;
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(
        out.stderr.contains("unknown builder \"nosuchbuilder\""),
        "{out:?}"
    );
    assert!(
        out.stderr.contains("known builders: alpha, beta"),
        "{out:?}"
    );

    let out = master
        .cli(&["submit", "alpha", "--param", "os=plan9"])
        .await?;
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(out.stderr.contains("not a value of matrix axis"), "{out:?}");

    let out = master
        .cli(&["submit", "alpha", "--param", "bad-name=1"])
        .await?;
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(out.stderr.contains("invalid parameter name"), "{out:?}");

    // Nothing was queued by the refused submits.
    let builds: Vec<serde_json::Value> = master.api_get("/api/v1/builds").await?;
    assert!(builds.is_empty(), "{builds:#?}");
    assert!(master.workers().await?.is_empty());
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn submit_follow_exits_1_when_a_build_fails() -> anyhow::Result<()> {
    let master = Master::start(CONFIG).await?;
    let out = master.cli(&["submit", "broken", "--follow"]).await?;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stdout.contains("about-to-fail"), "{out:?}");
    assert!(
        out.stdout.contains("== fail failed (exit code 3"),
        "{out:?}"
    );
    assert!(!out.stdout.contains("never-runs"), "{out:?}");
    let out = master.cli(&["submit", "beta", "--follow"]).await?;
    assert_eq!(out.code, Some(0), "{out:?}");
    Ok(())
}
