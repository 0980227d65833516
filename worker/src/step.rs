//! Running one step: prepare its directory and command, spawn it, stream its
//! output, enforce its timeout, and report how it ended.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use burst_proto::{run_step, OutputStream, RunStep, StepFinished};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::journal::Journal;
use crate::platform::{self, ProcessTree};
use crate::{artifacts, output, step_env};

/// How long a tree gets between SIGTERM and SIGKILL.
const KILL_GRACE: Duration = Duration::from_secs(2);

/// The step lease: until when the master's last word lets steps run
/// (`None`: no lease yet).
pub(crate) type Lease = watch::Receiver<Option<Instant>>;

/// What a step needs from the worker.
#[derive(Clone)]
pub(crate) struct StepContext {
    pub(crate) worker_id: String,
    pub(crate) work_dir: PathBuf,
    pub(crate) step_user: Option<crate::step_user::StepUser>,
    /// Where output and the result go; sessions take them from there.
    pub(crate) journal: Journal,
    pub(crate) lease: Lease,
    /// The current session's connection (`None` between sessions).
    pub(crate) channel: watch::Receiver<Option<tonic::transport::Channel>>,
}

/// Why a step is being stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// The master cancelled it: report `cancelled`.
    Cancel,
    /// The worker is shutting down: also reported as `cancelled`.
    Kill,
    /// The master no longer wants it (the step's stop handle was dropped):
    /// kill the tree and report nothing.
    Lost,
    /// The step lease ran out without a renewal: kill the tree (fencing: the
    /// master may retry the build elsewhere) and report that.
    LeaseExpired,
}

/// Stop requests for one step. A dropped sender counts as [`Stop::Lost`];
/// a lease that runs out as [`Stop::LeaseExpired`] (once).
pub(crate) struct StopSignal {
    rx: mpsc::Receiver<Stop>,
    lease: Option<Lease>,
}

impl StopSignal {
    pub(crate) fn new(rx: mpsc::Receiver<Stop>, lease: Lease) -> Self {
        Self {
            rx,
            lease: Some(lease),
        }
    }

    pub(crate) async fn next(&mut self) -> Stop {
        loop {
            let Some(lease) = self.lease.as_mut() else {
                return self.rx.recv().await.unwrap_or(Stop::Lost);
            };
            let until = *lease.borrow_and_update();
            tokio::select! {
                why = self.rx.recv() => return why.unwrap_or(Stop::Lost),
                () = sleep_until(until) => {
                    if lease.has_changed().unwrap_or(false) {
                        continue;
                    }
                    self.lease = None;
                    return Stop::LeaseExpired;
                }
                changed = lease.changed() => if changed.is_err() {
                    // The worker is going away; its own stop follows.
                    self.lease = None;
                },
            }
        }
    }
}

/// Runs `run` to the end and journals its `StepFinished`, unless the master
/// stops wanting it first.
pub(crate) async fn run(run: RunStep, ctx: StepContext, mut stop: StopSignal) {
    let started = Instant::now();
    tracing::info!(step = %run.step_run_id, name = %run.name, build = %run.build_key, "step started");
    let Some(mut finished) = execute(&run, &ctx, &mut stop).await else {
        tracing::info!(step = %run.step_run_id, "step killed: the master no longer wants it");
        ctx.journal.forget(&run.step_run_id);
        return;
    };
    if artifacts::wanted(&run, &finished) {
        queue_artifacts(&run, &ctx, &mut finished).await;
    }
    finished.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    tracing::info!(
        step = %run.step_run_id,
        exit_code = ?finished.exit_code,
        signal = ?finished.signal,
        timed_out = finished.timed_out,
        cancelled = finished.cancelled,
        error = %finished.error,
        "step finished"
    );
    ctx.journal.finish(finished);
}

/// Finds the step's artifacts and hands them to the journal, which sends
/// them before the result. A step that failed to collect them fails with
/// the reason; one that had failed already keeps its own and logs this one.
async fn queue_artifacts(run: &RunStep, ctx: &StepContext, finished: &mut StepFinished) {
    let say = |line: String| {
        ctx.journal.append(
            &run.step_run_id,
            OutputStream::Stdout as i32,
            format!("{line}\n").into_bytes(),
        )
    };
    let collected = match step_dir(&ctx.work_dir, &run.build_key, "") {
        Ok(root) => {
            let (patterns, limit) = (run.artifacts.clone(), run.artifact_limit);
            tokio::task::spawn_blocking(move || artifacts::collect(&root, &patterns, limit))
                .await
                .unwrap_or_else(|e| Err(format!("artifacts: failed to collect: {e}")))
        }
        Err(e) => Err(e),
    };
    match collected {
        Ok(c) => {
            for line in c.unmatched {
                say(line).await;
            }
            let bytes: u64 = c.files.iter().map(|f| f.size).sum();
            say(format!(
                "artifacts: uploading {} file(s), {bytes} bytes",
                c.files.len()
            ))
            .await;
            ctx.journal.artifacts(&run.step_run_id, c.files);
        }
        Err(e) if finished.error.is_empty() && finished.exit_code == Some(0) => {
            tracing::warn!(step = %run.step_run_id, "{e}");
            finished.error = e;
        }
        Err(e) => say(e).await,
    }
}

