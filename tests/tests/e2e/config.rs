//! Bad configs are refused with the file, the line and the key: exit 1 from
//! `burst config check`, exit 2 from `burst master`.

use std::path::Path;
use std::time::Duration;

use burst_e2e::bins::workspace_root;
use burst_e2e::{cmd, Bins};

const BUILDER: &str = r#"
[[builders]]
name = "b"
labels = ["linux"]

[[builders.steps]]
name = "s"
run = "true"
"#;

/// (file name, text, line, key, words of the message).
fn bad_configs() -> Vec<(&'static str, String, usize, &'static str, &'static str)> {
    let pool = |extra: &str| {
        format!("[pools.local]\nprovider = \"local\"\nlabels = [\"linux\"]\n{extra}{BUILDER}")
    };
    vec![
        (
            "unknown-key.toml",
            format!("[master]\nbuild_retries = 1\nbogus_key = 1\n\n{}", pool("")),
            3,
            "master.bogus_key",
            "unknown field",
        ),
        (
            "zero-max.toml",
            pool("max_workers = 0\n"),
            4,
            "pools.local.max_workers",
            "at least 1",
        ),
        (
            "idle-over-max.toml",
            pool("max_workers = 2\nmin_idle = 3\n"),
            5,
            "pools.local.min_idle",
            "must not exceed max_workers",
        ),
        (
            "artifact-glob-escapes.toml",
            format!("{}artifacts = [\"ok/*\", \"../x\"]\n", pool("")),
            12,
            "builders[0].steps[0].artifacts[1]",
            "must not contain '..'",
        ),
        (
            "wrong-type.toml",
            pool("max_workers = \"four\"\n"),
            4,
            "pools.local.max_workers",
            "invalid type",
        ),
    ]
}

async fn burst(bins: &Bins, dir: &Path, args: &[&str]) -> anyhow::Result<cmd::Output> {
    let mut c = tokio::process::Command::new(&bins.burst);
    c.args(args)
        .current_dir(dir)
        .env("BURST__MASTER__STATE_DIR", dir.join("state"))
        .env("BURST__MASTER__HTTP_LISTEN", "127.0.0.1:0")
        .env("BURST__MASTER__GRPC_LISTEN", "127.0.0.1:0")
        .env("NO_COLOR", "1");
    cmd::run(c, Duration::from_secs(30)).await
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_configs_name_file_line_and_key() -> anyhow::Result<()> {
    let bins = Bins::locate()?;
    let dir = tempfile::tempdir()?;
    for (name, text, line, key, words) in bad_configs() {
        let path = dir.path().join(name);
        std::fs::write(&path, &text)?;
        let file = path.display().to_string();
        let want = format!("{file}:{line}: {key}: ");

        let out = burst(&bins, dir.path(), &["config", "check", &file]).await?;
        assert_eq!(out.code, Some(1), "{name}: {out:?}");
        assert!(out.stderr.contains(&want), "{name}: want {want:?}: {out:?}");
        assert!(
            out.stderr.contains(words),
            "{name}: want {words:?}: {out:?}"
        );

        let out = burst(&bins, dir.path(), &["master", "--config", &file]).await?;
        assert_eq!(out.code, Some(2), "{name}: {out:?}");
        assert!(out.stderr.contains(&want), "{name}: want {want:?}: {out:?}");
        assert!(
            out.stderr.contains(words),
            "{name}: want {words:?}: {out:?}"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn good_configs_check_ok() -> anyhow::Result<()> {
    let bins = Bins::locate()?;
    let dir = tempfile::tempdir()?;
    let example = workspace_root().join("examples/quickstart.toml");
    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        format!("[pools.local]\nprovider = \"local\"\nlabels = [\"linux\"]\n{BUILDER}"),
    )?;
    for path in [example, good] {
        let file = path.display().to_string();
        let out = burst(&bins, dir.path(), &["config", "check", &file]).await?;
        assert!(out.success(), "{file}: {out:?}");
        assert!(out.stdout.contains(&format!("{file}: ok")), "{out:?}");
    }
    Ok(())
}
