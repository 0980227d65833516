//! Master restarts under load. Workers keep running their steps while the
//! master is away (under their step lease) and come back to the restarted
//! master, which takes them back: a build that runs across a restart
//! finishes as the same attempt with its whole log, nothing runs twice,
//! nothing is left behind. And fencing: a frozen worker's step is dead
//! before its build's retry starts.
//!
//! `BURST_E2E_STORM=BUILDS:KILLS` makes the storms bigger (e.g. `100:20`)
//! for a one-off measurement; their counts are printed (`--nocapture`).

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use burst_e2e::docker_support::{
    builder, pool_containers, require_docker_and_image, unique, Cleanup, DockerPool,
};
use burst_e2e::{procs, wait, BuildId, Master, MasterBuilder};
use burst_master::model::{AttemptState, Build, BuildState, InstanceState};
use rand::{Rng, SeedableRng};

/// Ten numbered lines, half a second apart: long enough to run across a
/// restart.
const NUMBERED: &str = r#"
[master]
heartbeat_interval = "1s"

[pools.local]
provider = "local"
labels = ["linux"]
max_workers = 1

[[builders]]
name = "numbered"
labels = ["linux"]
retries = 0

[[builders.steps]]
name = "count"
run = 'i=1; while [ $i -le 10 ]; do echo "line-$i"; i=$((i+1)); sleep 0.5; done'
"#;

/// A build runs across a SIGKILL and restart of its master: it finishes
/// as attempt 1, with every line once and in order, and no attempt was
/// recorded lost or interrupted.
#[tokio::test(flavor = "multi_thread")]
async fn a_build_runs_across_a_master_restart_as_one_attempt() -> anyhow::Result<()> {
    let mut master = MasterBuilder::config(NUMBERED)
        .same_grpc_port_on_restart()?
        .start()
        .await?;
    let id = master.submit("numbered", &[]).await?[0];
    wait_log(&master, id, "line-3").await?;
    let worker_pids: Vec<i32> = agents(&master);
    master.sigkill();
    // The worker and its step go on without a master.
    tokio::time::sleep(Duration::from_millis(700)).await;
    ensure!(
        worker_pids.iter().all(|p| procs::is_running(*p)),
        "the worker died with its master: {:?}",
        master.processes()
    );
    let before = master.log_text(id).await.unwrap_or_default().len();
    let restarted = Instant::now();
    master.restart().await?;
    // Not asserted (speed is no test's business): printed for the record.
    wait::until(
        "the build's output to flow again",
        Duration::from_secs(60),
        || {
            let master = &master;
            async move { Ok((master.log_text(id).await?.len() > before).then_some(())) }
        },
    )
    .await?;
    eprintln!(
        "figure: restarted master to flowing output: {} ms (restart included)",
        restarted.elapsed().as_millis()
    );
    let b = master.wait_build(id, Duration::from_secs(60)).await?;
    assert_eq!(b.state, BuildState::Succeeded, "{b:#?}");
    assert_eq!(b.attempts.len(), 1, "the same attempt: {b:#?}");
    assert_eq!(b.attempts[0].state, AttemptState::Succeeded, "{b:#?}");
    let log = master.log_text(id).await?;
    let lines: Vec<&str> = log.lines().filter(|l| l.starts_with("line-")).collect();
    let want: Vec<String> = (1..=10).map(|i| format!("line-{i}")).collect();
    assert_eq!(lines, want, "complete and in order:\n{log}");
    // The same worker finished it: it was taken back, not replaced.
    let workers = master.workers().await?;
    assert!(
        workers
            .iter()
            .any(|w| w.worker_id == b.attempts[0].worker_id),
        "{workers:?}"
    );
    Ok(())
}

