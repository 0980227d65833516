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
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    tracing::info!(%host, command = ?argv, "running the host's {what} command");
    let output = match tokio::time::timeout(timeout, cmd.output()).await {
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
        Ok(Ok(output)) => output,
    };
    if output.status.success() {
        return Ok(());
    }
    let mut text = String::from_utf8_lossy(&output.stderr).trim().to_owned();
    if text.is_empty() {
        text = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    }
    Err(ProviderError::transient(format!(
        "failed to {what} ssh host {host}: {program:?} exited with {}: {}",
        output.status,
        tail(&text, 400)
    )))
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
