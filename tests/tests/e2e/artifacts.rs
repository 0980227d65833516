//! Artifacts: files a step leaves in the build's directory, uploaded to the
//! master over the worker's session, listed and downloaded through the API
//! and the CLI byte for byte, kept after the worker is gone, capped per
//! build, and never read from or written to outside their place.

use std::time::Duration;

use burst_e2e::{procs, wait, Master, MasterBuilder};
use burst_master::model::{ArtifactInfo, Build, BuildState};
use reqwest::Method;
use sha2::{Digest, Sha256};

const TIMEOUT: Duration = Duration::from_secs(120);

/// `seq 1 50000`, as the step writes it.
fn seq_bytes() -> Vec<u8> {
    (1..=50_000)
        .map(|i| format!("{i}\n"))
        .collect::<String>()
        .into_bytes()
}

fn sha(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// One worker per build (`max_builds = 1`): the worker is torn down after
/// each build, and its artifacts must outlive it.
const POOL: &str = r#"
[pools.local]
provider = "local"
labels = ["linux"]
max_workers = 2
max_builds = 1
"#;

const BUILDERS: &str = r#"
[[builders]]
name = "make"
labels = ["linux"]

[[builders.steps]]
name = "build"
run = 'mkdir -p out reports/unit/deep && seq 1 50000 > out/app.bin && echo "<a/>" > reports/top.xml && echo "<b/>" > reports/unit/deep/b.xml && echo skip > reports/skip.txt && : > out/empty'
artifacts = ["out/app.bin", "out/empty", "reports/**/*.xml", "nothing/*"]

[[builders]]
name = "escape"
labels = ["linux"]

[[builders.steps]]
name = "link"
run = 'ln -s /etc/hostname outside.txt'
artifacts = ["*.txt"]

[[builders]]
name = "capped"
labels = ["linux"]

[[builders.steps]]
name = "big"
run = 'head -c 5000 /dev/zero > big.bin'
artifacts = ["big.bin"]

[[builders]]
name = "two-steps"
labels = ["linux"]

[[builders.steps]]
name = "first"
run = 'head -c 600 /dev/zero > a.bin'
artifacts = ["a.bin"]

[[builders.steps]]
name = "second"
run = 'head -c 600 /dev/zero > b.bin'
artifacts = ["b.bin"]

[[builders]]
name = "on-failure"
labels = ["linux"]

[[builders.steps]]
name = "fails"
run = 'echo crash > core.txt; echo kept > kept.txt; exit 3'
artifacts = { paths = ["core.txt"], when = "on_failure" }

[[builders.steps]]
name = "never"
run = 'true'
artifacts = ["kept.txt"]
"#;

async fn master(extra: &str) -> anyhow::Result<Master> {
    MasterBuilder::new()
        .section(POOL)
        .section(BUILDERS)
        .section(extra)
        .start()
        .await
}

async fn finished(master: &Master, builder: &str) -> anyhow::Result<Build> {
    let id = master.submit(builder, &[]).await?[0];
    master.wait_build(id, TIMEOUT).await
}

async fn raw_get(
    master: &Master,
    path: &str,
    range: Option<&str>,
) -> anyhow::Result<reqwest::Response> {
    let mut rb = reqwest::Client::new()
        .get(format!("{}{path}", master.url()))
        .bearer_auth(master.admin_token());
    if let Some(r) = range {
        rb = rb.header("range", r);
    }
    Ok(rb.send().await?)
}

#[tokio::test(flavor = "multi_thread")]
async fn artifacts_are_listed_and_downloaded_byte_for_byte_after_the_worker_is_gone(
) -> anyhow::Result<()> {
    let master = master("").await?;
    let build = finished(&master, "make").await?;
    assert_eq!(build.state, BuildState::Succeeded, "{build:#?}");
    let log = master.log_text(build.id).await?;
    assert!(
        log.contains("artifacts: no file matches nothing/*"),
        "{log}"
    );
    assert!(log.contains("artifacts: uploading 4 file(s)"), "{log}");

    // max_builds = 1: the worker goes; the files stay.
    let worker = build.attempts[0].worker_id.clone();
    wait::until_true("the build's worker to be torn down", TIMEOUT, || {
        !master
            .worker_processes()
            .iter()
            .any(|p| p.worker_id.as_deref() == Some(worker.as_str()))
    })
    .await?;

    let list: Vec<ArtifactInfo> = master
        .api_get(&format!("/api/v1/builds/{}/artifacts", build.id))
        .await?;
    let paths: Vec<&str> = list.iter().map(|a| a.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "out/app.bin",
            "out/empty",
            "reports/top.xml",
            "reports/unit/deep/b.xml"
        ]
    );
    let app = &list[0];
    let want = seq_bytes();
    assert_eq!(
        (app.size, app.sha256.as_str()),
        (want.len() as u64, sha(&want).as_str())
    );
    assert_eq!(app.step_name.as_deref(), Some("build"));
    assert_eq!((app.attempt, app.step), (1, 0));
    assert_eq!(list[1].size, 0);

    // The API: whole, then a range.
    let url = format!("/api/v1/builds/{}/artifacts/out/app.bin", build.id);
    let resp = raw_get(&master, &url, None).await?;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["accept-ranges"], "bytes");
    assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
    assert!(resp.headers()["content-security-policy"]
        .to_str()?
        .starts_with("sandbox"));
    assert!(resp.headers()["content-disposition"]
        .to_str()?
        .starts_with("attachment"));
    assert_eq!(resp.bytes().await?.as_ref(), want.as_slice());
    let resp = raw_get(&master, &url, Some("bytes=100-199")).await?;
    assert_eq!(resp.status(), 206);
    assert_eq!(
        resp.headers()["content-range"].to_str()?,
        format!("bytes 100-199/{}", want.len())
    );
    assert_eq!(resp.bytes().await?.as_ref(), &want[100..200]);
    let resp = raw_get(&master, &url, Some(&format!("bytes={}-", want.len()))).await?;
    assert_eq!(resp.status(), 416);
    let empty = raw_get(
        &master,
        &format!("/api/v1/builds/{}/artifacts/out/empty", build.id),
        None,
    )
    .await?;
    assert_eq!(empty.status(), 200);
    assert!(empty.bytes().await?.is_empty());

    // The CLI: the list, one file, then all of them under their paths.
    let id = build.id.to_string();
    let out = master.cli(&["artifacts", &id]).await?;
    assert!(out.success(), "{out:?}");
    assert!(
        out.stdout.contains("out/app.bin") && out.stdout.contains("reports/unit/deep/b.xml"),
        "{out:?}"
    );
    let dir = tempfile::tempdir()?;
    let one = dir.path().join("one");
    let out = master
        .cli(&[
            "artifacts",
            &id,
            "--get",
            "out/app.bin",
            "-o",
            one.to_str().unwrap_or_default(),
        ])
        .await?;
    assert!(out.success(), "{out:?}");
    assert_eq!(std::fs::read(one.join("app.bin"))?, want);
    let all = dir.path().join("all");
    let out = master
        .cli(&["artifacts", &id, "-o", all.to_str().unwrap_or_default()])
        .await?;
    assert!(out.success(), "{out:?}");
    assert_eq!(std::fs::read(all.join("out/app.bin"))?, want);
    assert_eq!(
        std::fs::read(all.join("reports/unit/deep/b.xml"))?,
        b"<b/>\n"
    );
    assert!(!all.join("reports/skip.txt").exists());
    let out = master.cli(&["artifacts", &id, "--get", "out/nope"]).await?;
    assert!(
        !out.success() && out.stderr.contains("no artifact"),
        "{out:?}"
    );

    // The build page links them.
    let page = master.ui_get(&format!("/builds/{}", build.id)).await?;
    assert!(page.contains("id=\"artifacts\""), "{page}");
    assert!(
        page.contains(&format!(
            "href=\"/api/v1/builds/{}/artifacts/out/app.bin\"",
            build.id
        )),
        "{page}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn downloads_refuse_paths_outside_the_build_and_callers_without_a_token() -> anyhow::Result<()>
{
    let master = master("").await?;
    let build = finished(&master, "make").await?;
    assert_eq!(build.state, BuildState::Succeeded, "{build:#?}");
    let base = format!("/api/v1/builds/{}/artifacts", build.id);
    let admin = master.admin_token();
    for (path, status) in [
        ("/..%2F..%2Fburst.db", 400),
        ("/out/..%2F..%2F..%2Fburst.db", 400),
        ("/%2Fetc%2Fpasswd", 400),
        ("/out%5C..%5Capp.bin", 400),
        ("/out/app.bin%00", 400),
        ("/out/nope", 404),
    ] {
        let (got, body) = master
            .api_request(
                Method::GET,
                &format!("{base}{path}"),
                Some(&admin),
                &[],
                None,
            )
            .await?;
        assert_eq!(got, status, "{path}: {body}");
    }
    let (got, _) = master
        .api_request(
            Method::GET,
            "/api/v1/builds/999999/artifacts",
            Some(&admin),
            &[],
            None,
        )
        .await?;
    assert_eq!(got, 404);
    // No token, a wrong one: refused; a viewer may read, as for logs.
    for token in [None, Some("not-a-token")] {
        for path in [base.clone(), format!("{base}/out/app.bin")] {
            let (got, _) = master
                .api_request(Method::GET, &path, token, &[], None)
                .await?;
            assert_eq!(got, 401, "{path} with {token:?}");
        }
    }
    // A metrics-only token is below the viewer role logs need.
    let scraper = master.create_token("scraper", "metrics").await?;
    let (got, _) = master
        .api_request(Method::GET, &base, Some(&scraper), &[], None)
        .await?;
    assert_eq!(got, 403);
    let viewer = master.create_token("reader", "viewer").await?;
    let (got, _) = master
        .api_request(
            Method::GET,
            &format!("{base}/out/app.bin"),
            Some(&viewer),
            &[],
            None,
        )
        .await?;
    assert_eq!(got, 200);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_symlink_out_of_the_build_fails_the_step_and_uploads_nothing() -> anyhow::Result<()> {
    let master = master("").await?;
    let build = finished(&master, "escape").await?;
    assert_eq!(build.state, BuildState::Failed, "{build:#?}");
    let error = build.attempts[0].steps[0].error.clone().unwrap_or_default();
    assert!(
        error.contains("refused outside.txt") && error.contains("outside the build's directory"),
        "{error}"
    );
    let list: Vec<ArtifactInfo> = master
        .api_get(&format!("/api/v1/builds/{}/artifacts", build.id))
        .await?;
    assert!(list.is_empty(), "{list:#?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_build_size_cap_fails_the_step_on_the_worker_and_on_the_master() -> anyhow::Result<()> {
    let master = master("[artifacts]\nmax_build_bytes = 1000\n").await?;
    // One step over the cap: the worker refuses before sending.
    let build = finished(&master, "capped").await?;
    assert_eq!(build.state, BuildState::Failed, "{build:#?}");
    let error = build.attempts[0].steps[0].error.clone().unwrap_or_default();
    assert!(
        error.contains("over the build's artifact limit of 1000 bytes"),
        "{error}"
    );

    // Two steps under it each, over it together: the master refuses the
    // second file and fails its step.
    let build = finished(&master, "two-steps").await?;
    assert_eq!(build.state, BuildState::Failed, "{build:#?}");
    let steps = &build.attempts[0].steps;
    assert_eq!(steps[0].state.as_str(), "succeeded", "{steps:#?}");
    let error = steps[1].error.clone().unwrap_or_default();
    assert!(
        error.contains("would total 1200 bytes, over the limit of 1000 bytes"),
        "{error}"
    );
    let list: Vec<ArtifactInfo> = master
        .api_get(&format!("/api/v1/builds/{}/artifacts", build.id))
        .await?;
    let paths: Vec<&str> = list.iter().map(|a| a.path.as_str()).collect();
    assert_eq!(paths, ["a.bin"]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn when_on_failure_uploads_from_a_failed_step_only() -> anyhow::Result<()> {
    let master = master("").await?;
    let build = finished(&master, "on-failure").await?;
    assert_eq!(build.state, BuildState::Failed, "{build:#?}");
    let list: Vec<ArtifactInfo> = master
        .api_get(&format!("/api/v1/builds/{}/artifacts", build.id))
        .await?;
    let paths: Vec<&str> = list.iter().map(|a| a.path.as_str()).collect();
    assert_eq!(paths, ["core.txt"]);
    Ok(())
}

/// 1 GB through a worker and a master, neither of which may hold it: the
/// peak RSS of each stays far below the file's size.
#[tokio::test(flavor = "multi_thread")]
async fn a_1gb_artifact_streams_with_bounded_memory() -> anyhow::Result<()> {
    const SIZE: u64 = 1_000_000_000;
    let master = MasterBuilder::new()
        .section("[pools.local]\nprovider = \"local\"\nlabels = [\"linux\"]\nmax_workers = 1\n")
        .section(
            "[artifacts]\nmax_build_bytes = \"2GB\"\n\n[[builders]]\nname = \"huge\"\nlabels = [\"linux\"]\n\n\
             [[builders.steps]]\nname = \"write\"\nrun = 'head -c 1000000000 /dev/zero > huge.bin'\nartifacts = [\"huge.bin\"]\n",
        )
        .start()
        .await?;
    let build = master
        .wait_build(
            master.submit("huge", &[]).await?[0],
            Duration::from_secs(900),
        )
        .await?;
    assert_eq!(build.state, BuildState::Succeeded, "{build:#?}");
    let list: Vec<ArtifactInfo> = master
        .api_get(&format!("/api/v1/builds/{}/artifacts", build.id))
        .await?;
    assert_eq!(list.len(), 1, "{list:#?}");
    assert_eq!(list[0].size, SIZE);
    // sha256 of 10^9 zero bytes.
    assert_eq!(
        list[0].sha256,
        "bc17f06f9d9b5f6f79ca189a1772b1a3a38d6e40c45bec50f9c4f28144efddca"
    );
    let worker = master
        .worker_processes()
        .into_iter()
        .find(|p| p.worker_id.as_deref() == Some(build.attempts[0].worker_id.as_str()))
        .ok_or_else(|| anyhow::anyhow!("the build's worker is gone: {:?}", master.processes()))?;
    const BOUND_KIB: u64 = 200 * 1024;
    let worker_peak = procs::peak_rss_kib(worker.pid).unwrap_or(u64::MAX);
    let master_peak = procs::peak_rss_kib(master.pid()).unwrap_or(u64::MAX);
    eprintln!("1 GB artifact: peak RSS worker {worker_peak} KiB, master {master_peak} KiB");
    assert!(worker_peak < BOUND_KIB, "worker peak RSS {worker_peak} KiB");
    assert!(master_peak < BOUND_KIB, "master peak RSS {master_peak} KiB");

    // Downloading it holds no more.
    let resp = raw_get(
        &master,
        &format!("/api/v1/builds/{}/artifacts/huge.bin", build.id),
        None,
    )
    .await?;
    assert_eq!(resp.status(), 200);
    let mut stream = resp.bytes_stream();
    let (mut got, mut hasher) = (0u64, Sha256::new());
    use futures::StreamExt;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        got += chunk.len() as u64;
        hasher.update(&chunk);
    }
    assert_eq!(got, SIZE);
    let digest: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(digest, list[0].sha256);
    let master_peak = procs::peak_rss_kib(master.pid()).unwrap_or(u64::MAX);
    assert!(
        master_peak < BOUND_KIB,
        "master peak RSS after the download {master_peak} KiB"
    );
    Ok(())
}

/// `[artifacts.s3]` against the S3 API of the emulator the EC2 tests use:
/// the same upload and download, the bytes in the bucket and none on the
/// master's disk.
#[tokio::test(flavor = "multi_thread")]
async fn artifacts_live_in_an_s3_bucket_when_configured() -> anyhow::Result<()> {
    let moto = burst_e2e::moto::Moto::start().await?;
    let bucket = "burst-artifacts";
    // moto takes an unsigned CreateBucket.
    let made = reqwest::Client::new()
        .put(format!("{}/{bucket}", moto.url))
        .send()
        .await?;
    anyhow::ensure!(
        made.status().is_success(),
        "create bucket: {}",
        made.status()
    );
    let env = burst_e2e::moto::fake_aws_env(&moto.url)
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v));
    let master = MasterBuilder::new()
        .section(POOL)
        .section(BUILDERS)
        .section(&format!(
            "[artifacts.s3]\nbucket = \"{bucket}\"\nregion = \"us-east-1\"\nendpoint = \"{}\"\n",
            moto.url
        ))
        .envs(env)
        .start()
        .await?;
    let build = finished(&master, "make").await?;
    assert_eq!(
        build.state,
        BuildState::Succeeded,
        "{build:#?}\n{}",
        master.log_tail()
    );
    let list: Vec<ArtifactInfo> = master
        .api_get(&format!("/api/v1/builds/{}/artifacts", build.id))
        .await?;
    assert_eq!(list.len(), 4, "{list:#?}");
    let want = seq_bytes();
    let url = format!("/api/v1/builds/{}/artifacts/out/app.bin", build.id);
    assert_eq!(
        raw_get(&master, &url, None).await?.bytes().await?.as_ref(),
        want.as_slice()
    );
    let part = raw_get(&master, &url, Some("bytes=-5")).await?;
    assert_eq!(part.status(), 206);
    assert_eq!(part.bytes().await?.as_ref(), &want[want.len() - 5..]);

    let keys = reqwest::Client::new()
        .get(format!("{}/{bucket}?list-type=2", moto.url))
        .send()
        .await?
        .text()
        .await?;
    assert!(
        keys.contains(&format!("<Key>{}/1.0/files/out/app.bin</Key>", build.id)),
        "{keys}"
    );
    assert!(!master.state_dir().join("artifacts").exists());
    Ok(())
}
