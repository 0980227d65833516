//! Unix: a step leads its own process group, and the group is what we kill.

use std::io;
#[cfg(target_os = "linux")]
use std::os::fd::AsFd;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;

use nix::errno::Errno;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

/// The shell a script step runs with when it names none.
pub(crate) const DEFAULT_SHELL: &str = "sh";

/// The command that runs `script` with `shell`. Unix shells take any
/// script as one argument, so `_scratch` (where Windows writes batch files)
/// is never used and no file is returned.
pub(crate) fn shell_command(
    shell: &str,
    script: &str,
    _scratch: &Path,
) -> Result<(Command, Option<PathBuf>), String> {
    let mut cmd = match shell {
        "sh" | "bash" => {
            let mut cmd = Command::new(shell);
            cmd.arg("-c");
            cmd
        }
        "pwsh" => {
            let mut cmd = Command::new("pwsh");
            cmd.args(["-NoProfile", "-NonInteractive", "-Command"]);
            cmd
        }
        "cmd" | "powershell" => {
            return Err(format!(
                "failed to run script: shell {shell:?} is only available on Windows"
            ))
        }
        other => return Err(format!("failed to run script: unknown shell {other:?}")),
    };
    cmd.arg(script);
    Ok((cmd, None))
}

/// The command that runs `argv`: the program directly (a step's shell only
/// matters for argv steps on Windows).
pub(crate) fn argv_command(argv: &[String], _shell: &str) -> Result<Command, String> {
    let Some((program, args)) = argv.split_first() else {
        return Err("failed to run step: argv is empty".to_owned());
    };
    let mut cmd = Command::new(program);
    cmd.args(args);
    Ok(cmd)
}

/// Spawns `cmd` as the leader of a new process group, so that killing the
/// group reaches everything the step started and nothing else.
pub(crate) fn spawn(cmd: &mut Command) -> io::Result<(Child, ProcessTree)> {
    cmd.process_group(0);
    let child = cmd.spawn()?;
    widen_pipes(&child);
    let pid = child
        .id()
        .and_then(|pid| i32::try_from(pid).ok())
        .ok_or_else(|| io::Error::other("failed to get the pid of the spawned process"))?;
    Ok((
        child,
        ProcessTree {
            pgid: Pid::from_raw(pid),
        },
    ))
}

/// Bytes a step's output pipe holds (Linux's default is 64 KiB): a step
/// that prints fast fills a larger pipe while the worker sends, so each read
/// takes more at once. 1 MiB is the most an unprivileged process may ask.
#[cfg(target_os = "linux")]
const PIPE_SIZE: i32 = 1024 * 1024;

/// Asks for [`PIPE_SIZE`] on the step's output pipes; a refusal (an older
/// kernel, a lower `pipe-max-size`) leaves the default, which works.
fn widen_pipes(child: &Child) {
    #[cfg(target_os = "linux")]
    {
        use nix::fcntl::{fcntl, FcntlArg};
        let fds = [
            child.stdout.as_ref().map(|p| p.as_fd()),
            child.stderr.as_ref().map(|p| p.as_fd()),
        ];
        for fd in fds.into_iter().flatten() {
            if let Err(e) = fcntl(fd, FcntlArg::F_SETPIPE_SZ(PIPE_SIZE)) {
                tracing::debug!("failed to widen a step's output pipe: {e}");
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = child;
}

/// A step's process group.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ProcessTree {
    pgid: Pid,
}

impl ProcessTree {
    /// Asks every process of the tree to stop (SIGTERM).
    pub(crate) fn terminate(&self) {
        self.signal(Signal::SIGTERM);
    }

    /// Ends every process of the tree now (SIGKILL).
    pub(crate) fn kill(&self) {
        self.signal(Signal::SIGKILL);
    }

    fn signal(&self, signal: Signal) {
        match killpg(self.pgid, signal) {
            // ESRCH: the group is already empty.
            Ok(()) | Err(Errno::ESRCH) => {}
            Err(e) => {
                tracing::warn!(pgid = %self.pgid, "failed to send {signal} to the step's process group: {e}")
            }
        }
    }
}

/// `(exit_code, signal)`: exactly one is set for a finished process.
pub(crate) fn exit_parts(status: ExitStatus) -> (Option<i32>, Option<i32>) {
    (status.code(), status.signal())
}

/// Resolves when the worker is asked to stop (SIGTERM or SIGINT).
pub(crate) async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (term, int) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(term), Ok(int)) => (term, int),
        (Err(e), _) | (_, Err(e)) => {
            tracing::warn!("failed to listen for SIGTERM/SIGINT: {e}");
            return std::future::pending().await;
        }
    };
    let (mut term, mut int) = (term, int);
    tokio::select! {
        _ = term.recv() => tracing::info!("received SIGTERM"),
        _ = int.recv() => tracing::info!("received SIGINT"),
    }
}
