//! Builders' caches on fresh workers (`max_builds = 1`): a build restores
//! what an earlier one saved, by its exact key or else the newest key with a
//! restore prefix; a corrupt archive is a warning and the build goes on
//! cold; the cache calls refuse callers without their step's token; the
//! counts reach the metrics.

use std::time::Duration;

use burst_e2e::git_repo::GitRepo;
use burst_e2e::{BuildId, Master, MasterBuilder};
use burst_proto::worker_service_client::WorkerServiceClient;
use burst_proto::{CacheAuth, CacheData, FetchCacheRequest};
use serde_json::Value;

use super::checkout::{build_of, first_poll, poll_source};

const WAIT: Duration = Duration::from_secs(120);

fn config(url: &str) -> String {
    format!(
        r#"
[pools.local]
provider = "local"
labels = ["linux"]
max_workers = 1
max_builds = 1

[[builders]]
name = "cached"
labels = ["linux"]
caches = [{{ key = "deps-{{hash:lock.txt}}", paths = ["deps"], restore_keys = ["deps-"] }}]

[[builders.steps]]
name = "checkout"
checkout = true
url = "{url}"

[[builders.steps]]
name = "use"
run = 'if [ -f deps/built ]; then echo "restored: $(cat deps/built)"; else echo cold; mkdir -p deps; fi; echo "$BURST_BUILD_ID-$(cat lock.txt)" > deps/built'
{}"#,
        poll_source(url, "cached")
    )
}

/// Pushes `lock` as lock.txt and waits for its build; returns it and its log.
async fn push(
    master: &Master,
    repo: &GitRepo,
    lock: &str,
    n: usize,
) -> anyhow::Result<(BuildId, String)> {
    let rev = repo
        .commit_files(
            "main",
            &[("lock.txt", lock), ("n.txt", &n.to_string())],
            lock,
        )
        .await?;
    let id = build_of(master, &rev).await?;
    let build = master.wait_build(id, WAIT).await?;
    let log = master.log_text(id).await?;
    anyhow::ensure!(
        build.state.as_str() == "succeeded",
        "build {id}: {build:#?}\n{log}"
    );
    Ok((id, log))
}

#[tokio::test(flavor = "multi_thread")]
async fn fresh_workers_restore_the_exact_key_else_the_newest_prefix_and_survive_a_corrupt_one(
) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let repo = GitRepo::new(dir.path()).await?;
    repo.commit_files("main", &[("lock.txt", "v0")], "init")
        .await?;
    let master = MasterBuilder::config(&config(&repo.file_url()))
        .start()
        .await?;
    first_poll(&master).await?;

    let (a, log) = push(&master, &repo, "v1", 1).await?;
    assert!(log.contains("cache: miss for deps-"), "{log}");
    assert!(log.contains("\ncold\n"), "{log}");
    assert!(log.contains("cache: saved deps-"), "{log}");
    let steps: Vec<String> = master.build(a).await?.attempts[0]
        .steps
        .iter()
        .map(|s| s.name.clone())
        .collect();
    assert_eq!(
        steps,
        [
            "checkout",
            "cache restore: deps-{hash:lock.txt}",
            "use",
            "cache save: deps-{hash:lock.txt}"
        ]
    );

    // lock.txt changed: no exact key; the newest "deps-" is restored.
    let (b, log) = push(&master, &repo, "v2", 2).await?;
    assert!(log.contains("(partial: deps-"), "{log}");
    assert!(log.contains(&format!("restored: {a}-v1")), "{log}");
    // The build page shows the key restored, how, and how long it took.
    let page = master.ui_get(&format!("/builds/{b}")).await?;
    let note = page
        .split("<td class=\"note\">")
        .nth(2)
        .and_then(|rest| rest.split("</td>").next())
        .unwrap_or_default();
    assert!(
        note.starts_with("restored deps-") && note.contains("partial") && note.contains(" s"),
        "{note:?} in {page}"
    );

    // Back to v1: build a's own key, exactly.
    let (_, log) = push(&master, &repo, "v1", 3).await?;
    assert!(log.contains("(hit)"), "{log}");
    assert!(log.contains(&format!("restored: {a}-v1")), "{log}");
    assert!(
        log.contains("is saved already; not saving it again"),
        "{log}"
    );

    // Damage v1's archive: the next v1 build warns and starts cold.
    let v1 = key_of(&log);
    let caches = master.state_dir().join("artifacts/caches/cached");
    assert_eq!(
        std::fs::read_dir(caches.join("keys"))?.count(),
        2,
        "v1 and v2 saved"
    );
    let mut damaged = 0;
    for entry in std::fs::read_dir(caches.join("data"))? {
        let path = entry?.path();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name.starts_with(&format!("{v1}.")) {
            // Same size, garbage after the first bytes: only decoding can tell.
            let mut bytes = std::fs::read(&path)?;
            let half = bytes.len() / 4;
            bytes[half..].iter_mut().for_each(|b| *b = 0xa5);
            std::fs::write(&path, &bytes)?;
            damaged += 1;
        }
    }
    assert_eq!(damaged, 1, "{v1}'s archive in {}", caches.display());
    let (_, log) = push(&master, &repo, "v1", 4).await?;
    assert!(log.contains("cache: warning: cache deps-"), "{log}");
    assert!(log.contains("unreadable"), "{log}");
    assert!(log.contains("\ncold\n"), "{log}");

    let metrics = master.metrics().await?;
    for (result, n) in [("miss", 1), ("partial", 1), ("hit", 2)] {
        let line =
            format!("burst_cache_requests_total{{builder=\"cached\",result=\"{result}\"}} {n}");
        assert!(metrics.contains(&line), "{line} in:\n{metrics}");
    }
    assert!(
        metrics.contains("burst_cache_saved_bytes_total{builder=\"cached\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("burst_cache_restored_bytes_total{builder=\"cached\"}"),
        "{metrics}"
    );
    Ok(())
}

