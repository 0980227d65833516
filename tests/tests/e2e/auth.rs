//! A worker the master did not launch, or with the wrong token, is refused:
//! it exits with code 2 and both sides say why.

use std::time::Duration;

use burst_e2e::{cmd, wait, Master};

/// A pool whose "workers" never dial in, so one stays launching with a real
/// worker id (and a token only the master knows).
const CONFIG: &str = r#"
[pools.local]
provider = "local"
labels = ["linux"]
max_workers = 1
min_idle = 1
start_timeout = "120s"

[pools.local.local]
command = ["sleep", "1000"]

[[builders]]
name = "hello"
labels = ["linux"]

[[builders.steps]]
name = "greet"
run = "echo hi"
"#;

async fn rogue_worker(master: &Master, worker_id: &str) -> anyhow::Result<cmd::Output> {
    let work = tempfile::tempdir()?;
    let mut c = tokio::process::Command::new(&master.bins.worker);
    c.env("BURST_MASTER_URL", master.worker_url())
        .env("BURST_WORKER_ID", worker_id)
        .env("BURST_TOKEN", "not-the-token")
        .env("BURST_WORK_DIR", work.path())
        // Refusal must be immediate; do not let a regression hang here.
        .env("BURST_MAX_DISCONNECTED", "20s")
        .env("NO_COLOR", "1")
        .env_remove("BURST_MASTER_ID");
    cmd::run(c, Duration::from_secs(30)).await
}

#[tokio::test(flavor = "multi_thread")]
async fn workers_with_unknown_id_or_wrong_token_are_refused() -> anyhow::Result<()> {
    let master = Master::start(CONFIG).await?;
    let launching = wait::until("a launching worker", Duration::from_secs(20), || async {
        let workers = master.workers().await?;
        Ok(workers
            .into_iter()
            .find(|w| w.state == "launching" || w.state == "connecting"))
    })
    .await?;

    let out = rogue_worker(&master, "local-doesnotexist").await?;
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(out.stderr.contains("unknown worker id"), "{out:?}");
    wait::until_true(
        "the master to log the unknown id",
        Duration::from_secs(5),
        || {
            master
                .log()
                .contains("unknown worker id \"local-doesnotexist\"")
        },
    )
    .await?;

    let out = rogue_worker(&master, &launching.worker_id).await?;
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(out.stderr.contains("wrong launch token"), "{out:?}");
    wait::until_true(
        "the master to log the wrong token",
        Duration::from_secs(5),
        || {
            master.log().lines().any(|l| {
                l.contains("refused")
                    && l.contains(&launching.worker_id)
                    && l.contains("wrong launch token")
            })
        },
    )
    .await?;
    // The real launch is unaffected.
    let still = master.workers().await?;
    assert!(
        still.iter().any(|w| w.worker_id == launching.worker_id),
        "{still:#?}"
    );
    Ok(())
}
