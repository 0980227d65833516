//! Running a command to completion with a deadline, keeping what it said.

use std::fmt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::process::Command;

/// What a finished command did.
#[derive(Clone)]
pub struct Output {
    /// The exit code; `None` when killed by a signal.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Output {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

impl fmt::Debug for Output {
    // Multi-line, so a failed assert shows the command's output readably.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "exit code {:?} after {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}\n--- end ---",
            self.code, self.elapsed, self.stdout, self.stderr
        )
    }
}

/// Runs `cmd` (stdin closed) and waits at most `timeout` for it; a command
/// still running then is killed and reported as an error.
pub async fn run(cmd: Command, timeout: Duration) -> anyhow::Result<Output> {
    run_with_stdin(cmd, None, timeout).await
}

/// [`run`] with `input` written to the command's stdin, which is then closed.
pub async fn run_with_stdin(
    mut cmd: Command,
    input: Option<&[u8]>,
    timeout: Duration,
) -> anyhow::Result<Output> {
    let shown = format!("{:?}", cmd.as_std());
    let stdin = if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    };
    cmd.stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .with_context(|| format!("failed to start {shown}"))?;
    if let (Some(input), Some(mut pipe)) = (input, child.stdin.take()) {
        use tokio::io::AsyncWriteExt;
        pipe.write_all(input)
            .await
            .with_context(|| format!("failed to write the stdin of {shown}"))?;
        // Dropped here: the command sees the end of its input.
    }
    let out = tokio::time::timeout(timeout, child.wait_with_output())
        .await
        .with_context(|| format!("{shown} still running after {timeout:?}"))?
        .with_context(|| format!("failed to wait for {shown}"))?;
    Ok(Output {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed: start.elapsed(),
    })
}
