//! `git ls-remote --heads`: a repository's branch heads without a clone.
//! The command runs with a deadline, no terminal prompt, and the https
//! credential (if any) in its environment as an extra header: never in its
//! arguments, which any local user can read.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use tokio::process::Command;

/// A poll that takes longer is a failure (and is killed).
const DEADLINE: Duration = Duration::from_secs(60);
/// Most of git's message kept in an error.
const MAX_MESSAGE: usize = 2000;

#[derive(Debug, thiserror::Error)]
pub enum LsRemoteError {
    #[error("failed to run git (is it installed?)")]
    Spawn(#[source] std::io::Error),
    #[error("git ls-remote took longer than {}s", DEADLINE.as_secs())]
    Timeout,
    #[error("git ls-remote failed ({status}): {message}")]
    Failed { status: String, message: String },
    #[error("git ls-remote printed a line that is not `<sha>\\trefs/heads/<branch>`: {0:?}")]
    Garbled(String),
}

/// Branch -> revision of every head of `url`. `password` (an https token)
/// is sent as HTTP basic auth with the user `x-access-token`, which GitHub
/// and GitLab both accept for tokens.
pub(super) async fn heads(
    url: &str,
    password: Option<&str>,
) -> Result<BTreeMap<String, String>, LsRemoteError> {
    let mut cmd = Command::new("git");
    // `--` ends the options: validation refuses URLs starting with `-`
    // anyway.
    cmd.args(["ls-remote", "--heads", "--", url]);
    quiet_env(&mut cmd, password);
    let out = tokio::time::timeout(DEADLINE, cmd.output())
        .await
        .map_err(|_| LsRemoteError::Timeout)?
        .map_err(LsRemoteError::Spawn)?;
    if !out.status.success() {
        let text = String::from_utf8_lossy(&out.stderr);
        let message: String = text.trim().chars().take(MAX_MESSAGE).collect();
        return Err(LsRemoteError::Failed {
            status: out.status.to_string(),
            message,
        });
    }
    parse(&String::from_utf8_lossy(&out.stdout))
}

/// What every git the master runs gets: no prompt of any kind, ssh in
/// batch mode, and the https token (if any) as a basic-auth header in the
/// environment, never in an argument.
pub(super) fn quiet_env(cmd: &mut Command, password: Option<&str>) {
    cmd.env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "/bin/false")
        .env("SSH_ASKPASS", "/bin/false")
        // No prompt for an unknown ssh host key, no agent forwarding.
        .env("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    if let Some(password) = password {
        let basic =
            base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{password}"));
        cmd.env("GIT_CONFIG_COUNT", "1")
            .env("GIT_CONFIG_KEY_0", "http.extraHeader")
            .env(
                "GIT_CONFIG_VALUE_0",
                format!("Authorization: Basic {basic}"),
            );
    }
}

fn parse(text: &str) -> Result<BTreeMap<String, String>, LsRemoteError> {
    let mut heads = BTreeMap::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        let garbled = || LsRemoteError::Garbled(line.chars().take(200).collect());
        let (sha, git_ref) = line.split_once('\t').ok_or_else(garbled)?;
        let branch = super::change::branch_of(git_ref).ok_or_else(garbled)?;
        heads.insert(branch.to_owned(), sha.to_owned());
    }
    Ok(heads)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_parsed() {
        let text = "0123456789abcdef0123456789abcdef01234567\trefs/heads/main\n\
                    89abcdef0123456789abcdef0123456789abcdef\trefs/heads/release/1\n";
        let heads = parse(text).unwrap();
        assert_eq!(heads.len(), 2);
        assert_eq!(
            heads["release/1"],
            "89abcdef0123456789abcdef0123456789abcdef"
        );
        assert!(parse("nonsense").is_err());
        assert!(parse("").unwrap().is_empty());
    }
}
