//! Ephemeral GitHub Actions runners (`[github]`), against the fake GitHub
//! of `src/fake_github.rs` and the fake runner of
//! `fixtures/fake-runner/run.sh`: one fresh worker and one JIT config per
//! job, caps, lost and redelivered webhooks, a job cancelled before its
//! runner started, a master SIGKILL mid-job, rate limits and labels no pool
//! serves. Every scenario runs on a local, a Docker and an EC2 (moto) pool:
//! `github_runners::{local,docker,ec2}::*`.

use std::path::PathBuf;
use std::time::Duration;

use burst_e2e::docker_support::{
    bridge_gateway, pool_containers, require_docker_and_runner_image, runner_image, unique,
    Cleanup, DockerPool,
};
use burst_e2e::ec2_harness::{self, Emulator};
use burst_e2e::fake_github::{FakeGithub, Fault};
use burst_e2e::moto::{free_port, instances_with_tag};
use burst_e2e::{wait, BuildId, Master, MasterBuilder};
use serde_json::Value;

pub(crate) const HOOK_SECRET: &str = "gh-runner-hook-secret";
const TOKEN: &str = "fake-fine-grained-token";
pub(crate) const REPO: &str = "acme/app";
pub(crate) const LABELS: &[&str] = &["self-hosted", "linux", "burst"];
const WAIT: Duration = Duration::from_secs(120);
/// Where `runner_image()` has the fake runner.
const DOCKER_RUNNER_DIR: &str = "/opt/actions-runner";
const LIVE: &[&str] = &["pending", "running", "stopping", "stopped"];

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

/// The pool kinds every scenario runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum On {
    /// Local processes, the fake runner in this checkout.
    Local,
    /// Containers of [`runner_image()`], the fake runner in its
    /// /opt/actions-runner, the fake GitHub on the bridge's gateway.
    Docker,
    /// moto's instances, booted by the harness from their real user-data:
    /// host processes, so the runner is this checkout's.
    Ec2,
}

/// What a scenario needs besides the master: its EC2 emulator.
struct Ec2Parts {
    emulator: Emulator,
    _dir: tempfile::TempDir,
}

/// A fake GitHub and a master whose one runner entry serves pool `gh` of
/// kind `on`. Fields drop in order: the master goes before its containers
/// are swept and its instances' processes killed.
pub(crate) struct Rig {
    pub fake: FakeGithub,
    pub master: Master,
    on: On,
    docker: Option<Cleanup>,
    ec2: Option<Ec2Parts>,
}