/// A `StepFinished` for a step that never started.
pub(crate) fn rejected(step_run_id: String, error: String) -> StepFinished {
    StepFinished {
        step_run_id,
        error,
        ..Default::default()
    }
}

/// `None` when the master stopped wanting the step while it ran.
async fn execute(run: &RunStep, ctx: &StepContext, stop: &mut StopSignal) -> Option<StepFinished> {
    if let Some(run_step::Command::Checkout(checkout)) = &run.command {
        return crate::checkout::run(run, checkout, ctx, stop).await;
    }
    if let Some(run_step::Command::Cache(cache)) = &run.command {
        return crate::cache::run(run, cache, ctx, stop).await;
    }
    let mut finished = StepFinished {
        step_run_id: run.step_run_id.clone(),
        ..Default::default()
    };
    let (mut cmd, script_file) = match prepare(run, ctx).await {
        Ok(prepared) => prepared,
        Err(error) => {
            finished.error = error;
            return Some(finished);
        }
    };
    let _script_file = script_file.map(RemoveOnDrop);
    let deadline = deadline(run);
    match supervise(&mut cmd, run, ctx, stop, deadline, &mut finished, None).await {
        Err(e) => finished.error = format!("failed to start {}: {e}", describe(run)),
        Ok(None) => return None,
        Ok(Some(Ok(status))) => {
            (finished.exit_code, finished.signal) = platform::exit_parts(status);
        }
        Ok(Some(Err(e))) => finished.error = format!("failed to wait for the step: {e}"),
    }
    Some(finished)
}

/// When a step started now must be over (`None`: no timeout).
pub(crate) fn deadline(run: &RunStep) -> Option<Instant> {
    (run.timeout_ms > 0).then(|| Instant::now() + Duration::from_millis(run.timeout_ms))
}

/// Spawns `cmd` as part of step `run`, journals its output (and keeps the
/// end of its stderr in `tail`), and waits for it, killing its tree at
/// `deadline` or when `stop` says so (recorded in `finished`). `Err`: it
/// could not be spawned; `Ok(None)`: the master no longer wants the step.
pub(crate) async fn supervise(
    cmd: &mut Command,
    run: &RunStep,
    ctx: &StepContext,
    stop: &mut StopSignal,
    deadline: Option<Instant>,
    finished: &mut StepFinished,
    tail: Option<output::Tail>,
) -> std::io::Result<Option<std::io::Result<ExitStatus>>> {
    let (mut child, tree) = platform::spawn(cmd)?;
    let tree = TreeGuard(Some(tree));
    if let Some(stdin) = child.stdin.take() {
        feed_stdin(stdin, run.stdin.clone(), run.step_run_id.clone());
    }

    let (exited_tx, exited_rx) = oneshot::channel();
    let mut pump = AbortOnDrop(tokio::spawn(output::pump(
        run.step_run_id.clone(),
        child.stdout.take(),
        child.stderr.take(),
        ctx.journal.clone(),
        exited_rx,
        tail,
    )));

    let mut lost = false;
    let status = tokio::select! {
        status = child.wait() => status,
        () = sleep_until(deadline) => {
            finished.timed_out = true;
            kill_tree(&mut child, &tree).await
        }
        why = stop.next() => {
            match why {
                Stop::Cancel | Stop::Kill => finished.cancelled = true,
                Stop::Lost => lost = true,
                Stop::LeaseExpired => {
                    tracing::warn!(step = %run.step_run_id, "the step lease ran out without a word from the master; killing the step");
                    finished.lease_expired = true;
                    finished.error = "the worker killed the step: its step lease ran out without a renewal from the master".to_owned();
                    // Fencing: no grace, the master may start a retry.
                    tree.kill();
                }
            }
            kill_tree(&mut child, &tree).await
        }
    };
    // Whatever the step left behind in its group (`sleep 1000 &`) goes too.
    tree.sweep();
    let _ = exited_tx.send(());
    if lost {
        return Ok(None);
    }

    // StepFinished goes after all of the step's output.
    loop {
        tokio::select! {
            r = &mut pump.0 => {
                if let Err(e) = r {
                    tracing::warn!(step = %run.step_run_id, "failed to forward the step's output: {e}");
                }
                break;
            }
            why = stop.next() => if why == Stop::Lost {
                return Ok(None);
            },
        }
    }
    Ok(Some(status))
}

