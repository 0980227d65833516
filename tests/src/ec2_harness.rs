//! The pieces of an EC2 end-to-end run on one machine: the environment
//! that points a master (from the one [`MasterBuilder`]) at moto, and a
//! "boot" harness that plays EC2's part of
//! starting instances: it watches moto for new instances, decodes each one's
//! user-data and runs it (the real script, with burst-worker on hand), and
//! kills the "instance" when moto says it was terminated.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use aws_sdk_ec2::Client;
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

use crate::moto::fake_aws_env;
use crate::{Bins, MasterBuilder};

/// A master for pools that talk to the fake AWS at `endpoint` (moto or
/// the fault proxy before it): the SDK's environment points there.
pub fn master(endpoint: &str) -> MasterBuilder {
    MasterBuilder::new()
        .envs(
            fake_aws_env(endpoint)
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v)),
        )
        .rust_log("info,aws=warn")
}

/// What an EC2 pool's test runs on: moto, a fake IMDS (spot notices), an
/// EC2 client on moto and the boot harness. Dropped, it kills the booted
/// instances' processes and moto.
pub struct Emulator {
    pub booter: Booter,
    pub client: Client,
    pub imds: crate::fake_imds::FakeImds,
    pub moto: crate::moto::Moto,
}

impl Emulator {
    /// Instances get their directories under `dir`; workers poll the IMDS
    /// every 100 ms.
    pub async fn start(dir: &Path) -> Result<Emulator> {
        let moto = crate::moto::Moto::start().await?;
        let imds = crate::fake_imds::FakeImds::start().await?;
        let client = crate::moto::ec2_client(&moto.url).await;
        let booter = Booter::start(
            client.clone(),
            &dir.join("instances"),
            vec![("BURST_IMDS_POLL".into(), "100ms".into())],
        )?;
        Ok(Emulator {
            booter,
            client,
            imds,
            moto,
        })
    }
}

// ---------------------------------------------------------------- booting

struct Booted {
    child: Option<Child>,
    pid: Option<u32>,
    killed: bool,
}

#[derive(Default)]
struct BootState {
    instances: BTreeMap<String, Booted>,
    errors: Vec<String>,
}

/// Runs every new instance's user-data as a process; see the module doc.
pub struct Booter {
    state: Arc<Mutex<BootState>>,
    task: JoinHandle<()>,
}

impl Booter {
    /// `client` talks to moto directly; `env` is added to every boot (e.g.
    /// `BURST_IMDS_POLL`); each instance gets a directory under `dir`.
    pub fn start(client: Client, dir: &Path, env: Vec<(String, String)>) -> Result<Booter> {
        let worker = Bins::locate()?.worker;
        let state = Arc::new(Mutex::new(BootState::default()));
        let shared = state.clone();
        let dir = dir.to_owned();
        let task = tokio::spawn(async move {
            loop {
                if let Err(e) = boot_pass(&client, &dir, &worker, &env, &shared).await {
                    if let Ok(mut s) = shared.lock() {
                        s.errors.push(format!("{e:#}"));
                    }
                }
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
        });
        Ok(Booter { state, task })
    }

    /// Instances booted so far.
    pub fn booted(&self) -> Vec<String> {
        self.state
            .lock()
            .map(|s| s.instances.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Boot passes that failed (describe errors and the like).
    pub fn errors(&self) -> Vec<String> {
        self.state
            .lock()
            .map(|s| s.errors.clone())
            .unwrap_or_default()
    }
}

impl Drop for Booter {
    fn drop(&mut self) {
        self.task.abort();
        if let Ok(mut s) = self.state.lock() {
            for b in s.instances.values_mut() {
                kill_group(b);
            }
        }
    }
}

fn kill_group(b: &mut Booted) {
    if let (Some(pid), false) = (b.pid, b.killed) {
        if let Ok(pid) = i32::try_from(pid) {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        b.killed = true;
    }
    if let Some(child) = b.child.as_mut() {
        let _ = child.try_wait();
    }
}

async fn boot_pass(
    client: &Client,
    dir: &Path,
    worker: &Path,
    env: &[(String, String)],
    state: &Mutex<BootState>,
) -> Result<()> {
    let out = client
        .describe_instances()
        .send()
        .await
        .context("DescribeInstances")?;
    let mut alive = BTreeMap::new();
    for i in out.reservations().iter().flat_map(|r| r.instances()) {
        let (Some(id), Some(st)) = (i.instance_id(), i.state().and_then(|s| s.name())) else {
            continue;
        };
        alive.insert(id.to_owned(), matches!(st.as_str(), "pending" | "running"));
    }
    let new: Vec<String> = {
        let s = state.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
        alive
            .iter()
            .filter(|(id, up)| **up && !s.instances.contains_key(*id))
            .map(|(id, _)| id.clone())
            .collect()
    };
    for id in new {
        let attr = client
            .describe_instance_attribute()
            .instance_id(&id)
            .attribute(aws_sdk_ec2::types::InstanceAttributeName::UserData)
            .send()
            .await
            .with_context(|| format!("DescribeInstanceAttribute userData of {id}"))?;
        let booted = match attr.user_data().and_then(|u| u.value()) {
            // Not launched by burst (a test's own instance): nothing to run.
            None => Booted {
                child: None,
                pid: None,
                killed: true,
            },
            Some(b64) => spawn_boot(dir, worker, env, &id, b64)?,
        };
        if let Ok(mut s) = state.lock() {
            s.instances.insert(id, booted);
        }
    }
    // Terminated in moto: the machine is gone, and so is its worker.
    if let Ok(mut s) = state.lock() {
        for (id, b) in s.instances.iter_mut() {
            if !alive.get(id).copied().unwrap_or(false) {
                kill_group(b);
            } else if let Some(child) = b.child.as_mut() {
                let _ = child.try_wait();
            }
        }
    }
    Ok(())
}

fn spawn_boot(
    dir: &Path,
    worker: &Path,
    env: &[(String, String)],
    id: &str,
    b64: &str,
) -> Result<Booted> {
    let script = aws_smithy_types::base64::decode(b64)
        .with_context(|| format!("user-data of {id} is not base64"))?;
    let home = dir.join(id);
    std::fs::create_dir_all(home.join("work"))?;
    let script_path = home.join("user-data.sh");
    std::fs::write(&script_path, &script)?;
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(home.join("boot.log"))?;
    let mut cmd = Command::new("sh");
    cmd.arg(&script_path)
        .current_dir(&home)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", &home)
        .env("BURST_WORKER_BIN", worker)
        .env("BURST_WORK_DIR", home.join("work"))
        // Where user-data writes the token file (root's /run/burst on EC2).
        .env("BURST_RUN_DIR", home.join("run"))
        .env("RUST_LOG", "info")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        .kill_on_drop(true);
    let child = cmd.spawn().with_context(|| format!("boot {id}"))?;
    let pid = child.id();
    Ok(Booted {
        child: Some(child),
        pid,
        killed: false,
    })
}
