//! `[retention]` and the janitor: finished builds past the horizon go with
//! their logs and artifacts, queued and running ones stay, each builder keeps its newest,
//! `burst gc --dry-run` deletes nothing; a finished build's logs are
//! compressed and read back byte for byte (whole, followed, paged).

use std::time::Duration;

use anyhow::Context;
use burst_e2e::{wait, Master, MasterBuilder};
use burst_master::model::BuildState;
use reqwest::Method;

const WAIT: Duration = Duration::from_secs(60);

fn config(go: &std::path::Path, retention: &str) -> String {
    format!(
        r#"
[retention]
{retention}

[pools.fast]
provider = "local"
labels = ["linux"]
max_workers = 2

[pools.slow]
provider = "local"
labels = ["slow"]
max_workers = 1

[[builders]]
name = "quick"
labels = ["linux"]

[[builders.steps]]
name = "hello"
run = "echo quick build $BURST_BUILD_ID | tee out.txt"
artifacts = ["out.txt"]

[[builders]]
name = "gate"
labels = ["slow"]

[[builders.steps]]
name = "wait-for-go"
run = 'i=0; while [ ! -e {go} ] && [ $i -lt 1200 ]; do sleep 0.1; i=$((i+1)); done; echo gate done'
"#,
        go = go.display()
    )
}

async fn quick(master: &Master) -> anyhow::Result<i64> {
    let id = master.submit("quick", &[]).await?[0];
    let build = master.wait_build(id, WAIT).await?;
    assert_eq!(build.state, BuildState::Succeeded, "{build:#?}");
    master.wait_logs_compressed(id, WAIT).await?;
    Ok(id)
}

async fn status_of(master: &Master, id: i64) -> anyhow::Result<u16> {
    let path = format!("/api/v1/builds/{id}");
    let token = master.admin_token();
    Ok(master
        .api_request(Method::GET, &path, Some(&token), &[], None)
        .await?
        .0)
}

