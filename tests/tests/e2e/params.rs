//! Parameters: only declared ones, only allowed values, never a name that
//! changes how programs run; and a step's environment holds nothing of the
//! master's or the worker's own.

use std::time::Duration;

use burst_e2e::{Master, MasterBuilder};
use burst_master::model::BuildState;
use serde_json::json;

const CONFIG: &str = r#"
[pools.local]
provider = "local"
labels = ["linux"]

[[builders]]
name = "p"
labels = ["linux"]

[builders.params]
GREETING = { default = "hello", description = "what to say" }
MODE = { allowed = ["debug", "release"] }
REF = { regex = "[a-z0-9._/-]+" }

[[builders.steps]]
name = "env"
argv = ["env"]
"#;

/// Submits `params` to builder `p` through the API: (status, error text).
async fn refused(master: &Master, params: &[(&str, &str)]) -> anyhow::Result<(u16, String)> {
    let params: serde_json::Map<String, serde_json::Value> = params
        .iter()
        .map(|(k, v)| ((*k).to_owned(), json!(v)))
        .collect();
    let (status, body) = master
        .api_post(
            "/api/v1/builds",
            &json!({ "builder": "p", "params": params }),
        )
        .await?;
    Ok((
        status,
        body["error"].as_str().unwrap_or_default().to_owned(),
    ))
}

#[tokio::test(flavor = "multi_thread")]
async fn dangerous_undeclared_and_disallowed_params_are_refused() -> anyhow::Result<()> {
    let master = Master::start(CONFIG).await?;

    for (name, value) in [
        ("PATH", "/tmp/evil"),
        ("BASH_ENV", "/tmp/evil.sh"),
        ("LD_PRELOAD", "/tmp/evil.so"),
        ("GIT_CONFIG_COUNT", "1"),
        ("BURST_TOKEN", "forged"),
        ("BURST_MASTER_URL", "http://evil"),
        ("Path", "C:\\evil"),
    ] {
        let (status, error) = refused(&master, &[(name, value)]).await?;
        assert_eq!(status, 400, "{name}: {error}");
        assert!(
            error.starts_with(&format!(
                "parameter \"{name}\" refused: {name} may not be set"
            )),
            "{name}: {error}"
        );
    }

    let (status, error) = refused(&master, &[("OTHER", "1")]).await?;
    assert_eq!(status, 400, "{error}");
    assert_eq!(
        error,
        "parameter \"OTHER\" is not declared by builder \"p\" (declared: GREETING, MODE, REF)"
    );

    let (status, error) = refused(&master, &[("MODE", "fast")]).await?;
    assert_eq!(status, 400, "{error}");
    assert_eq!(
        error,
        "parameter MODE=\"fast\" refused: must be one of: debug, release"
    );
    let (status, error) = refused(&master, &[("REF", "main;reboot")]).await?;
    assert_eq!(status, 400, "{error}");
    assert!(error.contains("must match the regex"), "{error}");

    // The CLI shows the reason and exits 2.
    let out = master
        .cli(&["submit", "p", "--param", "LD_PRELOAD=/tmp/x.so"])
        .await?;
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(out.stderr.contains("\"LD_PRELOAD\" refused"), "{out:?}");
    let out = master.cli(&["submit", "p", "--param", "NOPE=1"]).await?;
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(out.stderr.contains("\"NOPE\" is not declared"), "{out:?}");

    // Nothing was queued by the refused submits.
    let builds: Vec<serde_json::Value> = master.api_get("/api/v1/builds").await?;
    assert!(builds.is_empty(), "{builds:#?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn steps_see_declared_params_and_nothing_of_the_masters_environment() -> anyhow::Result<()> {
    let master = MasterBuilder::config(CONFIG)
        .env("AWS_SECRET_ACCESS_KEY", "marker-only-in-the-master")
        .env("BURST_PARAMS_TEST_MARKER", "marker-only-in-the-master")
        .start()
        .await?;
    let ids = master
        .submit("p", &[("MODE", "release"), ("REF", "v1.2")])
        .await?;
    let build = master.wait_build(ids[0], Duration::from_secs(60)).await?;
    assert_eq!(build.state, BuildState::Succeeded, "{build:#?}");
    // The default is recorded with the build.
    assert_eq!(
        build.params.get("GREETING").map(String::as_str),
        Some("hello")
    );

    let log = master.log_text(ids[0]).await?;
    let names: Vec<&str> = log
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, _)| k)
        .collect();
    for want in ["GREETING=hello", "MODE=release", "REF=v1.2", "PATH="] {
        assert!(log.lines().any(|l| l.starts_with(want)), "{want} in\n{log}");
    }
    assert!(!log.contains("marker-only-in-the-master"), "{log}");
    for name in [
        "AWS_SECRET_ACCESS_KEY",
        "BURST_TOKEN",
        "BURST_MASTER_URL",
        "BURST_WORK_DIR",
    ] {
        assert!(!names.contains(&name), "{name} leaked:\n{log}");
    }
    assert!(names.contains(&"BURST_BUILD_ID"), "{log}");
    Ok(())
}
