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

/// `submit --follow` off a terminal: while the build waits for a pool at
/// its cap, plain lines say why and where it stands; once it starts, how
/// long it waited; then its log.
#[tokio::test(flavor = "multi_thread")]
async fn submit_follow_says_why_a_build_waits_then_prints_its_log() -> anyhow::Result<()> {
    use std::time::Duration;

    use burst_e2e::wait;

    let dir = tempfile::tempdir()?;
    let release = dir.path().join("release");
    let config = format!(
        r#"
[pools.one]
provider = "local"
labels = ["linux"]
max_workers = 1

[[builders]]
name = "hold"
labels = ["linux"]

[[builders.steps]]
name = "hold"
run = 'while [ ! -e "{release}" ]; do sleep 0.1; done'
timeout = "3m"

[[builders]]
name = "quick"
labels = ["linux"]

[[builders.steps]]
name = "say"
run = "echo quick-ran"
"#,
        release = release.display()
    );
    let master = Master::start(&config).await?;
    let out = master.cli(&["submit", "hold"]).await?;
    assert!(out.success(), "{out:?}");
    wait::until("build 1 to run", Duration::from_secs(120), || async {
        let b: serde_json::Value = master.api_get("/api/v1/builds/1").await?;
        Ok((b["state"] == "running").then_some(()))
    })
    .await?;

    // The follower writes to a file (not a terminal), read while it runs.
    let printed = dir.path().join("follow.out");
    let mut follow = master.cli_command(&["submit", "quick", "--follow"]);
    follow
        .stdout(std::fs::File::create(&printed)?)
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let child = follow.spawn()?;
    let text = || std::fs::read_to_string(&printed).unwrap_or_default();
    wait::until_true("a wait line", Duration::from_secs(120), || {
        text().contains("is at max_workers (1)")
    })
    .await?;
    std::fs::write(&release, "")?;
    let done = tokio::time::timeout(Duration::from_secs(180), child.wait_with_output()).await??;
    assert!(done.status.success(), "{done:?}\n{}", text());
    let out = text();
    let waiting = out
        .find("[2] queued ")
        .unwrap_or_else(|| panic!("no wait line in\n{out}"));
    assert!(
        out.contains("position 1 of 1 for pool one; waiting for a free worker: pool one is at max_workers (1)\n"),
        "{out}"
    );
    let started = out
        .find("[2] started after ")
        .unwrap_or_else(|| panic!("no start line in\n{out}"));
    let log = out
        .find("[2] quick-ran")
        .unwrap_or_else(|| panic!("no log line in\n{out}"));
    assert!(waiting < started && started < log, "{out}");
    assert!(out.contains("build 2: succeeded"), "{out}");
    Ok(())
}
