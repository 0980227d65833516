//! Windows workers for real: `burst-worker.exe` under wine, dialing a master
//! on loopback through a local pool, running `cmd` steps.
//!
//! Needs `scripts/setup/build-windows-worker.sh` (the exe, its wine shim,
//! echoargs.exe and the wine prefix) and `cargo build --workspace --bins`.

use std::time::{Duration, Instant};

use anyhow::Result;
use burst_e2e::toml_text;
use burst_e2e::wine::{self, WineSetup};
use burst_e2e::{procs, wait, Master};
use serde_json::Value;

/// Wine starts slowly, and two tests may start it at once on two cores.
const BUILD_BOUND: Duration = Duration::from_secs(120);

fn setup() -> WineSetup {
    match WineSetup::require() {
        Ok(setup) => setup,
        Err(e) => panic!("{e:#}"),
    }
}

/// A `[[builders]]` entry with one step per `(name, extra TOML)`.
fn builder(name: &str, labels: &[&str], steps: &[(&str, String)]) -> String {
    let mut out = format!(
        "[[builders]]\nname = \"{name}\"\nlabels = {}\nretries = 0\n\n",
        toml_text::list(labels)
    );
    for (step, body) in steps {
        out.push_str(&format!(
            "[[builders.steps]]\nname = \"{step}\"\n{body}\n\n"
        ));
    }
    out
}

fn step_of(build: &Value, index: usize) -> &Value {
    &build["attempts"][0]["steps"][index]
}

async fn run_one(master: &Master, builder: &str) -> Result<(Value, String)> {
    let ids = master.submit(builder, &[]).await?;
    assert_eq!(ids.len(), 1, "one build for {builder}");
    let build = master.finished_json(ids[0], BUILD_BOUND).await?;
    let log = master.log_text(ids[0]).await?;
    Ok((build, log))
}

#[tokio::test]
async fn windows_exit_codes_survive() -> Result<()> {
    let setup = setup();
    let mut config = setup.windows_pool("win", &["windows"]);
    config.push_str(&builder(
        "three",
        &["windows"],
        &[("exit", "run = \"exit /b 3\"".into())],
    ));
    // 0xC000013A, STATUS_CONTROL_C_EXIT: an NTSTATUS that only fits an i32
    // as a negative number.
    config.push_str(&builder(
        "ntstatus",
        &["windows"],
        &[("exit", "run = \"exit /b -1073741510\"".into())],
    ));
    config.push_str(&builder(
        "multi",
        &["windows"],
        &[(
            "batch",
            "run = \"\"\"\nset X=1\nif \"%X%\"==\"1\" (\n  echo in batch\n  exit /b 4\n)\nexit /b 0\n\"\"\""
                .into(),
        )],
    ));
    let master = setup.master().section(&config).start().await?;

    let (build, log) = run_one(&master, "three").await?;
    assert_eq!(build["state"], "failed", "{build}\n{log}");
    assert_eq!(step_of(&build, 0)["exit_code"], 3, "{build}");

    let (build, _) = run_one(&master, "ntstatus").await?;
    assert_eq!(build["state"], "failed", "{build}");
    assert_eq!(
        step_of(&build, 0)["exit_code"],
        0xC000_013Au32 as i32,
        "{build}"
    );

    let (build, log) = run_one(&master, "multi").await?;
    assert_eq!(step_of(&build, 0)["exit_code"], 4, "{build}\n{log}");
    assert!(log.contains("in batch"), "{log}");
    // `@echo off`: the script's commands are not echoed.
    assert!(!log.contains("set X=1"), "{log}");
    Ok(())
}

/// The Windows worker's TLS (rustls on ring, cross-built) checks the pin of
/// a self-signed master and runs a build over it.
#[tokio::test]
async fn windows_worker_builds_over_tls() -> Result<()> {
    let setup = setup();
    let mut config = setup.windows_pool("win", &["windows"]);
    config.push_str(&builder(
        "hello",
        &["windows"],
        &[("greet", "run = \"echo over tls\"".into())],
    ));
    let master = setup
        .master()
        .tls_self_signed()
        .section(&config)
        .start()
        .await?;
    assert!(master.worker_url().starts_with("https://"));
    let (build, log) = run_one(&master, "hello").await?;
    assert_eq!(build["state"], "succeeded", "{build}\n{log}");
    assert!(log.contains("over tls"), "{log}");
    Ok(())
}