impl Rig {
    /// Pool `gh` (`max_builds = 1`, at most `max_workers`) and `[github]`
    /// with the `extra` keys. Workers find a restarted master on the same
    /// gRPC port.
    pub(crate) async fn start(on: On, max_workers: u32, extra: &str) -> anyhow::Result<Rig> {
        let port = free_port()?;
        let (fake, builder, docker, ec2) = match on {
            On::Local => {
                let fake = FakeGithub::start_local(REPO).await?;
                let dir = fake_runner_dir().display().to_string();
                let config = format!(
                    "[pools.gh]\nprovider = \"local\"\nlabels = [\"linux\"]\nmax_builds = 1\n\
                     max_workers = {max_workers}\nidle_timeout = \"5s\"\n{}",
                    github_section(&fake, "gh", &dir, extra)
                );
                let builder =
                    MasterBuilder::config(&config).grpc_listen(&format!("127.0.0.1:{port}"));
                (fake, builder, None, None)
            }
            On::Docker => {
                require_docker_and_runner_image()?;
                // Containers reach the host at the bridge's gateway: the
                // fake listens there, and its JIT configs name it.
                let gateway = bridge_gateway()?;
                let fake = FakeGithub::start(gateway, gateway, REPO).await?;
                let pool = unique("gh");
                let cleanup = Cleanup::new(&pool);
                let builder = DockerPool::new(&pool)
                    .image(&runner_image())
                    .pool(&format!(
                        "max_builds = 1\nmax_workers = {max_workers}\nidle_timeout = \"5s\""
                    ))
                    .master()
                    .grpc_listen(&format!("0.0.0.0:{port}"))
                    .section(&github_section(&fake, &pool, DOCKER_RUNNER_DIR, extra));
                (fake, builder, Some(cleanup), None)
            }
            On::Ec2 => {
                let fake = FakeGithub::start_local(REPO).await?;
                let dir = tempfile::tempdir()?;
                let emulator = Emulator::start(dir.path()).await?;
                let (moto, imds) = (&emulator.moto, &emulator.imds);
                let runner = fake_runner_dir().display().to_string();
                let pool = format!(
                    r#"
[pools.gh]
provider = "ec2"
labels = ["linux"]
max_builds = 1
max_workers = {max_workers}
max_starting = {max_workers}
idle_timeout = "5s"
start_timeout = "60s"
backoff_min = "200ms"
backoff_max = "2s"

[pools.gh.ec2]
region = "us-east-1"
endpoint_url = "{moto}"
ami = "ami-12c6146b"
instance_types = ["t3.micro"]
market = "spot_with_fallback"
imds_url = "{imds}"
price_per_hour = {{ "t3.micro" = 0.0104 }}
"#,
                    moto = moto.url,
                    imds = imds.url,
                );
                let builder = ec2_harness::master(&moto.url)
                    .grpc_listen(&format!("127.0.0.1:{port}"))
                    .section(&pool)
                    .section(&github_section(&fake, "gh", &runner, extra));
                let parts = Ec2Parts {
                    emulator,
                    _dir: dir,
                };
                (fake, builder, None, Some(parts))
            }
        };
        let master = builder
            .env("GH_HOOK", HOOK_SECRET)
            .env("GH_TOKEN", TOKEN)
            .start()
            .await?;
        fake.deliver_to(&master.url(), HOOK_SECRET);
        Ok(Rig {
            fake,
            master,
            on,
            docker,
            ec2,
        })
    }

    /// Kills the master and starts it again where its workers find it.
    async fn restart_after_sigkill(&mut self) -> anyhow::Result<()> {
        self.master.sigkill();
        self.master.restart().await?;
        self.fake.deliver_to(&self.master.url(), HOOK_SECRET);
        Ok(())
    }

