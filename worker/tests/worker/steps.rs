//! Script and argv steps: exit codes, environment, directories, output.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use burst_proto::{worker_message, StepFinished};
use burst_worker::Exit;

use crate::support;

#[tokio::test]
async fn exit_codes_are_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_master, mut conn, worker) = support::connected(support::config("", dir.path())).await;

    conn.run(support::script("ok", "true")).await;
    let ok = conn.collect("ok").await.finished;
    assert_eq!((ok.exit_code, ok.signal), (Some(0), None));
    assert!(ok.error.is_empty() && !ok.timed_out && !ok.cancelled);

    conn.run(support::script("three", "echo failing >&2; exit 3"))
        .await;
    let three = conn.collect("three").await;
    assert_eq!(three.finished.exit_code, Some(3));
    assert_eq!(three.stderr, b"failing\n");

    conn.shutdown(false).await;
    assert_eq!(support::exited(worker).await, Exit::Shutdown);
}

#[tokio::test]
async fn env_and_working_dir() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_master, mut conn, worker) = support::connected(support::config("", dir.path())).await;

    let mut step = support::script(
        "env",
        r#"printf '%s|%s|%s' "$GREETING" "$BURST_WORKER_ID" "$(pwd -P)""#,
    );
    step.env = HashMap::from([("GREETING".to_owned(), "hello there".to_owned())]);
    step.working_dir = "sub/dir".to_owned();
    conn.run(step).await;
    let run = conn.collect("env").await;
    assert_eq!(run.finished.exit_code, Some(0), "{run:?}");

    let expected_dir = dir
        .path()
        .join("work/b1/sub/dir")
        .canonicalize()
        .expect("dir was created");
    assert_eq!(
        run.stdout(),
        format!("hello there|w1|{}", expected_dir.display())
    );

    conn.shutdown(false).await;
    support::exited(worker).await;
}

#[tokio::test]
async fn escaping_working_dirs_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_master, mut conn, worker) = support::connected(support::config("", dir.path())).await;

    for (i, bad) in ["../escape", "a/../../escape", "/tmp"].iter().enumerate() {
        let id = format!("bad{i}");
        let mut step = support::script(&id, "echo should not run");
        step.working_dir = (*bad).to_owned();
        conn.run(step).await;
        let run = conn.collect(&id).await;
        assert!(!run.finished.error.is_empty(), "{bad}: {run:?}");
        assert_eq!(run.finished.exit_code, None);
        assert!(run.stdout.is_empty());
    }
    assert!(!dir.path().join("escape").exists());

    conn.shutdown(false).await;
    support::exited(worker).await;
}

#[tokio::test]
async fn output_arrives_complete_and_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_master, mut conn, worker) = support::connected(support::config("", dir.path())).await;

    let n = 3000;
    conn.run(support::script(
        "mixed",
        &format!(
            r#"i=0; while [ $i -lt {n} ]; do echo "out $i"; echo "err $i" >&2; i=$((i+1)); done"#
        ),
    ))
    .await;
    let run = conn.collect("mixed").await;
    assert_eq!(run.finished.exit_code, Some(0));
    let expect = |s: &str| (0..n).map(|i| format!("{s} {i}\n")).collect::<String>();
    assert_eq!(run.stdout(), expect("out"));
    assert_eq!(String::from_utf8_lossy(&run.stderr), expect("err"));

    // Large enough to need many full-size chunks.
    conn.run(support::script("seq", "seq 1 200000")).await;
    let run = conn.collect("seq").await;
    let expected: String = (1..=200_000).map(|i| format!("{i}\n")).collect();
    assert_eq!(run.stdout.len(), expected.len());
    assert!(run.stdout == expected.as_bytes());

    conn.shutdown(false).await;
    support::exited(worker).await;
}

#[tokio::test]
async fn argv_steps_and_start_failures() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_master, mut conn, worker) = support::connected(support::config("", dir.path())).await;

    conn.run(support::argv("argv", &["printf", "%s-%s", "a b", "$HOME"]))
        .await;
    let run = conn.collect("argv").await;
    assert_eq!(run.finished.exit_code, Some(0));
    assert_eq!(run.stdout(), "a b-$HOME");

    let failures: [(&str, burst_proto::RunStep); 4] = [
        (
            "missing",
            support::argv("missing", &["/nonexistent/program"]),
        ),
        ("empty", support::argv("empty", &[])),
        ("cmd", {
            let mut step = support::script("cmd", "echo hi");
            step.shell = "cmd".to_owned();
            step
        }),
        ("nocommand", {
            let mut step = support::script("nocommand", "");
            step.command = None;
            step
        }),
    ];
    for (id, step) in failures {
        conn.run(step).await;
        let f: StepFinished = conn.collect(id).await.finished;
        assert!(f.error.starts_with("failed to"), "{id}: {f:?}");
        assert_eq!((f.exit_code, f.signal), (None, None), "{id}");
    }

    let mut bash = support::script("bash", "echo $BASH_VERSION | head -c 1");
    bash.shell = "bash".to_owned();
    conn.run(bash).await;
    let run = conn.collect("bash").await;
    if run.finished.error.is_empty() {
        assert_eq!(run.finished.exit_code, Some(0));
        assert_eq!(run.stdout.len(), 1, "bash ran the script: {run:?}");
    }

    conn.shutdown(false).await;
    support::exited(worker).await;
}