/// Writes `data` to the step's stdin and closes it, in a task: a step that
/// reads nothing must not block the worker. The bytes are a secret (a JIT
/// runner config): only their size is ever logged.
fn feed_stdin(mut stdin: tokio::process::ChildStdin, data: Vec<u8>, step: String) {
    use tokio::io::AsyncWriteExt;
    tokio::spawn(async move {
        if let Err(e) = stdin.write_all(&data).await {
            // The step exited (or closed stdin) before reading it all.
            tracing::warn!(step = %step, bytes = data.len(), "failed to write the step's stdin: {e}");
        }
        drop(stdin);
    });
}

/// Creates the build's directory and the step's working directory in it
/// (both the step user's, if any) and returns the latter.
pub(crate) async fn prepare_dir(run: &RunStep, ctx: &StepContext) -> Result<PathBuf, String> {
    let dir = step_dir(&ctx.work_dir, &run.build_key, &run.working_dir)?;
    let build_dir = ctx.work_dir.join(&run.build_key);
    crate::workspace::create_build_dir(&build_dir, ctx.step_user.as_ref())
        .await
        .map_err(|e| format!("failed to create build dir {}: {e}", build_dir.display()))?;
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| format!("failed to create working dir {}: {e}", dir.display()))?;
    if let Some(user) = &ctx.step_user {
        crate::step_user::give(&build_dir, &dir, user).map_err(|e| {
            format!(
                "failed to give working dir {} to {}: {e}",
                dir.display(),
                user.name
            )
        })?;
    }
    Ok(dir)
}

/// The directory and command for `run`, and the script file written for
/// it, if any (a multi-line cmd script on Windows).
async fn prepare(run: &RunStep, ctx: &StepContext) -> Result<(Command, Option<PathBuf>), String> {
    let dir = prepare_dir(run, ctx).await?;
    let (mut cmd, script_file) = match &run.command {
        Some(run_step::Command::Script(script)) => {
            let shell = if run.shell.is_empty() {
                platform::DEFAULT_SHELL
            } else {
                run.shell.as_str()
            };
            let scratch = ctx
                .work_dir
                .join(SCRIPTS_DIR)
                .join(file_stem(&run.step_run_id));
            platform::shell_command(shell, script, &scratch)?
        }
        Some(run_step::Command::Argv(argv)) => {
            (platform::argv_command(&argv.args, &run.shell)?, None)
        }
        Some(run_step::Command::Checkout(_) | run_step::Command::Cache(_)) | None => {
            return Err("failed to run step: it has neither a script nor an argv".to_owned())
        }
    };
    let sent: BTreeMap<&String, &String> = run.env.iter().collect();
    cmd.current_dir(&dir)
        // From scratch: the worker's own environment (its launch token
        // included) is not the build's.
        .env_clear()
        .envs(step_env::build(
            step_env::base(),
            &sent,
            &ctx.worker_id,
            step_env::master_id(),
        ))
        .stdin(if run.stdin.is_empty() {
            Stdio::null()
        } else {
            Stdio::piped()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Last resort if this task is aborted; the normal paths kill the tree.
        .kill_on_drop(true);
    if let Some(user) = &ctx.step_user {
        crate::step_user::apply(&mut cmd, user);
    }
    Ok((cmd, script_file))
}

/// Where script files go, inside the worker's work dir (build keys are
/// `build-…`, so no build directory can be named like it).
const SCRIPTS_DIR: &str = ".scripts";

/// `id` as a file name: anything but ASCII letters, digits, `-` and `_`
/// becomes `_`.
fn file_stem(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Removes a step's script file once the step is over.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.0) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!("failed to remove script file {}: {e}", self.0.display());
            }
        }
    }
}