/// The master is SIGKILLed while a build runs and restarted on a config
/// whose pool was renamed: the old pool's worker is drained, not killed.
/// The build finishes on it as attempt 1 with its whole log, then the
/// worker is shut down (its process exits) and its ledger row ends gone.
#[tokio::test(flavor = "multi_thread")]
async fn a_worker_of_a_removed_pool_finishes_its_build_then_exits() -> anyhow::Result<()> {
    let mut master = MasterBuilder::config(NUMBERED)
        .same_grpc_port_on_restart()?
        .start()
        .await?;
    let id = master.submit("numbered", &[]).await?[0];
    wait_log(&master, id, "line-3").await?;
    let worker_pids: Vec<i32> = agents(&master);
    ensure!(!worker_pids.is_empty(), "no worker agent found");
    master.sigkill();
    master.edit_config(|c| c.replace("[pools.local]", "[pools.renamed]"))?;
    master.restart().await?;
    let b = master.wait_build(id, Duration::from_secs(60)).await?;
    assert_eq!(b.state, BuildState::Succeeded, "{b:#?}");
    assert_eq!(b.attempts.len(), 1, "the same attempt: {b:#?}");
    assert_eq!(b.attempts[0].state, AttemptState::Succeeded, "{b:#?}");
    assert_eq!(b.attempts[0].pool, "local", "{b:#?}");
    let log = master.log_text(id).await?;
    let lines: Vec<&str> = log.lines().filter(|l| l.starts_with("line-")).collect();
    let want: Vec<String> = (1..=10).map(|i| format!("line-{i}")).collect();
    assert_eq!(lines, want, "complete and in order:\n{log}");
    let worker = b.attempts[0].worker_id.clone();
    wait::until(
        "the drained worker's process to exit",
        Duration::from_secs(60),
        || {
            let pids = &worker_pids;
            async move { Ok(pids.iter().all(|p| !procs::is_running(*p)).then_some(())) }
        },
    )
    .await?;
    let row = wait::until(
        "the drained worker's ledger row to end gone",
        Duration::from_secs(60),
        || {
            let (master, worker) = (&master, &worker);
            async move {
                let rows = master.instances().await?;
                Ok(rows
                    .into_iter()
                    .find(|r| &r.worker_id == worker)
                    .filter(|r| r.state == InstanceState::Gone))
            }
        },
    )
    .await?;
    assert!(
        row.ended_by
            .as_deref()
            .is_some_and(|e| e.contains("pool local is no longer in the config")),
        "{row:#?}"
    );
    Ok(())
}

/// 30 builds, 5 master SIGKILLs at seeded random moments, on local workers.
#[tokio::test(flavor = "multi_thread")]
async fn restart_storm_on_a_local_pool_loses_and_repeats_nothing() -> anyhow::Result<()> {
    let marks = tempfile::tempdir()?;
    let config = format!(
        r#"
[master]
heartbeat_interval = "1s"

[pools.local]
provider = "local"
labels = ["linux"]
max_workers = 4

{}
"#,
        builder("storm", "linux", &marked_step(marks.path()))
    );
    let master = MasterBuilder::config(&config).same_grpc_port_on_restart()?;
    let (builds, kills) = storm_size()?;
    let counts = storm(master, marks.path(), builds, kills, 0x5eed_0001, &|| Ok(())).await?;
    eprintln!("figure: local storm: {counts}");
    Ok(())
}

/// The same storm on a Docker pool: and no container is left over.
#[tokio::test(flavor = "multi_thread")]
async fn restart_storm_on_a_docker_pool_loses_and_repeats_nothing() -> anyhow::Result<()> {
    require_docker_and_image()?;
    let pool = unique("dk-storm");
    let _cleanup = Cleanup::new(&pool);
    let marks = tempfile::tempdir()?;
    // Steps in containers run as another user: they write through a bind.
    set_mode(marks.path(), 0o777)?;
    let port = burst_e2e::moto::free_port()?;
    let master = DockerPool::new(&pool)
        .pool("max_workers = 4")
        .docker(&format!("binds = [\"{}:/marks\"]", marks.path().display()))
        .master()
        .grpc_listen(&format!("0.0.0.0:{port}"))
        .section(&builder("storm", &pool, &marked_step(Path::new("/marks"))));
    let leftovers = || {
        let left = pool_containers(&pool)?;
        ensure!(left.is_empty(), "containers left over: {left:?}");
        Ok(())
    };
    let (builds, kills) = storm_size()?;
    let counts = storm(master, marks.path(), builds, kills, 0x5eed_0002, &leftovers).await?;
    eprintln!("figure: docker storm: {counts}");
    Ok(())
}

/// 30 builds and 5 kills, or `BURST_E2E_STORM=BUILDS:KILLS`.
fn storm_size() -> anyhow::Result<(usize, usize)> {
    let Ok(size) = std::env::var("BURST_E2E_STORM") else {
        return Ok((30, 5));
    };
    let (builds, kills) = size
        .split_once(':')
        .context("BURST_E2E_STORM must be BUILDS:KILLS")?;
    Ok((builds.parse()?, kills.parse()?))
}