#[tokio::test]
async fn capacity_is_honoured() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_master, mut conn, worker) = support::connected(support::config("", dir.path())).await;

    conn.run(support::script("first", "sleep 0.5; echo first"))
        .await;
    conn.run(support::script("second", "echo second")).await;
    let second = conn.collect("second").await;
    assert!(second.finished.error.contains("already runs"), "{second:?}");
    let first = conn.collect("first").await;
    assert_eq!(first.finished.exit_code, Some(0));
    assert_eq!(first.stdout(), "first\n");

    conn.shutdown(false).await;
    support::exited(worker).await;
}

#[tokio::test]
async fn drain_finishes_running_steps_then_exits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_master, conn, worker) = support::connected(support::config("", dir.path())).await;

    conn.run(support::script("slow", "sleep 0.5; echo done"))
        .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let rest = conn.shutdown(true).await;
    let finished = rest
        .iter()
        .find_map(|m| match m {
            worker_message::Msg::Finished(f) => Some(f),
            _ => None,
        })
        .expect("the running step finished before the worker left");
    assert_eq!(finished.exit_code, Some(0));
    assert!(!finished.cancelled);
    assert_eq!(support::exited(worker).await, Exit::Shutdown);
}

/// `env -0` output as name -> value.
fn env_of(stdout: &[u8]) -> BTreeMap<String, String> {
    stdout
        .split(|b| *b == 0)
        .filter(|kv| !kv.is_empty())
        .filter_map(|kv| {
            let kv = String::from_utf8_lossy(kv);
            let (k, v) = kv.split_once('=')?;
            Some((k.to_owned(), v.to_owned()))
        })
        .collect()
}

#[tokio::test]
async fn step_env_is_exactly_base_then_sent_then_worker_id() {
    // The test process has variables the base does not take (cargo's).
    assert!(std::env::var_os("CARGO_MANIFEST_DIR").is_some());
    let dir = tempfile::tempdir().expect("tempdir");
    let (_master, mut conn, worker) = support::connected(support::config("", dir.path())).await;

    // An argv step: no shell adds variables of its own.
    let mut step = support::argv("env", &["env", "-0"]);
    step.env = HashMap::from([
        ("GREETING".to_owned(), "hi".to_owned()),
        ("HOME".to_owned(), "/from/config".to_owned()),
        ("BURST_BUILD_ID".to_owned(), "7".to_owned()),
        // The master never sends this one, and the worker's own wins.
        ("BURST_WORKER_ID".to_owned(), "forged".to_owned()),
    ]);
    conn.run(step).await;
    let run = conn.collect("env").await;
    assert_eq!(run.finished.exit_code, Some(0), "{run:?}");

    let mut want: BTreeMap<String, String> = burst_worker::step_env::base()
        .into_iter()
        .map(|(k, v)| (k, v.to_string_lossy().into_owned()))
        .collect();
    want.insert("GREETING".into(), "hi".into());
    want.insert("HOME".into(), "/from/config".into());
    want.insert("BURST_BUILD_ID".into(), "7".into());
    want.insert("BURST_WORKER_ID".into(), "w1".into());
    assert_eq!(env_of(&run.stdout), want);

    conn.shutdown(false).await;
    support::exited(worker).await;
}

#[tokio::test]
async fn the_workers_launch_environment_does_not_reach_steps() {
    let mut master = support::FakeMaster::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = support::spawn_binary(&master.url, dir.path(), &[]);
    let mut conn = master.accept().await;
    conn.welcome("resume-1").await;

    conn.run(support::argv("env", &["env", "-0"])).await;
    let run = conn.collect("env").await;
    assert_eq!(run.finished.exit_code, Some(0), "{run:?}");
    let env = env_of(&run.stdout);
    for name in [
        "BURST_TOKEN",
        "BURST_MASTER_URL",
        "BURST_WORK_DIR",
        "BURST_RECONNECT_MIN",
        "RUST_LOG",
        "CARGO_MANIFEST_DIR",
    ] {
        assert!(!env.contains_key(name), "{name} leaked: {env:?}");
    }
    assert!(
        !String::from_utf8_lossy(&run.stdout).contains(support::LAUNCH_TOKEN),
        "the token leaked"
    );
    assert_eq!(env.get("BURST_WORKER_ID").map(String::as_str), Some("w1"));
    assert!(env.contains_key("PATH"), "{env:?}");
    assert_eq!(
        env.get("BURST_MASTER_ID").map(String::as_str),
        Some("m-test")
    );

    conn.shutdown(false).await;
    let _ = support::exit_code(&mut child, dir.path()).await;
}