/// `<work_dir>/<build_key>/<working_dir>`, refusing anything that would
/// leave the build's directory.
pub(crate) fn step_dir(
    work_dir: &Path,
    build_key: &str,
    working_dir: &str,
) -> Result<PathBuf, String> {
    let mut key = Path::new(build_key).components();
    let single_name = matches!((key.next(), key.next()), (Some(Component::Normal(_)), None));
    if !single_name || build_key.contains(['/', '\\']) {
        return Err(format!(
            "failed to use build key {build_key:?}: it must be a plain directory name"
        ));
    }
    let mut dir = work_dir.join(build_key);
    // Configs are shared by Linux and Windows workers: `/` and `\` both
    // separate, and the path gets this OS's own separators.
    if working_dir.starts_with(['/', '\\']) {
        return Err(format!(
            "failed to use working dir {working_dir:?}: it must be relative"
        ));
    }
    for part in working_dir.split(['/', '\\']) {
        let mut parts = Path::new(part).components();
        match (parts.next(), parts.next()) {
            (None | Some(Component::CurDir), None) => {}
            (Some(Component::Normal(name)), None) => dir.push(name),
            (Some(Component::ParentDir), None) => {
                return Err(format!(
                    "failed to use working dir {working_dir:?}: it must not contain '..'"
                ))
            }
            // A drive (`C:`) or anything else that is not a plain name.
            _ => {
                return Err(format!(
                    "failed to use working dir {working_dir:?}: it must be relative"
                ))
            }
        }
    }
    Ok(dir)
}

fn describe(run: &RunStep) -> String {
    match &run.command {
        Some(run_step::Command::Argv(argv)) => {
            format!(
                "{:?}",
                argv.args.first().map(String::as_str).unwrap_or_default()
            )
        }
        _ if run.shell.is_empty() => format!("shell {:?}", platform::DEFAULT_SHELL),
        _ => format!("shell {:?}", run.shell),
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// SIGTERM the tree, give it [`KILL_GRACE`], then SIGKILL it.
async fn kill_tree(child: &mut Child, tree: &TreeGuard) -> std::io::Result<ExitStatus> {
    tree.terminate();
    if let Ok(status) = tokio::time::timeout(KILL_GRACE, child.wait()).await {
        return status;
    }
    tree.kill();
    // In case the main process somehow left the group.
    let _ = child.start_kill();
    child.wait().await
}

/// Kills the tree if the step task is dropped before it could clean up.
struct TreeGuard(Option<ProcessTree>);

impl TreeGuard {
    fn terminate(&self) {
        if let Some(tree) = &self.0 {
            tree.terminate();
        }
    }

    fn kill(&self) {
        if let Some(tree) = &self.0 {
            tree.kill();
        }
    }

    /// After the main process exited: SIGTERM what is left of the tree now
    /// and SIGKILL it after the grace period, without holding up the step's
    /// result. (The group id could in theory be reused within the grace
    /// period; the window is small enough to accept.)
    fn sweep(mut self) {
        if let Some(tree) = self.0.take() {
            tree.terminate();
            tokio::spawn(async move {
                tokio::time::sleep(KILL_GRACE).await;
                tree.kill();
            });
        }
    }
}

impl Drop for TreeGuard {
    fn drop(&mut self) {
        if let Some(tree) = self.0.take() {
            tree.kill();
        }
    }
}

struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_dir_stays_inside_the_build() {
        let work = Path::new("/w");
        assert_eq!(step_dir(work, "b1", ""), Ok(PathBuf::from("/w/b1")));
        assert_eq!(
            step_dir(work, "b1", "a/./b"),
            Ok(PathBuf::from("/w/b1/a/b"))
        );
        assert!(step_dir(work, "b1", "../x").is_err());
        assert!(step_dir(work, "b1", "a/../../x").is_err());
        assert!(step_dir(work, "b1", "/etc").is_err());
        assert!(step_dir(work, "", "").is_err());
        assert!(step_dir(work, "..", "").is_err());
        assert!(step_dir(work, ".", "").is_err());
        assert!(step_dir(work, "a/b", "").is_err());
        assert!(step_dir(work, "/abs", "").is_err());
    }

    #[test]
    fn step_dir_takes_both_separators() {
        let work = Path::new("/w");
        let want: PathBuf = ["/w", "b1", "a", "b", "c"].iter().collect();
        assert_eq!(step_dir(work, "b1", "a\\b/c"), Ok(want.clone()));
        assert_eq!(step_dir(work, "b1", "a//b\\.\\c\\"), Ok(want));
        assert!(step_dir(work, "b1", "a\\..\\..\\x").is_err());
        assert!(step_dir(work, "b1", "\\abs").is_err());
        assert!(step_dir(work, "b1", "\\\\server\\share").is_err());
    }

    #[test]
    fn file_stem_is_a_plain_name() {
        assert_eq!(file_stem("12.0.3"), "12_0_3");
        assert_eq!(file_stem("a/b\\c:d"), "a_b_c_d");
    }
}