/// A step that leaves one line per run in `<marks>/BUILD.ATTEMPT`: a step
/// that ran twice for one attempt leaves two.
fn marked_step(marks: &Path) -> String {
    format!(
        "echo run >> {dir}/$BURST_BUILD_ID.$BURST_ATTEMPT; \
         i=1; while [ $i -le 4 ]; do echo \"line-$i\"; i=$((i+1)); sleep 0.4; done; echo done",
        dir = marks.display()
    )
}

struct Counts {
    builds: usize,
    kills: usize,
    lost: usize,
    twice: usize,
    worker_lost: usize,
    interrupted: usize,
    retried: usize,
}

impl std::fmt::Display for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} builds, {} kills: {} lost, {} steps run twice, {} attempts worker_lost, \
             {} interrupted, {} builds with more than one attempt",
            self.builds,
            self.kills,
            self.lost,
            self.twice,
            self.worker_lost,
            self.interrupted,
            self.retried
        )
    }
}

/// Submits `builds` builds, SIGKILLs and restarts the master `kills` times
/// at moments drawn from `seed`, waits for every build, and checks: none
/// lost, no step run twice, every build done in one attempt (so none lost
/// or interrupted by a restart), no process or ledger row left behind; then
/// stops the master and runs `after_stop`.
async fn storm(
    builder: MasterBuilder,
    marks: &Path,
    builds: usize,
    kills: usize,
    seed: u64,
    after_stop: &dyn Fn() -> anyhow::Result<()>,
) -> anyhow::Result<Counts> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut master = builder
        .stop_gracefully(Duration::from_secs(60))
        .start()
        .await?;
    let mut ids = Vec::new();
    for _ in 0..builds {
        ids.extend(master.submit("storm", &[]).await?);
    }
    for _ in 0..kills {
        let pause = Duration::from_millis(rng.random_range(300..2500));
        tokio::time::sleep(pause).await;
        master.sigkill();
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..800))).await;
        master.restart().await?;
    }
    let mut done: Vec<Build> = Vec::new();
    for id in &ids {
        done.push(master.wait_build(*id, Duration::from_secs(180)).await?);
    }
    let mut counts = Counts {
        builds,
        kills,
        lost: 0,
        twice: 0,
        worker_lost: 0,
        interrupted: 0,
        retried: 0,
    };
    let mut problems = Vec::new();
    for b in &done {
        if b.state != BuildState::Succeeded {
            counts.lost += 1;
            problems.push(format!(
                "build {} ended {:?}: {:?}",
                b.id, b.state, b.reason
            ));
        }
        if b.attempts.len() > 1 {
            counts.retried += 1;
        }
        for a in &b.attempts {
            match a.state {
                AttemptState::WorkerLost => counts.worker_lost += 1,
                AttemptState::Interrupted => counts.interrupted += 1,
                _ => {}
            }
            let mark = marks.join(format!("{}.{}", b.id, a.number));
            let runs = std::fs::read_to_string(&mark)
                .with_context(|| format!("no marker {}", mark.display()))?
                .lines()
                .count();
            if runs != 1 {
                counts.twice += 1;
                problems.push(format!(
                    "build {} attempt {} ran {runs} times",
                    b.id, a.number
                ));
            }
        }
        let log = master.log_text(b.id).await?;
        if !log.contains("line-4\ndone") {
            problems.push(format!("build {}: incomplete log:\n{log}", b.id));
        }
    }
    ensure!(
        problems.is_empty()
            && counts.worker_lost == 0
            && counts.interrupted == 0
            && counts.retried == 0,
        "{counts}\n{}",
        problems.join("\n")
    );
    // Every process of this master's id belongs to a worker it knows.
    wait::until(
        "every process to belong to a known worker",
        Duration::from_secs(60),
        || {
            let master = &master;
            async move {
                let known: BTreeSet<String> = master
                    .workers()
                    .await?
                    .into_iter()
                    .map(|w| w.worker_id)
                    .collect();
                let all_known = master
                    .processes()
                    .iter()
                    .all(|p| p.worker_id.as_ref().is_some_and(|w| known.contains(w)));
                Ok(all_known.then_some(()))
            }
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e:#}: orphans: {:?}", master.processes()))?;
    master.sigterm_and_wait(Duration::from_secs(60)).await?;
    ensure!(
        master.processes().is_empty(),
        "left after a clean stop: {:?}",
        master.processes()
    );
    after_stop()?;
    Ok(counts)
}

/// Fencing, finding 8: a frozen worker (SIGSTOP) is declared lost, and its
/// step, in its own process group, is dead before the build's retry
/// starts (marker timestamps); resumed (SIGCONT), nothing runs a second
/// time beside the retry.
#[tokio::test(flavor = "multi_thread")]
async fn a_frozen_workers_step_is_dead_before_its_retry_starts() -> anyhow::Result<()> {
    let marks = tempfile::tempdir()?;
    let step = format!(
        "m={dir}/$BURST_BUILD_ID.$BURST_ATTEMPT; echo \"start $(date +%s%N)\" >> $m; \
         i=0; while [ $i -lt 60 ]; do echo \"tick $(date +%s%N)\" >> $m; i=$((i+1)); sleep 0.1; done; \
         echo \"end $(date +%s%N)\" >> $m",
        dir = marks.path().display()
    );
    let config = format!(
        r#"
[master]
heartbeat_interval = "300ms"
heartbeat_misses = 2
build_retries = 1

[pools.local]
provider = "local"
labels = ["linux"]
max_workers = 2

{}
"#,
        builder("frozen", "linux", &step)
    );
    let master = Master::start(&config).await?;
    let id = master.submit("frozen", &[]).await?[0];
    let first = marks.path().join(format!("{id}.1"));
    wait::until_true("the first attempt to tick", Duration::from_secs(30), || {
        std::fs::read_to_string(&first).is_ok_and(|m| m.lines().count() >= 3)
    })
    .await?;
    let b = master.build(id).await?;
    let frozen_worker = b.attempts[0].worker_id.clone();
    // Only the agent freezes; its step (own process group) goes on.
    let agent = master
        .processes()
        .into_iter()
        .find(|p| p.is_worker_agent() && p.worker_id.as_deref() == Some(frozen_worker.as_str()))
        .context("the busy worker's agent")?;
    signal(agent.pid, nix::sys::signal::Signal::SIGSTOP)?;

    let second = marks.path().join(format!("{id}.2"));
    wait::until_true("the retry to start", Duration::from_secs(60), || {
        second.exists()
    })
    .await?;
    // Resumed, if its terminate has not taken it already (then it is gone).
    match nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(agent.pid),
        nix::sys::signal::Signal::SIGCONT,
    ) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
        Err(e) => return Err(anyhow::anyhow!("failed to SIGCONT {}: {e}", agent.pid)),
    }
    let b = master.wait_build(id, Duration::from_secs(60)).await?;
    assert_eq!(b.state, BuildState::Succeeded, "{b:#?}");
    assert_eq!(b.attempts.len(), 2, "{b:#?}");
    assert_eq!(b.attempts[0].state, AttemptState::WorkerLost, "{b:#?}");
    assert_ne!(b.attempts[1].worker_id, frozen_worker);

    let stamps = |path: &Path| -> anyhow::Result<Vec<u128>> {
        Ok(std::fs::read_to_string(path)?
            .lines()
            .filter_map(|l| l.split(' ').nth(1)?.parse().ok())
            .collect())
    };
    let first_stamps = stamps(&first)?;
    let retry_start = *stamps(&second)?.first().context("the retry's start")?;
    let last_first = *first_stamps.last().context("the first attempt's ticks")?;
    assert!(
        last_first < retry_start,
        "the first attempt ticked at {last_first}, after the retry started at {retry_start}"
    );
    // After SIGCONT, nothing of the first attempt came back to life.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(stamps(&first)?, first_stamps, "the frozen step ran on");
    assert!(
        !procs::is_running(agent.pid),
        "the frozen worker was terminated"
    );
    Ok(())
}

fn signal(pid: i32, sig: nix::sys::signal::Signal) -> anyhow::Result<()> {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig)
        .with_context(|| format!("failed to send {sig} to {pid}"))
}

fn set_mode(path: &Path, mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("failed to chmod {}", path.display()))
}

fn agents(master: &Master) -> Vec<i32> {
    master
        .processes()
        .into_iter()
        .filter(|p| p.is_worker_agent())
        .map(|p| p.pid)
        .collect()
}

async fn wait_log(master: &Master, id: BuildId, needle: &str) -> anyhow::Result<()> {
    wait::until(
        &format!("build {id}'s log to show {needle}"),
        Duration::from_secs(60),
        || async move { Ok(master.log_text(id).await?.contains(needle).then_some(())) },
    )
    .await
}
