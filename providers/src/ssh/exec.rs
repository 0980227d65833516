//! Running one rendered command on a host over its multiplexed session.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use openssh::{Session, Stdio};
use tokio::io::AsyncWriteExt;

use super::power::tail;
use crate::ProviderError;

/// What the remote command reads on stdin.
pub enum Input<'a> {
    Nothing,
    /// One line (the launch token): never on a command line.
    Line(&'a str),
    /// A local file's bytes (the worker binary).
    File(&'a Path),
}

/// Runs `line`, returns its stdout. A non-zero exit, a broken connection or
/// the timeout is an error naming `what` and the host.
pub async fn exec(
    session: &Arc<Session>,
    host: &str,
    what: &str,
    line: &str,
    input: Input<'_>,
    timeout: Duration,
) -> Result<String, ProviderError> {
    let fail = |detail: String| {
        ProviderError::transient(format!("failed to {what} on ssh host {host}: {detail}"))
    };
    let mut cmd = session.clone().arc_raw_command(line);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    match input {
        Input::Nothing => {
            cmd.stdin(Stdio::null());
        }
        Input::Line(_) => {
            cmd.stdin(Stdio::piped());
        }
        Input::File(path) => {
            let file = std::fs::File::open(path).map_err(|e| {
                ProviderError::permanent(format!(
                    "failed to {what} on ssh host {host}: cannot read {}: {e}",
                    path.display()
                ))
                .with_source(e)
            })?;
            cmd.stdin(file);
        }
    }
    let run = async {
        let mut child = cmd.spawn().await?;
        if let (Input::Line(text), Some(mut stdin)) = (&input, child.stdin().take()) {
            let mut data = text.as_bytes().to_vec();
            data.push(b'\n');
            stdin
                .write_all(&data)
                .await
                .map_err(openssh::Error::ChildIo)?;
            stdin.shutdown().await.map_err(openssh::Error::ChildIo)?;
        }
        child.wait_with_output().await
    };
    let output = match tokio::time::timeout(timeout, run).await {
        Err(_) => return Err(fail(format!("no answer within {}s", timeout.as_secs()))),
        Ok(Err(e)) => {
            let mut text = e.to_string();
            if let Some(source) = std::error::Error::source(&e) {
                text = format!("{text}: {source}");
            }
            return Err(fail(text).with_source(e));
        }
        Ok(Ok(output)) => output,
    };
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if output.status.success() {
        return Ok(stdout);
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stderr = stderr.trim();
    let detail = if stderr.is_empty() {
        stdout.trim()
    } else {
        stderr
    };
    Err(fail(format!("{}: {}", output.status, tail(detail, 600))))
}