    /// Nothing is left: no worker, no live ledger row, no registration, and
    /// none of the pool's own things — worker processes, containers, or
    /// live instances and their booted processes.
    async fn wait_nothing_left(&self) -> anyhow::Result<()> {
        let master = &self.master;
        wait::until("every runner worker to be gone", WAIT, || async {
            let gone =
                master.workers().await?.is_empty() && master.live_instances().await?.is_empty();
            Ok(gone.then_some(()))
        })
        .await?;
        wait::until_true("no runner registration to be left", WAIT, || {
            self.fake.runners().is_empty()
        })
        .await?;
        match self.on {
            On::Local => {}
            On::Docker => {
                let pool = &self
                    .docker
                    .as_ref()
                    .map(|c| c.pool.clone())
                    .unwrap_or_default();
                wait::until("the pool's containers to be removed", WAIT, || async {
                    Ok(pool_containers(pool)?.is_empty().then_some(()))
                })
                .await?;
            }
            On::Ec2 => {
                let Some(ec2) = &self.ec2 else { return Ok(()) };
                wait::until("no live instance in moto", WAIT, || async {
                    let live =
                        instances_with_tag(&ec2.emulator.client, "burst:worker-id", LIVE).await?;
                    Ok(live.is_empty().then_some(()))
                })
                .await?;
                anyhow::ensure!(
                    ec2.emulator.booter.errors().is_empty(),
                    "boot harness: {:?}",
                    ec2.emulator.booter.errors()
                );
            }
        }
        let procs = master.worker_processes();
        anyhow::ensure!(procs.is_empty(), "worker processes are left: {procs:?}");
        Ok(())
    }
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

/// The one-job scenario: one webhook, one fresh worker, one JIT config,
/// the runner exits, the worker is gone.
async fn one_job_one_fresh_worker_then_gone(on: On) -> anyhow::Result<()> {
    let rig = Rig::start(on, 5, "").await?;
    one_job(&rig.master, &rig.fake).await?;
    let instances = rig.master.instances().await?;
    let provider = format!("{on:?}").to_lowercase();
    assert_eq!(instances[0].provider, provider, "{instances:?}");
    if let Some(ec2) = &rig.ec2 {
        assert_eq!(ec2.emulator.booter.booted().len(), 1, "one instance booted");
        // The job's cost: attempt time × the instance's price, beside it.
        let id = runner_builds(&rig.master).await?[0]["id"]
            .as_i64()
            .unwrap_or(0);
        let detail = rig.master.build_json(id).await?;
        let cost = detail["estimated_cost"].as_f64().unwrap_or(0.0);
        assert!(cost > 0.0, "a priced instance costs something: {detail}");
        assert_eq!(detail["github_jobs"].as_array().map(Vec::len), Some(1));
        let page = rig.master.ui_get(&format!("/builds/{id}")).await?;
        assert!(
            page.contains("Cost (estimate)") && page.contains("GitHub job"),
            "the build page shows the job and its cost:\n{page}"
        );
    }
    rig.wait_nothing_left().await
}

pub(crate) async fn one_job(master: &Master, fake: &FakeGithub) -> anyhow::Result<()> {
    let job = fake.queue_job(LABELS, 0.5, 0).await;
    wait_job_done(fake, job)
        .await
        .map_err(|e| with_logs(e, master, fake))?;
    let builds = runner_builds(master).await?;
    assert_eq!(builds.len(), 1, "one runner build: {builds:?}");
    let id = builds[0]["id"].as_i64().unwrap_or(0);
    let build = master.wait_build(id, WAIT).await?;
    let log = master.log_text(id).await?;
    assert_eq!(build.state.as_str(), "succeeded", "{build:?}\n{log}");
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
    assert!(
        log.contains(&format!("fake runner: job {job} done")),
        "{log}"
    );
    assert_no_jit_shown(master, fake, id).await?;
    wait::until("the worker to be gone", WAIT, || async {
        Ok(master.live_instances().await?.is_empty().then_some(()))
    })
    .await?;
    let instances = master.instances().await?;
    assert_eq!(instances.len(), 1, "one worker was launched: {instances:?}");
    Ok(())
}

/// A failed wait, with what the runner builds printed and the master's log
/// tail: a runner that cannot start says why there.
fn with_logs(e: anyhow::Error, master: &Master, fake: &FakeGithub) -> anyhow::Error {
    let calls = fake.calls();
    let last: Vec<String> = calls
        .iter()
        .skip(calls.len().saturating_sub(20))
        .map(|c| format!("{} {}", c.method, c.path))
        .collect();
    e.context(format!(
        "fake GitHub's last {} of {} calls: {last:?}\nmaster log:\n{}",
        last.len(),
        calls.len(),
        master.log_tail()
    ))
}

async fn twenty_jobs_never_more_than_five_runners(on: On) -> anyhow::Result<()> {
    let rig = Rig::start(on, 5, "").await?;
    let (master, fake) = (&rig.master, &rig.fake);
    let mut jobs = Vec::new();
    for _ in 0..20 {
        jobs.push(fake.queue_job(LABELS, 1.0, 0).await);
    }
    for job in &jobs {
        wait_job_done(fake, *job)
            .await
            .map_err(|e| with_logs(e, master, fake))?;
    }
    assert!(
        fake.max_in_progress() <= 5,
        "at most 5 jobs ran at once, saw {}",
        fake.max_in_progress()
    );
    for j in fake.jobs() {
        assert_eq!(j.conclusion.as_deref(), Some("success"), "{j:?}");
    }
    let builds = runner_builds(master).await?;
    assert_eq!(builds.len(), 20);
    assert_eq!(fake.calls_to("generate-jitconfig").len(), 20);
    rig.wait_nothing_left().await?;
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

async fn lost_webhook_is_found_by_reconcile(on: On) -> anyhow::Result<()> {
    let rig = Rig::start(on, 5, r#"reconcile_interval = "1s""#).await?;
    let (master, fake) = (&rig.master, &rig.fake);
    fake.lose_queued_webhooks(true);
    let job = fake.queue_job(LABELS, 0.2, 0).await;
    wait_job_done(fake, job)
        .await
        .map_err(|e| with_logs(e, master, fake))?;
    assert!(
        fake.calls_to("/actions/runs")
            .iter()
            .any(|c| c.method == "GET"),
        "reconcile listed the queued runs"
    );
    let builds = runner_builds(master).await?;
    assert_eq!(builds.len(), 1, "{builds:?}");
    assert!(master
        .log()
        .contains("reconcile found a queued job without a runner"));
    rig.wait_nothing_left().await
}

async fn redelivered_webhook_launches_once(on: On) -> anyhow::Result<()> {
    // Reconcile runs too, and also sees the job queued.
    let rig = Rig::start(on, 5, r#"reconcile_interval = "1s""#).await?;
    let (master, fake) = (&rig.master, &rig.fake);
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
    wait_job_done(fake, job)
        .await
        .map_err(|e| with_logs(e, master, fake))?;
    let builds = runner_builds(master).await?;
    assert_eq!(builds.len(), 1, "{builds:?}");
    assert_eq!(fake.calls_to("generate-jitconfig").len(), 1);
    rig.wait_nothing_left().await
}

async fn job_cancelled_before_start_cancels_the_launch(on: On) -> anyhow::Result<()> {
    // One worker at a time: the second job's runner build has to wait.
    let rig = Rig::start(on, 1, "").await?;
    let (master, fake) = (&rig.master, &rig.fake);
    let first = fake.queue_job(LABELS, 4.0, 0).await;
    wait::until_true("the first job to run", WAIT, || {
        fake.job(first).is_some_and(|j| j.status == "in_progress")
    })
    .await
    .map_err(|e| with_logs(e, master, fake))?;
    let second = fake.queue_job(LABELS, 0.1, 0).await;
    let waiting = wait::until("the second runner build", WAIT, || async {
        let builds = runner_builds(master).await?;
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
    wait_job_done(fake, first).await?;
    assert_eq!(
        fake.calls_to("generate-jitconfig").len(),
        1,
        "no runner config for the cancelled job"
    );
    rig.wait_nothing_left().await?;
    assert_eq!(
        master.instances().await?.len(),
        1,
        "no worker launched for it"
    );
    Ok(())
}

async fn master_sigkill_mid_job_leaks_nothing(on: On) -> anyhow::Result<()> {
    let mut rig = Rig::start(on, 5, r#"reconcile_interval = "1s""#).await?;
    let job = rig.fake.queue_job(LABELS, 5.0, 0).await;
    wait::until_true("the job to run", WAIT, || {
        rig.fake.job(job).is_some_and(|j| j.status == "in_progress")
    })
    .await
    .map_err(|e| with_logs(e, &rig.master, &rig.fake))?;
    rig.restart_after_sigkill().await?;
    let (master, fake) = (&rig.master, &rig.fake);
    wait_job_done(fake, job)
        .await
        .map_err(|e| with_logs(e, master, fake))?;
    let builds = runner_builds(master).await?;
    assert_eq!(builds.len(), 1, "{builds:?}");
    let id = builds[0]["id"].as_i64().unwrap_or(0);
    let build = master.wait_build(id, WAIT).await?;
    assert_eq!(build.state.as_str(), "succeeded", "{build:?}");
    assert_eq!(
        fake.calls_to("generate-jitconfig").len(),
        1,
        "the runner was not relaunched"
    );
    rig.wait_nothing_left().await?;

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

async fn rate_limits_slow_calls_without_failing_jobs(on: On) -> anyhow::Result<()> {
    let rig = Rig::start(on, 5, "").await?;
    let (master, fake) = (&rig.master, &rig.fake);
    let reset = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs()
        + 5;
    fake.fail_next([
        Fault::secondary("generate-jitconfig", 2),
        Fault::primary("generate-jitconfig", reset),
        Fault::status("generate-jitconfig", 502),
    ]);
    let job = fake.queue_job(LABELS, 0.2, 0).await;
    wait_job_done(fake, job)
        .await
        .map_err(|e| with_logs(e, master, fake))?;
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
    let builds = runner_builds(master).await?;
    let id = builds[0]["id"].as_i64().unwrap_or(0);
    assert_eq!(
        master.wait_build(id, WAIT).await?.state.as_str(),
        "succeeded"
    );
    rig.wait_nothing_left().await
}

async fn labels_no_pool_serves_launch_nothing(on: On) -> anyhow::Result<()> {
    let rig = Rig::start(on, 5, "").await?;
    let (master, fake) = (&rig.master, &rig.fake);
    fake.queue_job(&["self-hosted", "windows", "gpu"], 0.1, 0)
        .await;
    wait::until("the unmatched job to be counted", WAIT, || async {
        let metrics = master.metrics().await?;
        Ok(metrics
            .contains(r#"burst_github_jobs_total{outcome="unmatched"} 1"#)
            .then_some(()))
    })
    .await?;
    assert!(runner_builds(master).await?.is_empty());
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
    // The App's ping is answered when signed with the webhook secret, and
    // refused when not.
    assert_eq!(fake.ping(HOOK_SECRET).await?, 200, "a signed ping");
    assert_eq!(fake.ping("not-the-secret").await?, 401, "a forged ping");
    assert!(runner_builds(master).await?.is_empty());
    rig.wait_nothing_left().await
}

/// Every scenario, as a test on each pool kind.
macro_rules! on_every_pool {
    ($($scenario:ident),* $(,)?) => {
        mod local {
            $(#[tokio::test]
            async fn $scenario() -> anyhow::Result<()> {
                super::$scenario(super::On::Local).await
            })*
        }
        mod docker {
            $(#[tokio::test]
            async fn $scenario() -> anyhow::Result<()> {
                super::$scenario(super::On::Docker).await
            })*
        }
        mod ec2 {
            $(#[tokio::test]
            async fn $scenario() -> anyhow::Result<()> {
                super::$scenario(super::On::Ec2).await
            })*
        }
    };
}

on_every_pool!(
    one_job_one_fresh_worker_then_gone,
    twenty_jobs_never_more_than_five_runners,
    lost_webhook_is_found_by_reconcile,
    redelivered_webhook_launches_once,
    job_cancelled_before_start_cancels_the_launch,
    master_sigkill_mid_job_leaks_nothing,
    rate_limits_slow_calls_without_failing_jobs,
    labels_no_pool_serves_launch_nothing,
);

#[tokio::test]
async fn github_runner_app_credentials_mint_installation_tokens() -> anyhow::Result<()> {
    let fake = FakeGithub::start_local(REPO).await?;
    let dir = tempfile::tempdir()?;
    let key = app_key(dir.path())?;
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
        pool = "[pools.gh]\nprovider = \"local\"\nlabels = [\"linux\"]\nmax_builds = 1\nmax_workers = 5\n",
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

/// A runner whose job was cancelled after its worker started waits for a
/// job that will never come: reconcile removes its registration (never a
/// busy one: GitHub refuses) and cancels its build, long before
/// `job_timeout`, and the worker goes.
#[tokio::test]
async fn github_runner_idle_runner_with_no_job_left_is_removed_and_its_worker_goes(
) -> anyhow::Result<()> {
    let rig = Rig::start(On::Local, 5, r#"reconcile_interval = "1s""#).await?;
    let (master, fake) = (&rig.master, &rig.fake);
    fake.hold_jobs(true);
    let job = fake.queue_job(LABELS, 0.2, 0).await;
    wait::until_true("the runner to come online", WAIT, || {
        fake.runners().iter().any(|r| r.status == "online")
    })
    .await
    .map_err(|e| with_logs(e, master, fake))?;
    fake.cancel_job(job).await;
    let builds = runner_builds(master).await?;
    let id = builds[0]["id"].as_i64().unwrap_or(0);
    let build = master.wait_build(id, WAIT).await?;
    // Cancelled, or failed when the runner saw its registration go first.
    assert!(
        matches!(build.state.as_str(), "cancelled" | "failed"),
        "{build:?}"
    );
    rig.wait_nothing_left().await?;
    let metrics = master.metrics().await?;
    assert!(
        metrics.contains(r#"burst_github_runners_removed_total{outcome="idle"} 1"#),
        "{metrics}"
    );

    // A runner that has a job is busy: it is never removed, and its job
    // ends as it should.
    fake.hold_jobs(false);
    let busy = fake.queue_job(LABELS, 4.0, 0).await;
    wait_job_done(fake, busy).await?;
    assert_eq!(
        fake.job(busy).and_then(|j| j.conclusion).as_deref(),
        Some("success")
    );
    let deletes = fake
        .calls_to("/actions/runners/")
        .iter()
        .filter(|c| c.method == "DELETE")
        .count();
    assert_eq!(deletes, 1, "only the idle runner was removed");
    Ok(())
}

/// A run's jobs after its first one started are queued in an in_progress
/// run: reconcile finds them there too when their webhooks were lost.
#[tokio::test]
async fn github_runner_reconcile_finds_queued_jobs_of_a_running_workflow() -> anyhow::Result<()> {
    let rig = Rig::start(On::Local, 5, r#"reconcile_interval = "1s""#).await?;
    let (master, fake) = (&rig.master, &rig.fake);
    let first = fake.queue_job(LABELS, 3.0, 0).await;
    wait::until_true("the first job to run", WAIT, || {
        fake.job(first).is_some_and(|j| j.status == "in_progress")
    })
    .await
    .map_err(|e| with_logs(e, master, fake))?;
    let run = fake.job(first).map(|j| j.run_id);
    fake.lose_queued_webhooks(true);
    let second = fake.queue_job_in(run, LABELS, 0.2, 0).await;
    wait_job_done(fake, second)
        .await
        .map_err(|e| with_logs(e, master, fake))?;
    wait_job_done(fake, first).await?;
    assert_eq!(runner_builds(master).await?.len(), 2);
    rig.wait_nothing_left().await
}

/// `org = "acme"`: runners register on the organization (its endpoints),
/// reconcile lists the organization's repositories (a token's listing, or
/// the App installation's) and removes orphan registrations there.
async fn org_runners(app: bool) -> anyhow::Result<()> {
    let fake = FakeGithub::start_local(REPO).await?;
    let dir = tempfile::tempdir()?;
    let key = app_key(dir.path())?;
    let credentials = if app {
        format!(
            "app_id = 4242\nprivate_key_file = \"{}\"\ninstallations = {{ acme = 77 }}",
            key.display()
        )
    } else {
        "token_secret = \"GH_TOKEN\"".to_owned()
    };
    let config = format!(
        r#"
[pools.gh]
provider = "local"
labels = ["linux"]
max_builds = 1
max_workers = 5

[secrets]
GH_HOOK = {{ env = "GH_HOOK" }}
GH_TOKEN = {{ env = "GH_TOKEN" }}

[github]
api_url = "{api}"
{credentials}
webhook_secret = "GH_HOOK"
org = "acme"
runner_dir = "{runner_dir}"
reconcile_interval = "1s"

[[github.runners]]
pool = "gh"
labels = ["self-hosted", "Linux", "burst"]
"#,
        api = fake.url(),
        runner_dir = fake_runner_dir().display(),
    );
    let master = MasterBuilder::config(&config)
        .env("GH_HOOK", HOOK_SECRET)
        .env("GH_TOKEN", TOKEN)
        .start()
        .await?;
    fake.deliver_to(&master.url(), HOOK_SECRET);
    one_job(&master, &fake).await?;
    let jit = fake.calls_to("generate-jitconfig");
    assert_eq!(
        jit[0].path, "/orgs/acme/actions/runners/generate-jitconfig",
        "an organization runner"
    );
    let listing = if app {
        "/installation/repositories"
    } else {
        "/orgs/acme/repos"
    };
    wait::until_true(
        "reconcile to list the organization's repositories",
        WAIT,
        || !fake.calls_to(listing).is_empty(),
    )
    .await?;
    wait::until_true("reconcile to list the repository's runs", WAIT, || {
        !fake.calls_to("/repos/acme/app/actions/runs").is_empty()
    })
    .await?;
    // An orphan registration of ours goes, on the organization.
    let build = &runner_builds(&master).await?[0];
    let id = build["id"].as_i64().unwrap_or(0);
    let worker = master.build(id).await?.attempts[0].worker_id.clone();
    fake.register_runner(&format!("burst-{worker}-b{id}"));
    wait::until_true("reconcile to remove the orphan registration", WAIT, || {
        fake.runners().is_empty()
    })
    .await?;
    assert!(
        fake.calls_to("/orgs/acme/actions/runners/")
            .iter()
            .any(|c| c.method == "DELETE"),
        "removed through the organization's endpoint"
    );
    Ok(())
}

#[tokio::test]
async fn github_runner_org_runners_with_a_token() -> anyhow::Result<()> {
    org_runners(false).await
}

#[tokio::test]
async fn github_runner_org_runners_with_an_app() -> anyhow::Result<()> {
    org_runners(true).await
}

/// A job that fails is the job's failure: its record says so, next to a
/// runner build that succeeded (the runner did its work).
#[tokio::test]
async fn github_runner_failed_job_is_recorded_with_its_conclusion() -> anyhow::Result<()> {
    let rig = Rig::start(On::Local, 5, "").await?;
    let (master, fake) = (&rig.master, &rig.fake);
    let job = fake.queue_job(LABELS, 0.2, 1).await;
    wait_job_done(fake, job)
        .await
        .map_err(|e| with_logs(e, master, fake))?;
    let id = runner_builds(master).await?[0]["id"].as_i64().unwrap_or(0);
    let build = master.wait_build(id, WAIT).await?;
    assert_eq!(build.state.as_str(), "succeeded", "{build:?}");
    let detail = master.build_json(id).await?;
    assert_eq!(
        detail["github_jobs"][0]["conclusion"], "failure",
        "{detail}"
    );
    assert_eq!(detail["github_jobs"][0]["ran_build"].as_i64(), Some(id));
    let page = master.ui_get(&format!("/builds/{id}")).await?;
    assert!(
        page.contains(": failure"),
        "the build page shows the job's conclusion:\n{page}"
    );
    rig.wait_nothing_left().await
}

/// A runner that never comes online (a broken image, say) is removed once
/// it has been offline for `offline_runner_timeout`, and its build is
/// cancelled. The job is still queued, so another runner build follows,
/// up to three; then burst stops launching for it and says so.
#[tokio::test]
async fn github_runner_offline_runner_is_removed_and_the_job_relaunched_at_most_thrice(
) -> anyhow::Result<()> {
    let extra = r#"reconcile_interval = "1s"
offline_runner_timeout = "2s"
runner_command = "exec sleep 60""#;
    let rig = Rig::start(On::Local, 5, extra).await?;
    let (master, fake) = (&rig.master, &rig.fake);
    let job = fake.queue_job(LABELS, 0.2, 0).await;
    let builds = wait_launches_given_up(master, fake).await?;
    assert_eq!(builds.len(), 3, "three launches, no more: {builds:?}");
    for build in &builds {
        assert_eq!(build.state.as_str(), "cancelled", "{build:?}");
    }
    assert_eq!(fake.calls_to("generate-jitconfig").len(), 3);
    let metrics = master.metrics().await?;
    assert!(
        metrics.contains(r#"burst_github_runners_removed_total{outcome="offline"} 3"#),
        "{metrics}"
    );
    assert_eq!(
        fake.job(job).map(|j| j.status).as_deref(),
        Some("queued"),
        "nobody ran it"
    );
    rig.wait_nothing_left().await
}

/// GitHub refusing a runner config outright (404: a repository outside the
/// installation) fails the runner build at once, naming the answer; the
/// still-queued job is tried again up to three times, then left.
#[tokio::test]
async fn github_runner_refused_config_fails_the_build_naming_githubs_answer() -> anyhow::Result<()>
{
    let rig = Rig::start(On::Local, 5, r#"reconcile_interval = "1s""#).await?;
    let (master, fake) = (&rig.master, &rig.fake);
    fake.fail_next([
        Fault::status("generate-jitconfig", 404),
        Fault::status("generate-jitconfig", 404),
        Fault::status("generate-jitconfig", 404),
    ]);
    fake.queue_job(LABELS, 0.2, 0).await;
    let builds = wait_launches_given_up(master, fake).await?;
    assert_eq!(builds.len(), 3, "{builds:?}");
    for build in &builds {
        assert_eq!(build.state.as_str(), "failed", "{build:?}");
        let reason = build.reason.clone().unwrap_or_default();
        assert!(
            reason.contains("404") && reason.contains("runner config"),
            "the reason names GitHub's answer: {reason}"
        );
    }
    assert_eq!(
        fake.calls_to("generate-jitconfig").len(),
        3,
        "no retries of a 404"
    );
    rig.wait_nothing_left().await
}

/// `max_jit_configs_per_minute = 1`: two jobs at once get their configs a
/// minute apart, and both run.
#[tokio::test]
async fn github_runner_jit_configs_per_minute_are_capped() -> anyhow::Result<()> {
    let rig = Rig::start(On::Local, 5, "max_jit_configs_per_minute = 1").await?;
    let (master, fake) = (&rig.master, &rig.fake);
    let jobs = [
        fake.queue_job(LABELS, 0.2, 0).await,
        fake.queue_job(LABELS, 0.2, 0).await,
    ];
    for job in jobs {
        wait_job_done(fake, job)
            .await
            .map_err(|e| with_logs(e, master, fake))?;
    }
    let calls = fake.calls_to("generate-jitconfig");
    assert_eq!(calls.len(), 2);
    let gap = calls[1].at.duration_since(calls[0].at);
    assert!(
        gap >= Duration::from_secs(59),
        "the second config came {gap:?} after the first"
    );
    rig.wait_nothing_left().await
}

/// Waits until burst gave up on a job whose runner builds kept ending
/// without running it, and returns those builds, finished.
async fn wait_launches_given_up(
    master: &Master,
    fake: &FakeGithub,
) -> anyhow::Result<Vec<burst_master::model::Build>> {
    wait::until_true("burst to stop launching for the job", WAIT, || {
        master
            .log()
            .contains("runner builds ended without running it; launching no more")
    })
    .await
    .map_err(|e| with_logs(e, master, fake))?;
    let mut finished = Vec::new();
    for b in runner_builds(master).await? {
        finished.push(
            master
                .wait_build(b["id"].as_i64().unwrap_or(0), WAIT)
                .await?,
        );
    }
    Ok(finished)
}

/// The test App's private key, written into `dir`.
fn app_key(dir: &std::path::Path) -> anyhow::Result<PathBuf> {
    let key = dir.join("app.pem");
    std::fs::write(
        &key,
        include_str!("../../../master/src/github/test_app_key.pem"),
    )?;
    Ok(key)
}
