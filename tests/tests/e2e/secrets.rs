//! `[secrets]`: a step that asks for a secret gets its value; nothing else
//! does — not the API, not the database, not the master's log, and not any
//! log reader, even when the step prints the value split across two output
//! chunks while a follower reads.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use burst_e2e::MasterBuilder;
use burst_master::model::BuildState;
use tokio::io::AsyncReadExt;

const BOUND: Duration = Duration::from_secs(60);

/// Builder `secret`: step `leak` prints the secret in every way it can, the
/// first half in one write before it waits for `go`, the second half after;
/// step `other` does not ask for the secret.
fn config(key_file: &Path, go: &Path) -> String {
    format!(
        r#"
[pools.local]
provider = "local"
labels = ["linux"]

[secrets]
DEPLOY_KEY = {{ file = "{key}" }}
NPM_TOKEN = {{ env = "BURST_E2E_NPM_TOKEN" }}

[[builders]]
name = "secret"
labels = ["linux"]

[[builders.steps]]
name = "leak"
secrets = ["DEPLOY_KEY", "NPM_TOKEN"]
run = '''
printf 'preamble-{pad}\nhalf:%s' "${{DEPLOY_KEY%????????????????}}"
i=0; while [ ! -e {go} ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done
printf '%s\n' "${{DEPLOY_KEY#????????????????}}"
echo "whole:$DEPLOY_KEY npm:$NPM_TOKEN"
echo "to-stderr:$DEPLOY_KEY" >&2
echo "hex:$(printf %s "$DEPLOY_KEY" | od -An -tx1 | tr -d ' \n')"
echo "npmhex:$(printf %s "$NPM_TOKEN" | od -An -tx1 | tr -d ' \n')"
'''

[[builders.steps]]
name = "other"
run = 'echo "other:${{DEPLOY_KEY:-unset}}:${{NPM_TOKEN:-unset}}"'
"#,
        key = key_file.display(),
        go = go.display(),
        // Longer than what the masker holds back, so the follower sees it
        // while the first half of the secret is still in flight.
        pad = "x".repeat(64),
    )
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

/// Every file under `dir`, recursively, with its bytes.
fn files(dir: &Path) -> anyhow::Result<Vec<(std::path::PathBuf, Vec<u8>)>> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).with_context(|| format!("read {}", d.display()))? {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_dir() {
                todo.push(entry.path());
            } else if kind.is_file() {
                let bytes = std::fs::read(entry.path())
                    .with_context(|| format!("read {}", entry.path().display()))?;
                out.push((entry.path(), bytes));
            }
        }
    }
    Ok(out)
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_reach_the_step_and_no_reader() -> anyhow::Result<()> {
    let scratch = tempfile::tempdir()?;
    let seed = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos() * 2_654_435_761
        + u128::from(std::process::id());
    // 32 bytes, unique to this run; the step splits it 16 + 16.
    let key = format!("dkey-{:027}", seed % 10u128.pow(27));
    let npm = format!("npm-{:028}", (seed / 7) % 10u128.pow(28));
    assert_eq!((key.len(), npm.len()), (32, 32));
    let (first, second) = key.split_at(16);
    let forbidden = [key.as_str(), npm.as_str(), first, second];

    let key_file = scratch.path().join("deploy.key");
    // The trailing newline is not part of the value.
    std::fs::write(&key_file, format!("{key}\n"))?;
    let go = scratch.path().join("go");
    let master = MasterBuilder::config(&config(&key_file, &go))
        .env("BURST_E2E_NPM_TOKEN", &npm)
        .rust_log("debug")
        .start()
        .await?;
    let id = master.submit("secret", &[]).await?[0];

    // Follow the log while the step runs: the first chunk (preamble and the
    // first half) arrives before the step goes on.
    let mut follow = master.follow_log(id).await?;
    let mut followed = Vec::new();
    tokio::time::timeout(BOUND, async {
        while !contains(&followed, "preamble-") {
            match follow.chunk().await? {
                Some(chunk) => followed.extend_from_slice(&chunk),
                None => anyhow::bail!("the follow stream ended early"),
            }
        }
        Ok(())
    })
    .await
    .with_context(|| {
        format!(
            "no preamble in the followed log: {:?}\n{}",
            String::from_utf8_lossy(&followed),
            master.log_tail()
        )
    })??;
    // The step is held until `go` exists, so the build must show running
    // (its start may be saved a moment after the first output arrives).
    burst_e2e::wait::until("the build to show running", BOUND, || async {
        let build = master.build(id).await?;
        anyhow::ensure!(
            matches!(build.state, BuildState::Queued | BuildState::Running),
            "the build moved on while its step was held: {build:#?}"
        );
        Ok((build.state == BuildState::Running).then_some(()))
    })
    .await?;
    let mut cli_follow = master
        .cli_command(&["logs", &id.to_string(), "--follow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut cli_stdout = cli_follow.stdout.take().context("no stdout")?;

    // The second half, in a later chunk.
    std::fs::write(&go, "")?;
    tokio::time::timeout(BOUND, async {
        while let Some(chunk) = follow.chunk().await? {
            followed.extend_from_slice(&chunk);
        }
        anyhow::Ok(())
    })
    .await
    .context("the follow stream did not end with the build")??;
    let mut cli_out = Vec::new();
    tokio::time::timeout(BOUND, cli_stdout.read_to_end(&mut cli_out))
        .await
        .context("the CLI follower did not end with the build")??;
    let build = master.wait_build(id, BOUND).await?;
    assert_eq!(build.state, BuildState::Succeeded, "{build:#?}");

    let stored = master.log_bytes(id).await?;
    for (what, log) in [
        ("followed log", &followed),
        ("stored log", &stored),
        ("CLI follow", &cli_out),
    ] {
        let text = String::from_utf8_lossy(log);
        for leak in forbidden {
            assert!(!text.contains(leak), "{what} shows {leak:?}:\n{text}");
        }
        // The value split across chunks, whole, on stderr: all masked.
        for masked in ["half:***\n", "whole:*** npm:***\n", "to-stderr:***\n"] {
            assert!(text.contains(masked), "{what} lacks {masked:?}:\n{text}");
        }
        // The step really got both values (derived forms are not masked).
        assert!(
            text.contains(&format!("hex:{}\n", hex(&key))),
            "{what}:\n{text}"
        );
        assert!(
            text.contains(&format!("npmhex:{}\n", hex(&npm))),
            "{what}:\n{text}"
        );
        // Only the step that asked.
        assert!(text.contains("other:unset:unset\n"), "{what}:\n{text}");
    }

    // The API lists the names, never a value.
    let json = master.build_json(id).await?;
    assert_eq!(
        json["steps"][0]["secrets"],
        serde_json::json!(["DEPLOY_KEY", "NPM_TOKEN"]),
        "{json:#}"
    );
    let list = master
        .api_get::<serde_json::Value>("/api/v1/builds")
        .await?;
    for (what, text) in [("build", json.to_string()), ("list", list.to_string())] {
        for leak in forbidden {
            assert!(
                !text.contains(leak),
                "the API's {what} shows {leak:?}: {text}"
            );
        }
    }
    // Nor do the web UI's pages: the build, the list and the step's log.
    let http = reqwest::Client::new();
    for path in [
        format!("/builds/{id}"),
        "/builds".to_owned(),
        format!("/builds/{id}/attempts/1/steps/1/log"),
    ] {
        let page = http
            .get(format!("{}{path}", master.url()))
            .bearer_auth(master.admin_token())
            .send()
            .await?;
        assert_eq!(page.status(), 200, "GET {path}");
        let text = page.text().await?;
        for leak in forbidden {
            assert!(
                !text.contains(leak),
                "the page {path} shows {leak:?}: {text}"
            );
        }
        if path.ends_with("/log") {
            assert!(text.contains("half:***"), "the log page: {text}");
        }
    }

    // No file the master wrote holds a value: database, WAL, step logs
    // (compressed once the build is saved: read decompressed), run.json,
    // worker directories, the master's own (debug) log.
    master
        .wait_logs_compressed(id, Duration::from_secs(60))
        .await?;
    let mut written = Vec::new();
    for (path, bytes) in files(master.dir())? {
        let plain = if path.extension().is_some_and(|e| e == "zst") {
            burst_master::logs::read_compressed(&path)
                .with_context(|| format!("failed to decompress {}", path.display()))?
        } else {
            bytes
        };
        written.push((path, plain));
    }
    let names: Vec<String> = written
        .iter()
        .filter_map(|(p, _)| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    for expected in ["burst.db", "master.log"] {
        assert!(
            names.iter().any(|n| n == expected),
            "no {expected}: {names:?}"
        );
    }
    let step_log = written
        .iter()
        .find(|(p, _)| p.ends_with(format!("logs/{id}/1.0.log.zst")))
        .with_context(|| format!("no step log file among {names:?}"))?;
    assert!(contains(&step_log.1, "half:***\n"));
    for (path, bytes) in &written {
        for leak in forbidden {
            assert!(!contains(bytes, leak), "{} holds {leak:?}", path.display());
        }
    }
    let log = master.log();
    assert!(log.contains("build finished"), "{log}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_secret_refused_at_start_names_file_line_and_key() -> anyhow::Result<()> {
    let scratch = tempfile::tempdir()?;
    let short = scratch.path().join("short.key");
    std::fs::write(&short, "@!%\n")?;
    let config = config(&short, &scratch.path().join("go"));
    let path = scratch.path().join("burst.toml");
    std::fs::write(&path, &config)?;
    let file = path.display().to_string();
    let line = config
        .lines()
        .position(|l| l.starts_with("DEPLOY_KEY"))
        .context("no DEPLOY_KEY line")?
        + 1;
    let want = format!(
        "{file}:{line}: secrets.DEPLOY_KEY.file: the value is 3 bytes; a secret needs at least 8"
    );
    let bins = burst_e2e::Bins::locate()?;
    for (args, code) in [
        (vec!["config", "check", file.as_str()], 1),
        (vec!["master", "--config", file.as_str()], 2),
    ] {
        let mut c = tokio::process::Command::new(&bins.burst);
        c.args(&args)
            .current_dir(scratch.path())
            .env("BURST_E2E_NPM_TOKEN", "npm-token-long-enough")
            .env("BURST__MASTER__STATE_DIR", scratch.path().join("state"))
            .env("BURST__MASTER__HTTP_LISTEN", "127.0.0.1:0")
            .env("BURST__MASTER__GRPC_LISTEN", "127.0.0.1:0");
        let out = burst_e2e::cmd::run(c, BOUND).await?;
        assert_eq!(out.code, Some(code), "{args:?}: {out:?}");
        assert!(
            out.stderr.contains(&want),
            "{args:?}: want {want:?}: {out:?}"
        );
        assert!(
            !out.stderr.contains("@!%"),
            "{args:?} shows the value: {out:?}"
        );
    }
    // The master's environment variable, unset: refused too.
    let mut c = tokio::process::Command::new(&bins.burst);
    c.args(["config", "check", file.as_str()])
        .current_dir(scratch.path())
        .env_remove("BURST_E2E_NPM_TOKEN");
    let out = burst_e2e::cmd::run(c, BOUND).await?;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr
            .contains("secrets.NPM_TOKEN.env: environment variable BURST_E2E_NPM_TOKEN is not set"),
        "{out:?}"
    );
    Ok(())
}
