//! Windows: not ported yet beyond the basics. A step runs in a new process
//! group and its tree is ended with `taskkill /T`. (A job object would be
//! tighter, but needs unsafe Win32 calls; that comes with the real port.)

use std::io;
use std::process::{ExitStatus, Stdio};

use tokio::process::{Child, Command};

/// The shell a script step runs with when it names none.
pub(crate) const DEFAULT_SHELL: &str = "cmd";

const CREATE_NEW_PROCESS_GROUP: u32 = 0x0000_0200;
const CREATE_NO_WINDOW: u32 = 0x0800_0000;

/// The command that runs `script` with `shell`.
pub(crate) fn shell_command(shell: &str, script: &str) -> Result<Command, String> {
    let mut cmd = match shell {
        "cmd" => {
            let mut cmd = Command::new("cmd");
            // cmd parses its own command line; pass the script untouched.
            cmd.args(["/D", "/S", "/C"]).raw_arg(script);
            return Ok(cmd);
        }
        "powershell" | "pwsh" => {
            let mut cmd = Command::new(shell);
            cmd.args(["-NoProfile", "-NonInteractive", "-Command"]);
            cmd
        }
        "sh" | "bash" => {
            let mut cmd = Command::new(shell);
            cmd.arg("-c");
            cmd
        }
        other => return Err(format!("failed to run script: unknown shell {other:?}")),
    };
    cmd.arg(script);
    Ok(cmd)
}

/// Spawns `cmd` in a new process group without a console window.
pub(crate) fn spawn(cmd: &mut Command) -> io::Result<(Child, ProcessTree)> {
    cmd.creation_flags(CREATE_NEW_PROCESS_GROUP | CREATE_NO_WINDOW);
    let child = cmd.spawn()?;
    let pid = child
        .id()
        .ok_or_else(|| io::Error::other("failed to get the pid of the spawned process"))?;
    Ok((child, ProcessTree { pid }))
}

/// A step's process tree, rooted at the process we spawned.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ProcessTree {
    pid: u32,
}

impl ProcessTree {
    /// Windows has no SIGTERM for console programs; end the tree.
    pub(crate) fn terminate(&self) {
        self.kill();
    }

    /// Ends every process of the tree now.
    pub(crate) fn kill(&self) {
        let spawned = Command::new("taskkill")
            .args(["/T", "/F", "/PID", &self.pid.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        if let Err(e) = spawned {
            tracing::warn!(
                pid = self.pid,
                "failed to run taskkill on the step's tree: {e}"
            );
        }
    }
}

/// `(exit_code, signal)`: Windows has no signals.
pub(crate) fn exit_parts(status: ExitStatus) -> (Option<i32>, Option<i32>) {
    (status.code(), None)
}

/// Resolves when the worker is asked to stop (Ctrl-C).
pub(crate) async fn shutdown_signal() {
    match tokio::signal::ctrl_c().await {
        Ok(()) => tracing::info!("received Ctrl-C"),
        Err(e) => {
            tracing::warn!("failed to listen for Ctrl-C: {e}");
            std::future::pending::<()>().await;
        }
    }
}
