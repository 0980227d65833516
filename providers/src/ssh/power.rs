//! A host's `wake` and `sleep` commands: argv lists run on the master
//! (Wake-on-LAN, `virsh start`, `ipmitool ...`), never through a shell.

use std::process::Stdio;
use std::time::Duration;

use crate::ProviderError;

/// Runs `argv` to completion within `timeout`; a non-zero exit is an error
/// carrying the end of its output.
pub async fn run(
    what: &str,
    host: &str,
    argv: &[String],
    timeout: Duration,
) -> Result<(), ProviderError> {
    let Some((program, args)) = argv.split_first() else {
        return Ok(());
    };
    // Output goes to a file, not a pipe: a command that leaves a daemon
    // behind (it holds the pipe open) must not look like it never ends.
    let capture = tempfile::tempfile().map_err(|e| {
        ProviderError::transient(format!(
            "failed to {what} ssh host {host}: cannot create a temporary file: {e}"
        ))
    })?;
    let stdout = capture
        .try_clone()
        .map_err(|e| ProviderError::transient(format!("failed to {what} ssh host {host}: {e}")))?;
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(capture.try_clone().map_err(|e| {
            ProviderError::transient(format!("failed to {what} ssh host {host}: {e}"))
        })?)
        .kill_on_drop(true);
    tracing::info!(%host, command = ?argv, "running the host's {what} command");
    let status = match tokio::time::timeout(timeout, cmd.status()).await {
        Err(_) => {
            return Err(ProviderError::transient(format!(
                "failed to {what} ssh host {host}: {program:?} did not finish within {}s",
                timeout.as_secs()
            )))
        }
        Ok(Err(e)) => {
            return Err(ProviderError::permanent(format!(
                "failed to {what} ssh host {host}: cannot run {program:?}: {e}"
            )))
        }
        Ok(Ok(status)) => status,
    };
    if status.success() {
        return Ok(());
    }
    let text = read_all(capture);
    Err(ProviderError::transient(format!(
        "failed to {what} ssh host {host}: {program:?} exited with {status}: {}",
        tail(text.trim(), 400)
    )))
}

fn read_all(mut file: std::fs::File) -> String {
    use std::io::{Read, Seek};
    let mut text = String::new();
    if file.rewind().is_ok() {
        let mut raw = Vec::new();
        let _ = file.read_to_end(&mut raw);
        text = String::from_utf8_lossy(&raw).into_owned();
    }
    text
}

/// The last `max` bytes of `s`, on a character boundary.
pub fn tail(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_argv_without_a_shell() {
        let dir = tempfile::tempdir().expect("tempdir");
        let marker = dir.path().join("woke; touch pwned");
        let argv = vec!["touch".to_owned(), marker.to_string_lossy().into_owned()];
        run("wake", "h", &argv, Duration::from_secs(10))
            .await
            .expect("touch runs");
        assert!(marker.exists());
        assert!(!std::path::Path::new("pwned").exists());
    }

    #[tokio::test]
    async fn a_command_that_leaves_a_daemon_behind_still_finishes() {
        // The background sleep keeps stdout and stderr open after sh exits.
        let argv: Vec<String> = ["sh", "-c", "sleep 8 & echo started"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        // Waiting for the output to end would run into the timeout.
        run("wake", "h", &argv, Duration::from_secs(4))
            .await
            .expect("sh exits at once");
    }

    #[tokio::test]
    async fn failures_name_the_host_and_the_output() {
        let argv = vec![
            "sh".to_owned(),
            "-c".to_owned(),
            "echo no power >&2; exit 3".to_owned(),
        ];
        let err = run("wake", "mini", &argv, Duration::from_secs(10))
            .await
            .expect_err("exit 3 fails");
        assert!(
            err.message.contains("failed to wake ssh host mini"),
            "{err}"
        );
        assert!(err.message.contains("no power"), "{err}");
        let missing = vec!["/nonexistent/wol".to_owned()];
        let err = run("wake", "mini", &missing, Duration::from_secs(10))
            .await
            .expect_err("missing program");
        assert!(err.is_permanent());
    }

    #[test]
    fn tail_respects_char_boundaries() {
        assert_eq!(tail("abc", 10), "abc");
        assert_eq!(tail("aé", 1), "");
        assert_eq!(tail("abcdef", 3), "def");
    }
}
