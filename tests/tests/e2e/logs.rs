//! `burst logs`: the whole log of a finished build, and a live follow that
//! ends with the build.

use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use burst_e2e::Master;
use burst_master::model::BuildState;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

#[tokio::test(flavor = "multi_thread")]
async fn logs_of_finished_build_are_complete() -> anyhow::Result<()> {
    let config = r#"
[pools.local]
provider = "local"
labels = ["linux"]

[[builders]]
name = "chatty"
labels = ["linux"]

[[builders.steps]]
name = "count"
# ~110 KB: more than one chunk of the log stream.
run = "seq 1 20000"

[[builders.steps]]
name = "tail"
run = "echo second-step; echo to-stderr >&2"
"#;
    let master = Master::start(config).await?;
    let id = master.submit("chatty", &[]).await?[0];
    let build = master.wait_build(id, Duration::from_secs(60)).await?;
    assert_eq!(build.state, BuildState::Succeeded, "{build:#?}");

    let out = master.cli(&["logs", &id.to_string()]).await?;
    assert!(out.success(), "{out:?}");
    let log = &out.stdout;
    let lines: Vec<&str> = log.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.starts_with("== step 1/2: count"))
        .context("no header of step 1")?;
    let numbers: Vec<String> = (1..=20000).map(|n| n.to_string()).collect();
    assert_eq!(
        lines[start + 1..start + 1 + 20000],
        numbers[..],
        "step 1 output"
    );
    assert!(
        lines[start + 20001].starts_with("== count succeeded"),
        "{}",
        lines[start + 20001]
    );
    assert!(log.contains("== step 2/2: tail"), "{log}");
    assert!(log.contains("second-step\n"));
    assert!(log.contains("to-stderr\n"));
    assert!(
        log.ends_with(&format!("== build {id} succeeded\n")),
        "{}",
        &log[log.len().saturating_sub(300)..]
    );
    // The CLI prints exactly what the API serves.
    assert_eq!(*log, master.log_text(id).await?);
    // The persisted step logs hold every byte.
    let count = &build.attempts[0].steps[0];
    let seq_bytes: usize = numbers.iter().map(|n| n.len() + 1).sum();
    assert_eq!(count.log_bytes, seq_bytes as u64, "{count:#?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_follow_streams_until_the_build_ends() -> anyhow::Result<()> {
    let scratch = tempfile::tempdir()?;
    let go = scratch.path().join("go");
    let config = format!(
        r#"
[pools.local]
provider = "local"
labels = ["linux"]

[[builders]]
name = "gate"
labels = ["linux"]

[[builders.steps]]
name = "wait-for-go"
run = 'echo started; i=0; while [ ! -e {go} ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; echo finished'
"#,
        go = go.display()
    );
    let master = Master::start(&config).await?;
    let id = master.submit("gate", &[]).await?[0];
    let mut child = master
        .cli_command(&["logs", &id.to_string(), "--follow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut stdout = BufReader::new(child.stdout.take().context("no stdout")?);

    // The first line arrives while the build still runs.
    let mut seen = String::new();
    tokio::time::timeout(Duration::from_secs(30), async {
        while !seen.contains("started\n") {
            if stdout.read_line(&mut seen).await? == 0 {
                anyhow::bail!("the follower ended early: {seen}");
            }
        }
        Ok(())
    })
    .await
    .with_context(|| format!("no `started` line from the follower; got {seen:?}"))??;
    assert!(
        child.try_wait()?.is_none(),
        "the follower exited early: {seen}"
    );
    let build = master.build(id).await?;
    assert_eq!(build.state, BuildState::Running, "{build:#?}");
    assert!(!seen.contains("finished"), "{seen}");

    std::fs::write(&go, "")?;
    let mut rest = String::new();
    tokio::time::timeout(Duration::from_secs(30), stdout.read_to_string(&mut rest))
        .await
        .context("the follower did not end with the build")??;
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .context("the follower did not exit")??;
    assert!(status.success(), "{status}");
    assert!(rest.contains("finished\n"), "{rest}");
    assert!(
        rest.ends_with(&format!("== build {id} succeeded\n")),
        "{rest}"
    );
    // Nothing was printed twice.
    let all = format!("{seen}{rest}");
    assert_eq!(all.matches("started\n").count(), 1, "{all}");
    assert_eq!(all, master.log_text(id).await?);
    Ok(())
}

/// Output that ends without a newline is not glued to the step's footer, in
/// the log API and in `burst submit --follow`.
#[tokio::test(flavor = "multi_thread")]
async fn a_footer_starts_its_own_line_after_an_unterminated_one() -> anyhow::Result<()> {
    let config = r#"
[pools.local]
provider = "local"
labels = ["linux"]

[[builders]]
name = "open"
labels = ["linux"]

[[builders.steps]]
name = "no-newline"
run = "printf 'no newline'"
"#;
    let master = Master::start(config).await?;
    let out = master.cli(&["submit", "open", "--follow"]).await?;
    assert!(out.success(), "{out:?}");
    // Followed lines carry a `[BUILD] ` prefix.
    let lines: Vec<&str> = out.stdout.lines().collect();
    let at = lines.iter().position(|l| l.ends_with("] no newline"));
    let next = at.and_then(|i| lines.get(i + 1));
    assert!(
        next.is_some_and(|l| l.contains("] == no-newline succeeded")),
        "{}",
        out.stdout
    );
    let builds: Vec<burst_master::model::Build> = master.api_get("/api/v1/builds").await?;
    let id = builds.first().context("no build")?.id;
    let log = master.log_text(id).await?;
    assert!(log.contains("no newline\n== no-newline succeeded"), "{log}");
    assert!(!log.contains("no newline=="), "{log}");
    Ok(())
}
