//! The launch token is in no worker's environment or arguments, nothing a
//! step can read from `/proc` works as one, and a worker cannot report the
//! result of a step that was sent to another.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use burst_e2e::fake_worker::{self, Answer};
use burst_e2e::toml_text::list;
use burst_e2e::{procs, wait, Bins, Master, MasterBuilder};
use burst_master::model::BuildState;
use burst_proto::{worker_message, OutputStream, StepFinished, StepOutput};

const TIMEOUT: Duration = Duration::from_secs(60);

/// Pool `local` runs real workers whose token the test captures on the way
/// in (`capture_real`); pool `hang` gets one worker (min_idle) that takes
/// its token from stdin into `capture_hang` and never connects. `peek`
/// prints what a step can find; `slow` waits for `release`.
fn config(capture_real: &Path, capture_hang: &Path, release: &Path) -> anyhow::Result<String> {
    let worker = Bins::locate()?.worker;
    // The real worker's token, read from stdin as the worker would, kept
    // for the test and handed on on stdin.
    let real = [
        "sh".to_owned(),
        "-c".to_owned(),
        "IFS= read -r t; printf '%s\\n' \"$t\" > \"$0\"; exec \"$1\" <<E\n$t\nE\n".to_owned(),
        capture_real.display().to_string(),
        worker.display().to_string(),
    ];
    let hang = fake_worker::token_capturing_command(capture_hang);
    Ok(format!(
        r#"
[pools.local]
provider = "local"
labels = ["linux"]

[pools.local.local]
command = {real}

[pools.hang]
provider = "local"
labels = ["hang"]
min_idle = 1
max_workers = 1
start_timeout = "10m"

[pools.hang.local]
command = {hang}

[[builders]]
name = "peek"
labels = ["linux"]

[[builders.steps]]
name = "peek"
run = 'env; tr "\000" "\n" < /proc/$PPID/environ; tr "\000" "\n" < /proc/$PPID/cmdline'

[[builders]]
name = "slow"
labels = ["linux"]

[[builders.steps]]
name = "wait"
run = 'echo real-output; while [ ! -e {release} ]; do sleep 0.1; done'
"#,
        real = list(&real),
        hang = list(&hang),
        release = release.display(),
    ))
}

async fn captured(path: &Path) -> anyhow::Result<String> {
    wait::until_some("the captured launch token", TIMEOUT, || {
        std::fs::read_to_string(path)
            .ok()
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
    })
    .await
}

/// Every word and `NAME=value` value in `text`: what a step could try.
fn words(text: &str, out: &mut BTreeSet<String>) {
    for word in text.split_whitespace() {
        out.insert(word.to_owned());
        if let Some((_, value)) = word.split_once('=') {
            out.insert(value.to_owned());
        }
    }
}

fn environ_text(pid: i32) -> String {
    procs::environ(pid)
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| format!("{k}={v}\n"))
        .collect()
}

async fn worker_of_pool(master: &Master, pool: &str) -> anyhow::Result<String> {
    wait::until_some(&format!("a worker of pool {pool}"), TIMEOUT, || {
        master
            .processes()
            .into_iter()
            .filter(|p| {
                procs::environ(p.pid)
                    .is_some_and(|e| e.get("BURST_POOL").is_some_and(|v| v == pool))
            })
            .find_map(|p| p.worker_id)
    })
    .await
}

fn pid_of(master: &Master, worker_id: &str) -> Option<i32> {
    master
        .processes()
        .into_iter()
        .filter(|p| p.worker_id.as_deref() == Some(worker_id))
        .map(|p| p.pid)
        .min()
}