#[tokio::test]
async fn windows_env_working_dir_and_crlf() -> Result<()> {
    let setup = setup();
    let mut config = setup.windows_pool("win", &["windows"]);
    config.push_str(&builder(
        "env",
        &["windows"],
        &[
            (
                "vars",
                // The param TEST_CASE defaults to "outer"; the step
                // overrides it in another case, and PATH as Path. The pool
                // gives the worker BURST_TEST_CASE, which no step sees.
                "run = \"echo [%FOO%] & set\"\n\
                 env = { FOO = \"bar baz\", test_case = \"inner\", Path = 'C:\\windows\\system32;C:\\windows' }"
                    .into(),
            ),
            (
                "dir",
                "run = \"cd\"\nworking_dir = \"sub/dir\"".into(),
            ),
        ],
    ));
    let config = config.replace(
        "name = \"env\"\n",
        "name = \"env\"\nparams = { TEST_CASE = { default = \"outer\" } }\n",
    );
    let master = setup.master().section(&config).start().await?;
    let ids = master.submit("env", &[]).await?;
    let build = master.finished_json(ids[0], BUILD_BOUND).await?;
    let raw = master.log_bytes(ids[0]).await?;
    let log = String::from_utf8_lossy(&raw).into_owned();
    assert_eq!(build["state"], "succeeded", "{build}\n{log}");

    assert!(log.contains("[bar baz]"), "{log}");
    let lines: Vec<&str> = log.lines().map(|l| l.trim_end_matches('\r')).collect();
    let case: Vec<&&str> = lines
        .iter()
        .filter(|l| l.to_ascii_lowercase().starts_with("test_case="))
        .collect();
    assert_eq!(case.len(), 1, "one TEST_CASE, overridden: {log}");
    assert!(case[0].ends_with("=inner"), "{log}");
    // The worker's own environment stays out of the step.
    assert!(
        !lines
            .iter()
            .any(|l| l.to_ascii_lowercase().starts_with("burst_test_case=")),
        "{log}"
    );
    let path: Vec<&&str> = lines
        .iter()
        .filter(|l| l.to_ascii_lowercase().starts_with("path="))
        .collect();
    assert_eq!(path.len(), 1, "one PATH, overridden: {log}");
    assert!(
        path[0].ends_with("=C:\\windows\\system32;C:\\windows"),
        "{log}"
    );

    // `sub/dir` became the worker's own separators.
    let want = format!("\\build-{}\\sub\\dir", ids[0]);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("Z:\\") && l.ends_with(&want)),
        "no line ending in {want}: {log}"
    );
    // cmd's echo ends lines with CRLF, and the log keeps them.
    assert!(
        raw.windows(b"[bar baz] \r\n".len())
            .any(|w| w == b"[bar baz] \r\n"),
        "CRLF lost: {log:?}"
    );
    Ok(())
}

/// Arguments that break naive quoting, for CommandLineToArgvW and for cmd.
const HOSTILE: &[&str] = &[
    "plain",
    "a b",
    "",
    "\"",
    "a\"b",
    "\"quoted\"",
    "a\\",
    "a b\\",
    "a\\\\\"b",
    "trailing\\\\",
    "C:\\Program Files\\",
    "%PATH%",
    "%OS%",
    "100%",
    "a\\%b",
    "^",
    "a^b",
    "&",
    "a&b",
    "|",
    "a|b",
    "<in>",
    "2>&1",
    "(x)",
    "!x!",
    "\"&echo pwned&\"",
    "a\"&echo pwned&\"b",
];