#[tokio::test(flavor = "multi_thread")]
async fn gc_deletes_old_builds_and_logs_keeps_the_newest_and_never_queued_or_running(
) -> anyhow::Result<()> {
    let scratch = tempfile::tempdir()?;
    let go = scratch.path().join("go");
    // The background pass runs at start (nothing to delete), then not for
    // an hour: this test drives `burst gc`.
    let master = MasterBuilder::config(&config(
        &go,
        "max_age = \"1s\"\nkeep_last = 2\ninterval = \"1h\"",
    ))
    .start()
    .await?;
    let mut quick_ids = Vec::new();
    for _ in 0..4 {
        quick_ids.push(quick(&master).await?);
    }
    let running = master.submit("gate", &[]).await?[0];
    master.wait_step_running(running, 0, WAIT).await?;
    let queued = master.submit("gate", &[]).await?[0];
    assert_eq!(master.build(queued).await?.state, BuildState::Queued);
    // Past the one-second horizon (the rule, not a race: finished_at is set).
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let logs = |id: i64| master.state_dir().join("logs").join(id.to_string());
    let artifacts = |id: i64| master.state_dir().join("artifacts").join(id.to_string());
    let dry = master.cli(&["gc", "--dry-run"]).await?;
    assert!(dry.success(), "{dry:?}");
    for id in &quick_ids[..2] {
        assert!(
            dry.stdout
                .contains(&format!("build {id}\tquick\tsucceeded\tfinished ")),
            "{dry:?}"
        );
    }
    for id in quick_ids[2..].iter().chain([&running, &queued]) {
        assert!(!dry.stdout.contains(&format!("build {id}\t")), "{dry:?}");
    }
    assert!(dry.stdout.contains("would delete 2 builds"), "{dry:?}");
    // A dry run deletes nothing.
    for id in &quick_ids {
        assert_eq!(status_of(&master, *id).await?, 200, "build {id}");
        assert!(logs(*id).exists(), "logs of {id}");
        assert!(artifacts(*id).exists(), "artifacts of {id}");
    }

    let out = master.cli(&["gc"]).await?;
    assert!(out.success(), "{out:?}");
    assert!(out.stdout.contains("deleted 2 builds"), "{out:?}");
    for id in &quick_ids[..2] {
        assert_eq!(status_of(&master, *id).await?, 404, "build {id}");
        assert!(!logs(*id).exists(), "logs of {id}");
        assert!(!artifacts(*id).exists(), "artifacts of {id}");
    }
    // Each builder's newest two stay, logs and all.
    for id in &quick_ids[2..] {
        let log = master.log_text(*id).await?;
        assert!(log.contains(&format!("quick build {id}\n")), "{log}");
        let kept: Vec<burst_master::model::ArtifactInfo> = master
            .api_get(&format!("/api/v1/builds/{id}/artifacts"))
            .await?;
        assert_eq!(kept.len(), 1, "{kept:#?}");
    }
    // Queued and running builds are never touched.
    assert_eq!(master.build(running).await?.state, BuildState::Running);
    assert_eq!(master.build(queued).await?.state, BuildState::Queued);
    let again = master.cli(&["gc", "--json"]).await?;
    let report: serde_json::Value = serde_json::from_str(&again.stdout)?;
    assert_eq!(
        report["builds"].as_array().map(Vec::len),
        Some(0),
        "{report}"
    );

    std::fs::write(&go, "")?;
    for id in [running, queued] {
        let build = master.wait_build(id, WAIT).await?;
        assert_eq!(build.state, BuildState::Succeeded, "{build:#?}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_background_janitor_keeps_the_last_builds_of_each_builder() -> anyhow::Result<()> {
    let scratch = tempfile::tempdir()?;
    let go = scratch.path().join("go");
    let master = MasterBuilder::config(&config(&go, "keep_last = 1\ninterval = \"1s\""))
        .start()
        .await?;
    let first = quick(&master).await?;
    let second = quick(&master).await?;
    wait::until("the janitor to delete the older build", WAIT, || async {
        Ok((status_of(&master, first).await? == 404).then_some(()))
    })
    .await?;
    assert!(!master
        .state_dir()
        .join("logs")
        .join(first.to_string())
        .exists());
    assert_eq!(status_of(&master, second).await?, 200);
    let log = master.log();
    assert!(
        log.contains("retention: deleted finished builds and their logs"),
        "{log}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn compressed_logs_read_back_byte_for_byte() -> anyhow::Result<()> {
    // ~2 MB: several of the compressed file's frames.
    let master = MasterBuilder::config(
        r#"
[pools.local]
provider = "local"
labels = ["linux"]

[[builders]]
name = "print"
labels = ["linux"]

[[builders.steps]]
name = "seq"
run = "seq 1 300000; printf 'the end, without a newline'"
"#,
    )
    .start()
    .await?;
    let id = master.submit("print", &[]).await?[0];
    let build = master.wait_build(id, WAIT).await?;
    assert_eq!(build.state, BuildState::Succeeded, "{build:#?}");
    let files = master.wait_logs_compressed(id, WAIT).await?;
    let mut expected: String = (1..=300000).map(|n| format!("{n}\n")).collect();
    expected.push_str("the end, without a newline");
    assert_eq!(build.attempts[0].steps[0].log_bytes, expected.len() as u64);
    let packed = std::fs::metadata(&files[0])?.len();
    // burst writes zstd's fast level (ruzstd's "Fastest"): at most about
    // what the reference `zstd -1` makes of the same bytes (its 256 KiB
    // frames cost a little), and well under half the log.
    let reference = zstd_1_size(expected.as_bytes()).await?;
    assert!(
        packed * 2 < expected.len() as u64 && packed * 100 <= reference * 115,
        "{packed} bytes compressed for {}; zstd -1 makes {reference}",
        expected.len()
    );
    // The file is plain zstd to other tools: the reference decoder reads it
    // (Debian `zstd`, scripts/setup/10-apt.sh).
    let raw = tokio::process::Command::new("zstd")
        .arg("-dc")
        .arg(&files[0])
        .output()
        .await
        .context("failed to run zstd (scripts/setup/10-apt.sh installs it)")?;
    assert!(
        raw.status.success(),
        "{}",
        String::from_utf8_lossy(&raw.stderr)
    );
    assert!(
        raw.stdout == expected.as_bytes(),
        "zstd -d gives the log back"
    );

    // Whole, through the API and the CLI.
    let log = master.log_text(id).await?;
    assert!(
        log.contains(&format!("\n{expected}\n== seq succeeded")),
        "{}",
        &log[log.len().saturating_sub(300)..]
    );
    let out = master.cli(&["logs", &id.to_string()]).await?;
    assert!(out.success(), "{out:?}");
    assert_eq!(out.stdout, log);
    // Followed after the build finished: the same bytes, then the end.
    let followed = master.follow_log(id).await?.bytes().await?;
    assert_eq!(String::from_utf8_lossy(&followed), log);

    // The UI's log page reads the tail and pages back by offset.
    let token = master.admin_token();
    let path = format!("/builds/{id}/attempts/1/steps/1/log");
    let (status, page) = master
        .api_request(Method::GET, &path, Some(&token), &[], None)
        .await?;
    assert_eq!(status, 200);
    let tail = page.as_str().context("an HTML page")?;
    assert!(
        tail.contains(">the end, without a newline</span>"),
        "no last line"
    );
    assert!(tail.contains(">300000</span>"), "no last number");
    assert!(
        tail.contains(&format!("data-size=\"{}\"", expected.len())),
        "size"
    );
    let first = first_number(tail)?;
    let older = older_link(tail)?;
    let (status, page) = master
        .api_request(Method::GET, &older, Some(&token), &[], None)
        .await?;
    assert_eq!(status, 200);
    let page = page.as_str().context("an HTML page")?;
    assert!(
        page.contains(&format!(">{}</span>", first - 1)),
        "older page"
    );
    assert!(!page.contains(&format!(">{first}</span>")));
    // Every line's anchor is its byte offset in the log.
    let at = expected
        .find(&format!("\n{}\n", first - 1))
        .context("line in the log")?
        + 1;
    assert!(page.contains(&format!("id=\"L{at}\"")), "offset {at}");
    Ok(())
}

/// The first number line of a log page.
fn first_number(html: &str) -> anyhow::Result<u64> {
    let at = html.find("class=\"ln\"").context("no line")?;
    let rest = &html[at..];
    let text = &rest[rest.find("</a>").context("link")? + 4..];
    Ok(text[..text.find('<').context("end")?].parse()?)
}

fn older_link(html: &str) -> anyhow::Result<String> {
    let at = html.find("id=\"older\" href=\"").context("no older link")?;
    let rest = &html[at + "id=\"older\" href=\"".len()..];
    Ok(rest[..rest.find('"').context("end")?].replace("&amp;", "&"))
}

/// The size of `zstd -1` of `bytes` (Debian `zstd`, scripts/setup/10-apt.sh).
async fn zstd_1_size(bytes: &[u8]) -> anyhow::Result<u64> {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new("zstd")
        .args(["-1", "-c", "-q"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("failed to run zstd (scripts/setup/10-apt.sh installs it)")?;
    let mut stdin = child.stdin.take().context("zstd's stdin")?;
    let input = bytes.to_vec();
    let writer = tokio::spawn(async move { stdin.write_all(&input).await });
    let out = child.wait_with_output().await?;
    writer.await??;
    anyhow::ensure!(out.status.success(), "zstd -1 failed: {:?}", out.status);
    Ok(out.stdout.len() as u64)
}