#[tokio::test(flavor = "multi_thread")]
async fn no_token_in_a_workers_environment_or_arguments_and_nothing_found_works_as_one(
) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (capture_real, capture_hang) = (dir.path().join("real"), dir.path().join("hang"));
    let release = dir.path().join("release");
    let master = MasterBuilder::new()
        .section(&config(&capture_real, &capture_hang, &release)?)
        .start()
        .await?;

    // A real worker runs a step that prints its environment and its
    // worker's (initial) environment and arguments.
    let id = master.submit("peek", &[]).await?[0];
    let build = master.wait_build(id, TIMEOUT).await?;
    assert_eq!(build.state, BuildState::Succeeded, "{build:#?}");
    let token = captured(&capture_real).await?;
    let log = master.log_text(id).await?;
    assert!(log.contains("BURST_TOKEN_FILE=-"), "{log}");
    assert!(
        !log.contains(&token),
        "a step found the launch token:\n{log}"
    );
    assert!(!log.contains("BURST_TOKEN="), "{log}");
    // The worker itself, while it runs.
    let worker = build.attempts[0].worker_id.clone();
    let pid = pid_of(&master, &worker).expect("the worker's pid");
    let (environ, cmdline) = (environ_text(pid), procs::cmdline(pid));
    assert!(
        environ.contains("BURST_MASTER_ID="),
        "not the worker: {environ}"
    );
    assert!(!environ.contains(&token), "{environ}");
    assert!(!environ.contains("BURST_TOKEN="), "{environ}");
    assert!(!cmdline.contains(&token), "{cmdline}");

    // Everything a step can read of a worker that has not connected yet
    // (same user: /proc/PID/environ and cmdline), and of its own worker,
    // presented as that worker's token, is refused.
    let hang = worker_of_pool(&master, "hang").await?;
    let hang_token = captured(&capture_hang).await?;
    let hang_pid = pid_of(&master, &hang).expect("the hang worker's pid");
    let mut found = BTreeSet::new();
    words(&environ_text(hang_pid), &mut found);
    words(&procs::cmdline(hang_pid).replace(' ', "\n"), &mut found);
    words(&log, &mut found);
    assert!(
        !found.contains(&hang_token),
        "the token is readable: {found:?}"
    );
    assert!(found.len() > 10, "{found:?}");
    for candidate in &found {
        match fake_worker::connect(&master.worker_url(), fake_worker::hello(&hang, candidate))
            .await?
        {
            Answer::Refused(reason) => assert!(reason.contains("wrong launch token"), "{reason}"),
            other => panic!("{candidate:?} as a token: {other:?}"),
        }
    }

    // The real token does work (so the refusals above were about the
    // tokens): this fake worker now holds a session of its own...
    let Answer::Welcomed(fake) =
        fake_worker::connect(&master.worker_url(), fake_worker::hello(&hang, &hang_token)).await?
    else {
        panic!("the captured token was refused");
    };

    // ... and presents a result (and output) for a step another worker runs.
    let slow = master.submit("slow", &[]).await?[0];
    let running = master.wait_step_running(slow, 0, TIMEOUT).await?;
    let step_run_id = format!("{slow}.{}.0", running.attempts.len());
    fake.send(worker_message::Msg::Output(StepOutput {
        step_run_id: step_run_id.clone(),
        stream: OutputStream::Stdout as i32,
        offset: 0,
        data: b"forged-output\n".to_vec(),
    }))
    .await?;
    fake.send(worker_message::Msg::Finished(StepFinished {
        step_run_id: step_run_id.clone(),
        exit_code: Some(1),
        ..Default::default()
    }))
    .await?;
    wait::until_true("the forged result to be refused", TIMEOUT, || {
        master
            .log()
            .contains("refused a result for a step that was not sent to this worker session")
    })
    .await?;
    assert!(!master.build(slow).await?.state.is_finished());
    std::fs::write(&release, "")?;
    let done = master.wait_build(slow, TIMEOUT).await?;
    assert_eq!(done.state, BuildState::Succeeded, "{done:#?}");
    let log = master.log_text(slow).await?;
    assert!(log.contains("real-output"), "{log}");
    assert!(!log.contains("forged-output"), "{log}");
    drop(fake);
    Ok(())
}