/// The key a build restored, from its log line `cache: restored KEY (…`.
fn key_of(log: &str) -> String {
    log.lines()
        .find_map(|l| l.split("cache: restored ").nth(1))
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn cache_calls_without_the_steps_token_are_refused() -> anyhow::Result<()> {
    let master = MasterBuilder::new()
        .section("[pools.local]\nprovider = \"local\"\nlabels = [\"linux\"]\nmax_workers = 1\n")
        .section("[[builders]]\nname = \"b\"\nlabels = [\"linux\"]\n\n[[builders.steps]]\nname = \"s\"\nrun = \"true\"\n")
        .start()
        .await?;
    let mut client = WorkerServiceClient::connect(master.worker_url()).await?;
    let forged = CacheAuth {
        step_run_id: "1.1.0".into(),
        scope: "b".into(),
        token: "00".repeat(32),
    };
    for (auth, want) in [
        (None, tonic::Code::Unauthenticated),
        (Some(forged.clone()), tonic::Code::PermissionDenied),
    ] {
        let got = client
            .fetch_cache(FetchCacheRequest {
                auth,
                key: "k".into(),
                ..Default::default()
            })
            .await;
        assert_eq!(got.err().map(|s| s.code()), Some(want));
    }
    let upload = futures::stream::iter([CacheData {
        auth: Some(forged),
        key: "k".into(),
        size: 3,
        data: b"abc".to_vec(),
        ..Default::default()
    }]);
    let got = client.put_cache(upload).await;
    assert_eq!(
        got.err().map(|s| s.code()),
        Some(tonic::Code::PermissionDenied)
    );
    assert!(!master.state_dir().join("artifacts/caches").exists());
    let log = master.log();
    assert!(log.contains("refused a cache call"), "{log}");
    let _: Value = master.api_get("/api/v1/builds").await?;
    Ok(())
}

/// Two builds saving one key at once: the first to finish keeps it, the
/// other's archive is dropped, and a third build restores it whole.
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_saves_of_one_key_keep_one_whole_archive() -> anyhow::Result<()> {
    let master = MasterBuilder::new()
        .section("[pools.local]\nprovider = \"local\"\nlabels = [\"linux\"]\nmax_workers = 2\nmax_builds = 1\n")
        .section(
            "[[builders]]\nname = \"race\"\nlabels = [\"linux\"]\n\
             caches = [{ key = \"shared\", paths = [\"deps\"] }]\n\n\
             [[builders.steps]]\nname = \"fill\"\n\
             run = 'if [ -f deps/whole ]; then echo \"restored $(wc -c < deps/whole)\"; else mkdir -p deps; seq 1 200000 > deps/whole; fi'\n",
        )
        .start()
        .await?;
    let ids = [
        master.submit("race", &[]).await?[0],
        master.submit("race", &[]).await?[0],
    ];
    let mut saved = 0;
    for id in ids {
        let build = master.wait_build(id, WAIT).await?;
        let log = master.log_text(id).await?;
        assert_eq!(build.state.as_str(), "succeeded", "{build:#?}\n{log}");
        if log.contains("cache: saved shared") {
            saved += 1;
        } else {
            assert!(
                log.contains("was saved by another build first")
                    || log.contains("is saved already"),
                "{log}"
            );
        }
    }
    assert_eq!(saved, 1, "exactly one save wins");
    let keys = master.state_dir().join("artifacts/caches/race/keys");
    assert_eq!(std::fs::read_dir(&keys)?.count(), 1);
    let data = master.state_dir().join("artifacts/caches/race/data");
    assert_eq!(
        std::fs::read_dir(&data)?.count(),
        1,
        "the loser's archive is gone"
    );
    let third = master.submit("race", &[]).await?[0];
    master.wait_build(third, WAIT).await?;
    let log = master.log_text(third).await?;
    let whole: usize = (1..=200_000).map(|i: u32| i.to_string().len() + 1).sum();
    assert!(log.contains(&format!("restored {whole}")), "{log}");
    Ok(())
}

/// An archive over `[artifacts] max_cache_bytes` is not saved; the build
/// says so and succeeds.
#[tokio::test(flavor = "multi_thread")]
async fn a_cache_over_the_limit_is_refused_and_the_build_goes_on() -> anyhow::Result<()> {
    let master = MasterBuilder::new()
        .section("[artifacts]\nmax_cache_bytes = 100\n")
        .section("[pools.local]\nprovider = \"local\"\nlabels = [\"linux\"]\nmax_workers = 1\n")
        .section(
            "[[builders]]\nname = \"big\"\nlabels = [\"linux\"]\n\
             caches = [{ key = \"big\", paths = [\"deps\"] }]\n\n\
             [[builders.steps]]\nname = \"fill\"\nrun = 'mkdir -p deps; seq 1 100000 > deps/data'\n",
        )
        .start()
        .await?;
    let id = master.submit("big", &[]).await?[0];
    let build = master.wait_build(id, WAIT).await?;
    let log = master.log_text(id).await?;
    assert_eq!(build.state.as_str(), "succeeded", "{build:#?}\n{log}");
    assert!(
        log.contains("cache: warning: failed to save cache big")
            && log.contains("over the limit of 100 bytes ([artifacts] max_cache_bytes)"),
        "{log}"
    );
    let keys = master.state_dir().join("artifacts/caches/big/keys");
    assert!(!keys.exists() || std::fs::read_dir(&keys)?.count() == 0);
    Ok(())
}

/// A cache neither saved nor restored within `[artifacts] cache_max_age` is
/// removed by `burst gc` (retention of builds need not be on).
#[tokio::test(flavor = "multi_thread")]
async fn gc_removes_caches_unused_for_cache_max_age() -> anyhow::Result<()> {
    let master = MasterBuilder::new()
        .section("[artifacts]\ncache_max_age = \"1s\"\n")
        .section("[pools.local]\nprovider = \"local\"\nlabels = [\"linux\"]\nmax_workers = 1\n")
        .section(
            "[[builders]]\nname = \"old\"\nlabels = [\"linux\"]\n\
             caches = [{ key = \"stale\", paths = [\"deps\"] }]\n\n\
             [[builders.steps]]\nname = \"fill\"\nrun = 'mkdir -p deps; echo x > deps/x'\n",
        )
        .start()
        .await?;
    let id = master.submit("old", &[]).await?[0];
    master.wait_build(id, WAIT).await?;
    let log = master.log_text(id).await?;
    assert!(log.contains("cache: saved stale"), "{log}");
    let keys = master.state_dir().join("artifacts/caches/old/keys");
    assert_eq!(std::fs::read_dir(&keys)?.count(), 1);
    // Past the horizon (the rule, not a race: the save time is recorded).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let out = master.cli(&["gc"]).await?;
    assert!(out.success(), "{out:?}");
    assert!(out.stdout.contains("removed cache old/stale"), "{out:?}");
    assert!(!keys.exists() || std::fs::read_dir(&keys)?.count() == 0);
    let data = master.state_dir().join("artifacts/caches/old/data");
    assert!(!data.exists() || std::fs::read_dir(&data)?.count() == 0);
    Ok(())
}
