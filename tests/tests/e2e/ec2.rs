//! The ec2 provider end to end, on loopback only: moto is EC2 (behind a
//! fault-injecting proxy), a fake IMDS serves spot notices, and the boot
//! harness runs each new instance's real user-data with burst-worker.

use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, Result};
use burst_e2e::ec2_harness::{self, Booter, Emulator};
use burst_e2e::fake_imds::FakeImds;
use burst_e2e::fault_proxy::FaultProxy;
use burst_e2e::master::last_lines as tail;
use burst_e2e::moto::{instances_with_tag, Moto};
use burst_e2e::prometheus::sample;
use burst_e2e::{wait, Master};
use serde_json::Value;

const BUILD_TIMEOUT: Duration = Duration::from_secs(90);
const LIVE: &[&str] = &["pending", "running", "stopping", "stopped"];

/// moto, the proxy before it, a fake IMDS, a boot harness and a master.
struct Env {
    _dir: tempfile::TempDir,
    _moto: Moto,
    proxy: FaultProxy,
    imds: FakeImds,
    client: aws_sdk_ec2::Client,
    booter: Booter,
    master: Master,
    /// `$MARK` of the pool's step.
    mark: std::path::PathBuf,
}

struct Pool {
    idle_timeout: &'static str,
    step: &'static str,
    max_workers: u32,
    /// A self-signed TLS master.
    tls: bool,
}

impl Default for Pool {
    fn default() -> Self {
        Pool {
            idle_timeout: "2s",
            step: "echo \"hello from $BURST_WORKER_ID\"",
            max_workers: 2,
            tls: false,
        }
    }
}

fn config(proxy: &str, imds: &str, mark: &str, p: &Pool) -> String {
    format!(
        r#"
[pools.ec2]
provider = "ec2"
labels = ["linux", "ec2"]
max_workers = {max}
max_starting = {max}
idle_timeout = "{idle}"
start_timeout = "60s"
backoff_min = "200ms"
backoff_max = "2s"

[pools.ec2.ec2]
region = "us-east-1"
endpoint_url = "{proxy}"
ami = "ami-12c6146b"
instance_types = ["t3.micro", "t3.small"]
market = "spot_with_fallback"
imds_url = "{imds}"
tags = {{ team = "e2e" }}
price_per_hour = {{ "t3.micro" = 0.0104, "t3.small" = 0.0208 }}
api_retries = 8
api_retry_min = "50ms"
api_retry_max = "400ms"

[[builders]]
name = "hello"
labels = ["linux", "ec2"]

[[builders.steps]]
name = "greet"
run = '{step}'
env = {{ MARK = "{mark}" }}
"#,
        max = p.max_workers,
        idle = p.idle_timeout,
        step = p.step,
    )
}

impl Env {
    async fn start(pool: Pool) -> Result<Env> {
        let dir = tempfile::tempdir()?;
        let Emulator {
            booter,
            client,
            imds,
            moto,
        } = Emulator::start(dir.path()).await?;
        let proxy = FaultProxy::start(&moto.url).await?;
        let mark = dir.path().join("mark");
        let text = config(&proxy.url, &imds.url, &mark.display().to_string(), &pool);
        let mut builder = ec2_harness::master(&proxy.url)
            // A short step lease: a restarted master reaps the killed one's
            // workers (they cannot reach its new port) once it ran out.
            .master_toml("heartbeat_interval = \"1s\"\nstep_lease = \"3s\"\nbuild_retries = 2")
            .section(&text);
        if pool.tls {
            builder = builder.tls_self_signed();
        }
        let master = builder.start().await?;
        Ok(Env {
            _dir: dir,
            _moto: moto,
            proxy,
            imds,
            client,
            booter,
            master,
            mark,
        })
    }

    /// The ledger row of `worker_id`.
    async fn ledger(&self, worker_id: &str) -> Result<Value> {
        self.master
            .instances_json()
            .await?
            .into_iter()
            .find(|i| i["worker_id"] == worker_id)
            .with_context(|| format!("no ledger row for {worker_id}"))
    }

