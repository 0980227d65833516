//! Ephemeral GitHub Actions runners (`[github]`), against the fake GitHub
//! of `src/fake_github.rs` and the fake runner of
//! `fixtures/fake-runner/run.sh`, on a local pool: one fresh worker and
//! one JIT config per job, caps, lost and redelivered webhooks, a job
//! cancelled before its runner started, a master SIGKILL mid-job, rate
//! limits and labels no pool serves. `docker::github_runner_*` and
//! `ec2::github_runner_*` run the one-job scenario on their pools.

use std::path::PathBuf;
use std::time::Duration;

use burst_e2e::fake_github::{FakeGithub, Fault};
use burst_e2e::{wait, BuildId, Master, MasterBuilder};
use serde_json::Value;

pub(crate) const HOOK_SECRET: &str = "gh-runner-hook-secret";
const TOKEN: &str = "fake-fine-grained-token";
pub(crate) const REPO: &str = "acme/app";
pub(crate) const LABELS: &[&str] = &["self-hosted", "linux", "burst"];
const WAIT: Duration = Duration::from_secs(120);

/// The fake runner's directory (it stands in for an unpacked actions-runner).
pub(crate) fn fake_runner_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/fake-runner")
}

/// `[github]` for `fake`, with `extra` keys (reconcile interval, …) and
/// the runner dir, the token credentials and one entry for pool `pool`.
pub(crate) fn github_section(
    fake: &FakeGithub,
    pool: &str,
    runner_dir: &str,
    extra: &str,
) -> String {
    format!(
        r#"
[secrets]
GH_HOOK = {{ env = "GH_HOOK" }}
GH_TOKEN = {{ env = "GH_TOKEN" }}

[github]
api_url = "{api}"
token_secret = "GH_TOKEN"
webhook_secret = "GH_HOOK"
repos = ["{REPO}"]
runner_dir = "{runner_dir}"
{extra}

[[github.runners]]
pool = "{pool}"
labels = ["self-hosted", "Linux", "burst"]
"#,
        api = fake.url(),
    )
}

fn local_pool(max_workers: u32) -> String {
    format!(
        r#"
[pools.gh]
provider = "local"
labels = ["linux"]
max_builds = 1
max_workers = {max_workers}
idle_timeout = "5s"
"#
    )
}

async fn start(fake: &FakeGithub, max_workers: u32, extra: &str) -> anyhow::Result<Master> {
    let dir = fake_runner_dir();
    let config = format!(
        "{}{}",
        local_pool(max_workers),
        github_section(fake, "gh", &dir.display().to_string(), extra)
    );
    // Workers find a restarted master where they left it.
    let master = MasterBuilder::config(&config)
        .same_grpc_port_on_restart()?
        .env("GH_HOOK", HOOK_SECRET)
        .env("GH_TOKEN", TOKEN)
        .start()
        .await?;
    fake.deliver_to(&master.url(), HOOK_SECRET);
    Ok(master)
}

/// The runner builds, newest first.
pub(crate) async fn runner_builds(master: &Master) -> anyhow::Result<Vec<Value>> {
    master
        .api_get("/api/v1/builds?builder=github-runner&limit=500")
        .await
}

pub(crate) async fn wait_job_done(fake: &FakeGithub, job: u64) -> anyhow::Result<()> {
    wait::until_true(&format!("GitHub job {job} to complete"), WAIT, || {
        fake.job(job).is_some_and(|j| j.status == "completed")
    })
    .await
}

/// No worker and no live instance is left, and the fake holds no runner
/// registration.
pub(crate) async fn wait_nothing_left(master: &Master, fake: &FakeGithub) -> anyhow::Result<()> {
    wait::until("every runner worker to be gone", WAIT, || async {
        let gone = master.workers().await?.is_empty() && master.live_instances().await?.is_empty();
        Ok(gone.then_some(()))
    })
    .await?;
    wait::until_true("no runner registration to be left", WAIT, || {
        fake.runners().is_empty()
    })
    .await
}

/// Neither the master's log, nor the build's log, nor its API JSON shows
/// any JIT config the fake handed out.
pub(crate) async fn assert_no_jit_shown(
    master: &Master,
    fake: &FakeGithub,
    build: BuildId,
) -> anyhow::Result<()> {
    let log = master.log_text(build).await?;
    let json = master.build_json(build).await?.to_string();
    let master_log = master.log();
    let jits = fake.jit_configs();
    anyhow::ensure!(!jits.is_empty(), "no JIT config was handed out");
    for jit in jits {
        let secret = jit.rsplit('.').next().unwrap_or(&jit);
        anyhow::ensure!(!log.contains(secret), "the build log shows a JIT config");
        anyhow::ensure!(!json.contains(secret), "the API shows a JIT config");
        anyhow::ensure!(
            !master_log.contains(secret),
            "the master's log shows a JIT config"
        );
    }
    Ok(())
}