fn echoed(log: &str) -> Vec<String> {
    log.lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter_map(|l| l.strip_prefix('<').and_then(|l| l.strip_suffix('>')))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn windows_argv_quoting_round_trips() -> Result<()> {
    let setup = setup();
    let mut argv = vec![wine::windows_path(&setup.echoargs)];
    argv.extend(HOSTILE.iter().map(|s| (*s).to_owned()));
    let mut config = setup.windows_pool("win", &["windows"]);
    config.push_str(&builder(
        "direct",
        &["windows"],
        &[("args", format!("argv = {}", toml_text::list(&argv)))],
    ));
    // Through cmd: caret escaping on top of CommandLineToArgvW quoting.
    config.push_str(&builder(
        "viacmd",
        &["windows"],
        &[(
            "args",
            format!("argv = {}\nshell = \"cmd\"", toml_text::list(&argv)),
        )],
    ));
    let master = setup.master().section(&config).start().await?;
    for name in ["direct", "viacmd"] {
        let (build, log) = run_one(&master, name).await?;
        assert_eq!(build["state"], "succeeded", "{name}: {build}\n{log}");
        assert_eq!(echoed(&log), HOSTILE, "{name}: {log}");
    }
    Ok(())
}

/// The `ping` processes of one test run, told apart from every other run
/// (and from the `cmd` and `start` that carry the same text in their
/// command lines) by a ping count no other run uses. Dropping it kills what
/// is left, so a failed run leaves nothing behind for a later one to meet.
struct Pings {
    counts: [u32; 2],
}

impl Pings {
    fn new() -> Self {
        // Unique per run and per test: the pid, the clock and a counter.
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let base = 100_000 + (std::process::id() ^ nanos ^ (n << 20)) % 1_000_000 * 2;
        Self {
            counts: [base, base + 1],
        }
    }

    /// `start /b` a background ping and run a foreground one.
    fn script(&self) -> String {
        let [bg, fg] = self.counts;
        format!("start /b ping -n {bg} 127.0.0.1 & ping -n {fg} 127.0.0.1")
    }

    /// The live ping processes (not the cmd line that names them) with
    /// count `n`.
    fn running(n: u32) -> Vec<(i32, String)> {
        let args = format!("-n {n} 127.0.0.1");
        procs::matching(&[&args])
            .into_iter()
            .filter(|(_, line)| {
                let program = line.split(' ').next().unwrap_or_default();
                let program = program.to_ascii_lowercase();
                program.ends_with("ping.exe") || program.ends_with("ping")
            })
            .collect()
    }

    /// Waits until both pings run: only then is every process of the tree
    /// started, and a kill has the whole tree to kill.
    async fn wait_running(&self) -> Result<()> {
        for n in self.counts {
            wait::until_true(
                &format!("the ping -n {n} process to run"),
                Duration::from_secs(60),
                || !Self::running(n).is_empty(),
            )
            .await?;
        }
        Ok(())
    }

    /// Waits until neither ping is left.
    async fn wait_gone(&self) -> Result<()> {
        for n in self.counts {
            let left = wait::until_true(
                &format!("no ping -n {n} process"),
                Duration::from_secs(15),
                || Self::running(n).is_empty(),
            )
            .await;
            if left.is_err() {
                panic!("processes left behind: {:?}", Self::running(n));
            }
        }
        Ok(())
    }
}

impl Drop for Pings {
    fn drop(&mut self) {
        for n in self.counts {
            procs::kill_matching(&["ping", &format!("-n {n} 127.0.0.1")]);
        }
    }
}

#[tokio::test]
async fn windows_timeout_kills_the_whole_tree() -> Result<()> {
    let setup = setup();
    let pings = Pings::new();
    let mut config = setup.windows_pool("win", &["windows"]);
    // A background child (`start /b`) and a foreground one.
    config.push_str(&builder(
        "hang",
        &["windows"],
        &[(
            "ping",
            format!("run = \"{}\"\ntimeout = \"8s\"", pings.script()),
        )],
    ));
    let master = setup.master().section(&config).start().await?;
    let ids = master.submit("hang", &[]).await?;
    pings.wait_running().await?;
    let build = master.finished_json(ids[0], BUILD_BOUND).await?;
    assert_eq!(build["state"], "timed_out", "{build}");
    assert_eq!(step_of(&build, 0)["state"], "timed_out", "{build}");
    pings.wait_gone().await?;
    Ok(())
}

#[tokio::test]
async fn windows_cancel_kills_the_whole_tree() -> Result<()> {
    let setup = setup();
    let pings = Pings::new();
    let mut config = setup.windows_pool("win", &["windows"]);
    config.push_str(&builder(
        "hang",
        &["windows"],
        &[("ping", format!("run = \"{}\"", pings.script()))],
    ));
    let master = setup.master().section(&config).start().await?;
    let ids = master.submit("hang", &[]).await?;
    pings.wait_running().await?;
    master.cancel(ids[0]).await?;
    let build = master.finished_json(ids[0], BUILD_BOUND).await?;
    assert_eq!(build["state"], "cancelled", "{build}");
    pings.wait_gone().await?;
    Ok(())
}

#[tokio::test]
async fn windows_and_linux_legs_from_one_submit() -> Result<()> {
    let setup = setup();
    let mut config = setup.linux_pool("linux", &["linux"]);
    config.push_str(&setup.windows_pool("win", &["windows"]));
    config.push_str(
        "[[builders]]\nname = \"both\"\nlabels = [\"{os}\"]\nretries = 0\n\
         matrix = { os = [\"linux\", \"windows\"] }\n\n\
         [[builders.steps]]\nname = \"where\"\n\
         run = 'echo \"leg $OS on $(uname -s)\"'\n\
         run_windows = 'echo leg %OS% on & ver'\n\n",
    );
    let master = setup.master().section(&config).start().await?;
    let started = Instant::now();
    let out = master
        .cli_timeout(&["submit", "both", "--follow"], BUILD_BOUND)
        .await?;
    let (stdout, stderr) = (&out.stdout, &out.stderr);
    assert_eq!(
        out.code,
        Some(0),
        "submit --follow after {:?}:\n{stdout}\n{stderr}\nmaster:\n{}",
        started.elapsed(),
        master.log_tail()
    );

    // Each pool's worker reported its own platform in its hello.
    let workers: Value = master.api_get("/api/v1/workers").await?;
    let os_of = |pool: &str| -> Vec<String> {
        workers
            .as_array()
            .into_iter()
            .flatten()
            .filter(|w| w["pool"] == pool)
            .map(|w| w["os"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    assert_eq!(os_of("win"), ["windows"], "{workers}");
    assert_eq!(os_of("linux"), ["linux"], "{workers}");

    // Each leg ran where its cell says.
    let builds: Value = master.api_get("/api/v1/builds").await?;
    let builds = builds
        .as_array()
        .or_else(|| builds["builds"].as_array())
        .cloned()
        .unwrap_or_default();
    assert_eq!(builds.len(), 2, "{builds:?}");
    for build in builds {
        let id = build["id"].as_i64().unwrap_or_default();
        let os = build["cell"]["os"].as_str().unwrap_or_default().to_owned();
        let log = master.log_text(id).await?;
        assert_eq!(build["state"], "succeeded", "{build}");
        match os.as_str() {
            "linux" => assert!(log.contains("leg linux on Linux"), "{log}"),
            // The cell's OS=windows overrides Windows' own OS=Windows_NT.
            "windows" => {
                assert!(log.contains("leg windows on"), "{log}");
                assert!(log.contains("Microsoft Windows"), "{log}");
            }
            other => panic!("unexpected cell os {other:?}"),
        }
    }
    Ok(())
}

#[tokio::test]
async fn windows_worker_crash_kills_its_steps() -> Result<()> {
    let setup = setup();
    let pings = Pings::new();
    let mut config = setup.windows_pool("win", &["windows"]);
    config.push_str(&builder(
        "hang",
        &["windows"],
        &[("ping", format!("run = \"{}\"", pings.script()))],
    ));
    let master = setup.master().section(&config).start().await?;
    let ids = master.submit("hang", &[]).await?;
    pings.wait_running().await?;
    let workers = wine::worker_pids(&master.master_id());
    assert_eq!(workers.len(), 1, "one worker: {workers:?}");
    // No chance to clean up: the job object's kill-on-close must do it.
    let pid = nix::unistd::Pid::from_raw(i32::try_from(workers[0])?);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL)?;
    pings.wait_gone().await?;
    let build = master.finished_json(ids[0], BUILD_BOUND).await?;
    assert_eq!(build["state"], "worker_lost", "{build}");
    Ok(())
}

/// Artifacts and a cache through the Windows worker: its globs take
/// Windows paths as `/`-separated, the file arrives byte for byte (CRLF and
/// all), and the second build restores what the first saved.
#[tokio::test]
async fn windows_artifacts_upload_and_a_cache_restores() -> Result<()> {
    let setup = setup();
    let mut config = setup.windows_pool("win", &["windows"]);
    config.push_str(&builder(
        "art",
        &["windows"],
        &[(
            "make",
            "run = 'if exist deps\\x.txt (echo restored) else (echo cold) & mkdir out\\sub & echo hello>out\\sub\\a.txt& mkdir deps & echo built>deps\\x.txt'\n\
             artifacts = [\"out/**/*.txt\"]"
                .into(),
        )],
    ));
    let config = config.replace(
        "name = \"art\"\n",
        "name = \"art\"\ncaches = [{ key = \"win-deps\", paths = [\"deps\"] }]\n",
    );
    let master = setup.master().section(&config).start().await?;
    let (build, log) = run_one(&master, "art").await?;
    assert_eq!(build["state"], "succeeded", "{build:#}\n{log}");
    assert!(log.contains("cache: miss for win-deps"), "{log}");
    assert!(log.contains("cache: saved win-deps"), "{log}");
    let id = build["id"].as_i64().unwrap_or_default();
    let list: Value = master
        .api_get(&format!("/api/v1/builds/{id}/artifacts"))
        .await?;
    assert_eq!(list[0]["path"], "out/sub/a.txt", "{list:#}");
    let out = master
        .cli(&[
            "artifacts",
            &id.to_string(),
            "--get",
            "out/sub/a.txt",
            "-o",
            "got",
        ])
        .await?;
    assert!(out.success(), "{out:?}");
    let got = std::fs::read(master.dir().join("got").join("a.txt"))?;
    assert_eq!(got, b"hello\r\n");

    let (build, log) = run_one(&master, "art").await?;
    assert_eq!(build["state"], "succeeded", "{build:#}\n{log}");
    assert!(log.contains("cache: restored win-deps (hit)"), "{log}");
    assert!(
        log.contains("restored\r\n") || log.contains("restored \r\n"),
        "{log}"
    );
    Ok(())
}