    /// Waits until moto has no live burst instance.
    async fn wait_no_live_instances(&self, timeout: Duration) -> Result<()> {
        wait::until("no live burst instance in moto", timeout, || async {
            let live = instances_with_tag(&self.client, "burst:worker-id", LIVE).await?;
            Ok(live.is_empty().then_some(()))
        })
        .await
        .with_context(|| format!("master log:\n{}", tail(&self.master.log(), 40)))
    }
}

fn succeeded(b: &Value) -> bool {
    b["state"] == "succeeded"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ec2_spot_worker_boots_from_user_data_runs_the_build_and_is_terminated() -> Result<()> {
    let env = Env::start(Pool::default()).await?;
    let ids = env.master.submit("hello", &[]).await?;
    let build = env.master.finished_json(ids[0], BUILD_TIMEOUT).await?;
    assert!(
        succeeded(&build),
        "{build:#}\n{}",
        tail(&env.master.log(), 40)
    );
    let worker = build["attempts"][0]["worker_id"]
        .as_str()
        .context("worker")?
        .to_owned();

    // The ledger: an instance id, bought on spot, with type, zone and price.
    let row = env.ledger(&worker).await?;
    let instance_id = row["provider_id"]
        .as_str()
        .context("provider_id")?
        .to_owned();
    assert!(instance_id.starts_with("i-"), "{row:#}");
    let d = &row["details"];
    assert_eq!(d["market"], "spot", "{row:#}");
    assert_eq!(d["instance_type"], "t3.micro", "{row:#}");
    assert!(
        d["az"].as_str().is_some_and(|z| z.starts_with("us-east-1")),
        "{row:#}"
    );
    assert_eq!(d["price_source"], "spot-price-history", "{row:#}");
    assert!(d["price_per_hour"].as_f64().is_some(), "{row:#}");

    // Tagged at launch; IMDSv2 required; user-data carries nothing long-lived.
    let described = env
        .client
        .describe_instances()
        .instance_ids(&instance_id)
        .send()
        .await?;
    let inst = described
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .next()
        .context("instance in moto")?;
    let tags: std::collections::BTreeMap<_, _> = inst
        .tags()
        .iter()
        .filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned())))
        .collect();
    assert_eq!(tags.get("burst:master"), Some(&env.master.master_id()));
    assert_eq!(tags.get("burst:pool").map(String::as_str), Some("ec2"));
    assert_eq!(tags.get("burst:worker-id"), Some(&worker));
    assert_eq!(tags.get("team").map(String::as_str), Some("e2e"));
    let tokens = inst
        .metadata_options()
        .and_then(|m| m.http_tokens())
        .map(|t| t.as_str().to_owned());
    assert_eq!(tokens.as_deref(), Some("required"));
    assert!(env.booter.booted().contains(&instance_id));

    // The build's estimated cost, in the API and in `burst build`.
    assert!(build["estimated_cost"].as_f64().is_some(), "{build:#}");
    let out = env.master.cli(&["build", &ids[0].to_string()]).await?;
    let text = &out.stdout;
    assert!(text.contains("est. cost: $"), "{text}");

    // Idle: terminated in moto, gone in the ledger.
    env.wait_no_live_instances(Duration::from_secs(60)).await?;
    wait::until(
        "the ledger row to be gone",
        Duration::from_secs(30),
        || async {
            let row = env.ledger(&worker).await?;
            Ok((row["state"] == "gone" && row["terminated_at"].is_i64()).then_some(()))
        },
    )
    .await?;
    assert!(env.booter.errors().is_empty(), "{:?}", env.booter.errors());

    // Metrics: the priced worker's cost stays accrued after it is gone.
    let text = env.master.metrics().await?;
    let value =
        |series: &str| sample(&text, series).with_context(|| format!("{series} in\n{text}"));
    assert!(
        value("burst_cost_estimated_dollars_total{pool=\"ec2\"}")? > 0.0,
        "{text}"
    );
    assert_eq!(
        value("burst_worker_terminations_total{pool=\"ec2\",provider=\"ec2\"}")?,
        1.0
    );
    assert_eq!(
        value("burst_workers{pool=\"ec2\",state=\"idle\"}")?,
        0.0,
        "{text}"
    );
    assert!(
        value(
            "burst_provider_call_seconds_count{pool=\"ec2\",provider=\"ec2\",operation=\"launch\"}"
        )? >= 1.0
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ec2_user_data_carries_the_pin_of_a_tls_master() -> Result<()> {
    let env = Env::start(Pool {
        tls: true,
        ..Pool::default()
    })
    .await?;
    let pin = env.master.pin().context("a TLS master has a pin")?;
    let ids = env.master.submit("hello", &[]).await?;
    let build = env.master.finished_json(ids[0], BUILD_TIMEOUT).await?;
    // The booted user-data's worker dialled https:// and checked the pin.
    assert!(
        succeeded(&build),
        "{build:#}\n{}",
        tail(&env.master.log(), 40)
    );
    let worker = build["attempts"][0]["worker_id"]
        .as_str()
        .context("worker")?
        .to_owned();
    let row = env.ledger(&worker).await?;
    let instance_id = row["provider_id"].as_str().context("provider_id")?;
    let attr = env
        .client
        .describe_instance_attribute()
        .instance_id(instance_id)
        .attribute(aws_sdk_ec2::types::InstanceAttributeName::UserData)
        .send()
        .await?;
    let b64 = attr
        .user_data()
        .and_then(|u| u.value())
        .context("user-data in moto")?;
    let script = String::from_utf8(aws_smithy_types::base64::decode(b64)?)?;
    assert!(
        script.contains(&format!("BURST_MASTER_PIN='{pin}'\n")),
        "{script}"
    );
    assert!(script.contains("BURST_MASTER_URL='https://"), "{script}");
    assert!(env.booter.errors().is_empty(), "{:?}", env.booter.errors());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ec2_no_spot_capacity_falls_back_to_on_demand_through_throttling() -> Result<()> {
    let env = Env::start(Pool::default()).await?;
    env.proxy.faults.refuse_spot.store(true, Ordering::SeqCst);
    env.proxy
        .faults
        .throttle_run_instances
        .store(3, Ordering::SeqCst);
    let ids = env.master.submit("hello", &[]).await?;
    let build = env.master.finished_json(ids[0], BUILD_TIMEOUT).await?;
    assert!(
        succeeded(&build),
        "{build:#}\n{}",
        tail(&env.master.log(), 40)
    );

    let f = &env.proxy.faults;
    assert_eq!(
        f.throttled.load(Ordering::SeqCst),
        3,
        "throttled calls were retried"
    );
    // Both instance types were tried on spot before on-demand.
    assert_eq!(f.spot_refused.load(Ordering::SeqCst), 2);
    let worker = build["attempts"][0]["worker_id"]
        .as_str()
        .context("worker")?;
    let row = env.ledger(worker).await?;
    let d = &row["details"];
    assert_eq!(d["market"], "on-demand", "{row:#}");
    assert_eq!(d["fell_back_on"], "InsufficientInstanceCapacity", "{row:#}");
    assert_eq!(d["instance_type"], "t3.micro", "{row:#}");
    assert_eq!(d["price_per_hour"].as_f64(), Some(0.0104), "{row:#}");
    assert_eq!(d["price_source"], "config", "{row:#}");
    env.wait_no_live_instances(Duration::from_secs(60)).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ec2_permanent_error_fails_the_build_fast_with_the_aws_code() -> Result<()> {
    let env = Env::start(Pool::default()).await?;
    if let Ok(mut code) = env.proxy.faults.permanent_error.lock() {
        *code = Some("InvalidAMIID.NotFound".to_owned());
    }
    let ids = env.master.submit("hello", &[]).await?;
    let build = env
        .master
        .finished_json(ids[0], Duration::from_secs(30))
        .await?;
    assert_eq!(build["state"], "failed", "{build:#}");
    let reason = build["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("InvalidAMIID.NotFound"), "{build:#}");
    let failed: Vec<Value> = env.master.instances_json().await?;
    assert!(
        failed
            .iter()
            .all(|i| i["state"] == "failed" && i["provider_id"].is_null()),
        "{failed:#?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ec2_spot_interruption_notice_retries_the_build_on_another_instance() -> Result<()> {
    // The first attempt waits (and leaves a mark); the retry finds the mark.
    let env = Env::start(Pool {
        step: r#"if [ -e "$MARK" ]; then echo "second attempt"; else touch "$MARK"; sleep 120; fi"#,
        ..Pool::default()
    })
    .await?;
    let ids = env.master.submit("hello", &[]).await?;
    let id = ids[0];
    let first = wait::until("the first attempt's step to run", BUILD_TIMEOUT, || async {
        let b = env.master.build_json(id).await?;
        let step = &b["attempts"][0]["steps"][0];
        Ok((step["state"] == "running").then(|| b["attempts"][0]["worker_id"].clone()))
    })
    .await
    .with_context(|| tail(&env.master.log(), 40))?;
    // "running" means the step was sent; the notice must come after the
    // step has left its mark, or the retry would wait instead.
    wait::until_true("the first attempt to leave its mark", BUILD_TIMEOUT, || {
        env.mark.exists()
    })
    .await
    .with_context(|| tail(&env.master.log(), 40))?;
    env.imds.arm_notice();
    let build = env.master.finished_json(id, BUILD_TIMEOUT).await?;
    assert!(
        succeeded(&build),
        "{build:#}\n{}",
        tail(&env.master.log(), 40)
    );
    assert_eq!(env.imds.state.notices_served.load(Ordering::SeqCst), 1);
    let attempts = build["attempts"].as_array().context("attempts")?;
    assert_eq!(attempts.len(), 2, "{build:#}");
    assert_eq!(attempts[0]["worker_id"], first);
    assert!(
        attempts[0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("interruption notice")),
        "{build:#}"
    );
    assert_ne!(attempts[1]["worker_id"], first, "retried elsewhere");
    // The interrupted instance is terminated.
    let row = env.ledger(first.as_str().context("worker")?).await?;
    let instance = row["provider_id"]
        .as_str()
        .context("provider_id")?
        .to_owned();
    wait::until(
        "the interrupted instance to be terminated",
        Duration::from_secs(30),
        || async {
            let live = instances_with_tag(&env.client, "burst:worker-id", LIVE).await?;
            Ok((!live.iter().any(|(i, _)| *i == instance)).then_some(()))
        },
    )
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ec2_master_sigkill_then_restart_terminates_every_instance_it_owns() -> Result<()> {
    let mut env = Env::start(Pool {
        idle_timeout: "10m",
        ..Pool::default()
    })
    .await?;
    let ids = env.master.submit("hello", &[]).await?;
    let build = env.master.finished_json(ids[0], BUILD_TIMEOUT).await?;
    assert!(succeeded(&build), "{build:#}");
    // An idle worker stays up (long idle timeout); add an orphan the ledger
    // never saw (this master's tags), and a stranger (another master's).
    let tag = |k: &str, v: &str| aws_sdk_ec2::types::Tag::builder().key(k).value(v).build();
    let launch = |master: String, worker: &'static str| {
        let client = env.client.clone();
        async move {
            let spec = aws_sdk_ec2::types::TagSpecification::builder()
                .resource_type(aws_sdk_ec2::types::ResourceType::Instance)
                .tags(tag("burst:master", &master))
                .tags(tag("burst:pool", "ec2"))
                .tags(tag("burst:worker-id", worker))
                .build();
            let out = client
                .run_instances()
                .image_id("ami-12c6146b")
                .min_count(1)
                .max_count(1)
                .tag_specifications(spec)
                .send()
                .await?;
            out.instances()
                .first()
                .and_then(|i| i.instance_id())
                .map(str::to_owned)
                .context("instance id")
        }
    };
    let orphan = launch(env.master.master_id(), "ec2-orphan").await?;
    let stranger = launch("another-master".to_owned(), "ec2-stranger").await?;

    env.master.sigkill();
    env.master.restart().await?;

    wait::until(
        "only the stranger left running",
        Duration::from_secs(60),
        || async {
            let live = instances_with_tag(&env.client, "burst:worker-id", LIVE).await?;
            let ids: Vec<&str> = live.iter().map(|(i, _)| i.as_str()).collect();
            Ok((ids == [stranger.as_str()]).then_some(()))
        },
    )
    .await
    .with_context(|| tail(&env.master.log(), 60))?;
    let worker = build["attempts"][0]["worker_id"]
        .as_str()
        .context("worker")?;
    wait::until(
        "the idle worker's ledger row to be gone",
        Duration::from_secs(30),
        || async { Ok((env.ledger(worker).await?["state"] == "gone").then_some(())) },
    )
    .await?;
    let all = instances_with_tag(&env.client, "burst:worker-id", &["terminated"]).await?;
    assert!(
        all.iter().any(|(i, _)| *i == orphan),
        "orphan terminated: {all:?}"
    );
    Ok(())
}

/// The `BURST_TOKEN='…'` value in a rendered Linux user-data script.
fn user_data_token(script: &str) -> Option<String> {
    script
        .lines()
        .find_map(|l| l.strip_prefix("BURST_TOKEN='"))
        .and_then(|rest| rest.strip_suffix('\''))
        .map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ec2_user_data_hands_the_token_over_in_a_file_the_worker_deletes() -> Result<()> {
    // What a step can read of its worker: its initial environment and
    // arguments, and whether the token file is still there.
    let env = Env::start(Pool {
        step: r#"tr "\000" "\n" < /proc/$PPID/environ; tr "\000" " " < /proc/$PPID/cmdline; echo; f=$(tr "\000" "\n" < /proc/$PPID/environ | sed -n "s/^BURST_TOKEN_FILE=//p"); if [ -n "$f" ] && [ ! -e "$f" ]; then echo token-file-gone; fi"#,
        ..Pool::default()
    })
    .await?;
    let ids = env.master.submit("hello", &[]).await?;
    let build = env.master.finished_json(ids[0], BUILD_TIMEOUT).await?;
    assert!(
        succeeded(&build),
        "{build:#}\n{}",
        tail(&env.master.log(), 40)
    );
    let worker = build["attempts"][0]["worker_id"]
        .as_str()
        .context("worker")?
        .to_owned();
    let instance_id = env.ledger(&worker).await?["provider_id"]
        .as_str()
        .context("provider_id")?
        .to_owned();
    // The user-data (which IMDS serves) still holds the token; the worker
    // spent it on its first hello, before the step ran.
    let attr = env
        .client
        .describe_instance_attribute()
        .instance_id(&instance_id)
        .attribute(aws_sdk_ec2::types::InstanceAttributeName::UserData)
        .send()
        .await?;
    let b64 = attr
        .user_data()
        .and_then(|u| u.value())
        .context("user-data")?;
    let script = String::from_utf8(aws_smithy_types::base64::decode(b64)?)?;
    let token = user_data_token(&script).with_context(|| format!("no token in {script}"))?;
    let log = env.master.log_text(ids[0]).await?;
    assert!(log.contains("token-file-gone"), "{log}");
    assert!(log.contains("BURST_TOKEN_FILE="), "{log}");
    assert!(!log.contains(&token), "the step found the token:\n{log}");
    assert!(!log.contains("BURST_TOKEN="), "{log}");
    Ok(())
}