/// The one-job scenario, for any pool: one webhook, one fresh worker, one
/// JIT config, the runner exits, the worker is gone.
pub(crate) async fn one_job(master: &Master, fake: &FakeGithub) -> anyhow::Result<()> {
    let job = fake
        .queue_job(&["self-hosted", "linux", "burst"], 0.5, 0)
        .await;
    wait_job_done(fake, job).await?;
    let builds = runner_builds(master).await?;
    assert_eq!(builds.len(), 1, "one runner build: {builds:?}");
    let id = builds[0]["id"].as_i64().unwrap_or(0);
    let build = master.wait_build(id, WAIT).await?;
    assert_eq!(build.state.as_str(), "succeeded", "{build:?}");
    let detail = master.build_json(id).await?;
    let jobs = detail["github_jobs"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(jobs.len(), 1, "{detail}");
    assert_eq!(jobs[0]["job_id"].as_u64(), Some(job));
    assert_eq!(jobs[0]["conclusion"], "success");
    assert_eq!(jobs[0]["ran_build"].as_i64(), Some(id));
    assert_eq!(jobs[0]["launched_build"].as_i64(), Some(id));
    let jit_calls = fake.calls_to("generate-jitconfig");
    assert_eq!(jit_calls.len(), 1, "one JIT config");
    let body = &jit_calls[0].body;
    let worker = build.attempts[0].worker_id.clone();
    assert_eq!(
        body["name"].as_str(),
        Some(format!("burst-{worker}-b{id}").as_str()),
        "the runner is named after its worker and build"
    );
    assert_eq!(
        body["labels"],
        serde_json::json!(["self-hosted", "Linux", "burst"])
    );
    assert_eq!(body["runner_group_id"], 1);
    let log = master.log_text(id).await?;
    assert!(
        log.contains(&format!("fake runner: job {job} done")),
        "{log}"
    );
    assert_no_jit_shown(master, fake, id).await?;
    wait_nothing_left(master, fake).await?;
    let instances = master.instances().await?;
    assert_eq!(instances.len(), 1, "one worker was launched: {instances:?}");
    Ok(())
}

#[tokio::test]
async fn github_runner_one_job_one_fresh_worker_then_gone() -> anyhow::Result<()> {
    let fake = FakeGithub::start_local(REPO).await?;
    let master = start(&fake, 5, "").await?;
    one_job(&master, &fake).await
}

#[tokio::test]
async fn github_runner_app_credentials_mint_installation_tokens() -> anyhow::Result<()> {
    let fake = FakeGithub::start_local(REPO).await?;
    let dir = tempfile::tempdir()?;
    let key = dir.path().join("app.pem");
    std::fs::write(
        &key,
        include_str!("../../../master/src/github/test_app_key.pem"),
    )?;
    let runner_dir = fake_runner_dir().display().to_string();
    let config = format!(
        r#"{pool}
[secrets]
GH_HOOK = {{ env = "GH_HOOK" }}

[github]
api_url = "{api}"
app_id = 4242
private_key_file = "{key}"
installations = {{ acme = 77 }}
webhook_secret = "GH_HOOK"
repos = ["{REPO}"]
runner_dir = "{runner_dir}"

[[github.runners]]
pool = "gh"
labels = ["self-hosted", "Linux", "burst"]
"#,
        pool = local_pool(5),
        api = fake.url(),
        key = key.display(),
    );
    let master = MasterBuilder::config(&config)
        .env("GH_HOOK", HOOK_SECRET)
        .start()
        .await?;
    fake.deliver_to(&master.url(), HOOK_SECRET);
    one_job(&master, &fake).await?;
    let tokens = fake.calls_to("/app/installations/77/access_tokens");
    assert!(!tokens.is_empty(), "an installation token was asked for");
    let jit = &fake.calls_to("generate-jitconfig")[0];
    assert_eq!(
        jit.authorization.as_deref(),
        Some("Bearer ghs_fake_77_4242"),
        "the JIT config was asked for with the installation's token"
    );
    Ok(())
}

#[tokio::test]
async fn github_runner_twenty_jobs_never_more_than_five_runners() -> anyhow::Result<()> {
    let fake = FakeGithub::start_local(REPO).await?;
    let master = start(&fake, 5, "").await?;
    let mut jobs = Vec::new();
    for _ in 0..20 {
        jobs.push(fake.queue_job(LABELS, 1.0, 0).await);
    }
    for job in &jobs {
        wait_job_done(&fake, *job).await?;
    }
    assert!(
        fake.max_in_progress() <= 5,
        "at most 5 jobs ran at once, saw {}",
        fake.max_in_progress()
    );
    for j in fake.jobs() {
        assert_eq!(j.conclusion.as_deref(), Some("success"), "{j:?}");
    }
    let builds = runner_builds(&master).await?;
    assert_eq!(builds.len(), 20);
    assert_eq!(fake.calls_to("generate-jitconfig").len(), 20);
    wait_nothing_left(&master, &fake).await?;
    // The ledger: every worker ran one runner and no more than 5 lived at once.
    let instances = master.instances().await?;
    assert_eq!(instances.len(), 20, "one fresh worker per job");
    let mut edges: Vec<(i64, i32)> = Vec::new();
    for i in &instances {
        edges.push((i.launched_at, 1));
        edges.push((i.terminated_at.unwrap_or(i64::MAX), -1));
    }
    edges.sort();
    let (mut live, mut most) = (0, 0);
    for (_, d) in edges {
        live += d;
        most = most.max(live);
    }
    assert!(most <= 5, "{most} workers were live at once");
    Ok(())
}

#[tokio::test]
async fn github_runner_lost_webhook_is_found_by_reconcile() -> anyhow::Result<()> {
    let fake = FakeGithub::start_local(REPO).await?;
    fake.lose_queued_webhooks(true);
    let master = start(&fake, 5, r#"reconcile_interval = "1s""#).await?;
    let job = fake.queue_job(LABELS, 0.2, 0).await;
    wait_job_done(&fake, job).await?;
    assert!(
        fake.calls_to("/actions/runs")
            .iter()
            .any(|c| c.method == "GET"),
        "reconcile listed the queued runs"
    );
    let builds = runner_builds(&master).await?;
    assert_eq!(builds.len(), 1, "{builds:?}");
    assert!(master
        .log()
        .contains("reconcile found a queued job without a runner"));
    wait_nothing_left(&master, &fake).await
}

#[tokio::test]
async fn github_runner_redelivered_webhook_launches_once() -> anyhow::Result<()> {
    let fake = FakeGithub::start_local(REPO).await?;
    // Reconcile runs too, and also sees the job queued.
    let master = start(&fake, 5, r#"reconcile_interval = "1s""#).await?;
    let job = fake.queue_job(LABELS, 3.0, 0).await;
    assert_eq!(
        fake.redeliver_last(true).await?,
        200,
        "same delivery id: a duplicate"
    );
    assert_eq!(
        fake.redeliver_last(false).await?,
        202,
        "a new delivery id of the same job"
    );
    wait_job_done(&fake, job).await?;
    let builds = runner_builds(&master).await?;
    assert_eq!(builds.len(), 1, "{builds:?}");
    assert_eq!(fake.calls_to("generate-jitconfig").len(), 1);
    wait_nothing_left(&master, &fake).await
}

#[tokio::test]
async fn github_runner_job_cancelled_before_start_cancels_the_launch() -> anyhow::Result<()> {
    let fake = FakeGithub::start_local(REPO).await?;
    // One worker at a time: the second job's runner build has to wait.
    let master = start(&fake, 1, "").await?;
    let first = fake.queue_job(LABELS, 4.0, 0).await;
    wait::until_true("the first job to run", WAIT, || {
        fake.job(first).is_some_and(|j| j.status == "in_progress")
    })
    .await?;
    let second = fake.queue_job(LABELS, 0.1, 0).await;
    let waiting = wait::until("the second runner build", WAIT, || async {
        let builds = runner_builds(&master).await?;
        Ok((builds.len() == 2).then(|| builds[0]["id"].as_i64().unwrap_or(0)))
    })
    .await?;
    assert_eq!(master.build(waiting).await?.state.as_str(), "queued");
    fake.cancel_job(second).await;
    let cancelled = master.wait_build(waiting, WAIT).await?;
    assert_eq!(cancelled.state.as_str(), "cancelled", "{cancelled:?}");
    assert!(
        cancelled.attempts.is_empty(),
        "it never started: {cancelled:?}"
    );
    wait_job_done(&fake, first).await?;
    assert_eq!(
        fake.calls_to("generate-jitconfig").len(),
        1,
        "no runner config for the cancelled job"
    );
    wait_nothing_left(&master, &fake).await?;
    assert_eq!(
        master.instances().await?.len(),
        1,
        "no worker launched for it"
    );
    Ok(())
}

#[tokio::test]
async fn github_runner_master_sigkill_mid_job_leaks_nothing() -> anyhow::Result<()> {
    let fake = FakeGithub::start_local(REPO).await?;
    let mut master = start(&fake, 5, r#"reconcile_interval = "1s""#).await?;
    let job = fake.queue_job(LABELS, 5.0, 0).await;
    wait::until_true("the job to run", WAIT, || {
        fake.job(job).is_some_and(|j| j.status == "in_progress")
    })
    .await?;
    master.sigkill();
    master.restart().await?;
    fake.deliver_to(&master.url(), HOOK_SECRET);
    wait_job_done(&fake, job).await?;
    let builds = runner_builds(&master).await?;
    assert_eq!(builds.len(), 1, "{builds:?}");
    let id = builds[0]["id"].as_i64().unwrap_or(0);
    let build = master.wait_build(id, WAIT).await?;
    assert_eq!(build.state.as_str(), "succeeded", "{build:?}");
    assert_eq!(
        fake.calls_to("generate-jitconfig").len(),
        1,
        "the runner was not relaunched"
    );
    wait_nothing_left(&master, &fake).await?;
    assert!(
        master.worker_processes().is_empty(),
        "no worker process is left"
    );

    // A registration of ours whose worker is gone (a runner that never
    // started, say) is removed; somebody else's stays.
    let worker = build.attempts[0].worker_id.clone();
    fake.register_runner(&format!("burst-{worker}-b{id}"));
    let foreign = fake.register_runner("someone-elses-runner");
    wait::until_true("reconcile to remove the orphan registration", WAIT, || {
        fake.runners().iter().all(|r| r.id == foreign)
    })
    .await?;
    assert_eq!(fake.runners().len(), 1, "the foreign runner stays");
    Ok(())
}

#[tokio::test]
async fn github_runner_rate_limits_slow_calls_without_failing_jobs() -> anyhow::Result<()> {
    let fake = FakeGithub::start_local(REPO).await?;
    let reset = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs()
        + 5;
    fake.fail_next([
        Fault::secondary("generate-jitconfig", 2),
        Fault::primary("generate-jitconfig", reset),
        Fault::status("generate-jitconfig", 502),
    ]);
    let master = start(&fake, 5, "").await?;
    let job = fake.queue_job(LABELS, 0.2, 0).await;
    wait_job_done(&fake, job).await?;
    assert_eq!(
        fake.job(job).and_then(|j| j.conclusion).as_deref(),
        Some("success")
    );
    let calls = fake.calls_to("generate-jitconfig");
    assert_eq!(calls.len(), 4, "three refusals, then the config");
    // Each rate-limited call was followed by a wait of what GitHub asked
    // for: Retry-After 2 s, then until the quota's reset.
    let gap = calls[1].at.duration_since(calls[0].at);
    assert!(
        gap >= Duration::from_secs(2),
        "waited only {gap:?} after Retry-After: 2"
    );
    let after_reset = calls[2]
        .wall
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    assert!(
        after_reset >= reset,
        "called again at {after_reset}, before the reset at {reset}"
    );
    let metrics = master.metrics().await?;
    assert!(
        metrics.contains("burst_github_rate_limit_waits_total 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("burst_github_api_remaining 4999"),
        "{metrics}"
    );
    let builds = runner_builds(&master).await?;
    let id = builds[0]["id"].as_i64().unwrap_or(0);
    assert_eq!(
        master.wait_build(id, WAIT).await?.state.as_str(),
        "succeeded"
    );
    Ok(())
}

#[tokio::test]
async fn github_runner_labels_no_pool_serves_launch_nothing() -> anyhow::Result<()> {
    let fake = FakeGithub::start_local(REPO).await?;
    let master = start(&fake, 5, "").await?;
    fake.queue_job(&["self-hosted", "windows", "gpu"], 0.1, 0)
        .await;
    wait::until("the unmatched job to be counted", WAIT, || async {
        let metrics = master.metrics().await?;
        Ok(metrics
            .contains(r#"burst_github_jobs_total{outcome="unmatched"} 1"#)
            .then_some(()))
    })
    .await?;
    assert!(runner_builds(&master).await?.is_empty());
    assert!(fake.calls_to("generate-jitconfig").is_empty());
    assert!(master.instances().await?.is_empty(), "no worker launched");
    // A forged delivery is refused and launches nothing either.
    let status = reqwest::Client::new()
        .post(format!("{}/hooks/github", master.url()))
        .header("x-github-event", "workflow_job")
        .header("x-hub-signature-256", "sha256=00")
        .body(r#"{"action":"queued"}"#)
        .send()
        .await?
        .status()
        .as_u16();
    assert_eq!(status, 401);
    assert!(runner_builds(&master).await?.is_empty());
    Ok(())
}
