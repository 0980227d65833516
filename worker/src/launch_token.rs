//! The one-time launch token: read from stdin or from an owner-only file that
//! is deleted once read, never from the command line or the environment,
//! where `ps`, `/proc/PID/environ` and `docker inspect` would show it.

use std::io::{BufRead, Read};
use std::path::Path;

use anyhow::{bail, Context, Result};
use burst_common::launch_env;

/// Longer than any token burst makes; a bound on what we read.
const MAX_TOKEN: u64 = 4096;

/// `--token-file` value that means stdin.
pub const STDIN: &str = launch_env::TOKEN_STDIN;

/// Reads the token from `source` (a path, or [`STDIN`]); a file is removed
/// once read. `legacy` is the old `BURST_TOKEN` value, used when no source
/// is given.
pub fn take(source: Option<&Path>, legacy: Option<String>) -> Result<String> {
    let token = match source {
        Some(path) if path.as_os_str() == STDIN => read_stdin()?,
        Some(path) => read_file(path)?,
        None => match legacy {
            Some(token) => token,
            None => bail!(
                "failed to read the launch token: set --token-file (env {}), '-' for stdin",
                launch_env::TOKEN_FILE
            ),
        },
    };
    let token = token.trim_end_matches(['\r', '\n']).to_owned();
    if token.is_empty() {
        bail!("failed to read the launch token: it is empty");
    }
    Ok(token)
}

/// Removes the token's names from this process's environment, returning the
/// legacy `BURST_TOKEN` value. Call it before any thread starts: changing
/// the environment is only sound while nothing else reads it.
pub fn scrub_environment() -> Option<String> {
    let legacy = std::env::var(launch_env::TOKEN).ok();
    std::env::remove_var(launch_env::TOKEN);
    std::env::remove_var(launch_env::TOKEN_FILE);
    legacy
}

fn read_stdin() -> Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .take(MAX_TOKEN)
        .read_line(&mut line)
        .context("failed to read the launch token from stdin")?;
    Ok(line)
}

fn read_file(path: &Path) -> Result<String> {
    let shown = path.display();
    let file =
        std::fs::File::open(path).with_context(|| format!("failed to open token file {shown}"))?;
    check_owner_only(&file, path)?;
    let mut text = String::new();
    file.take(MAX_TOKEN)
        .read_to_string(&mut text)
        .with_context(|| format!("failed to read token file {shown}"))?;
    std::fs::remove_file(path).with_context(|| format!("failed to remove token file {shown}"))?;
    Ok(text.lines().next().unwrap_or_default().to_owned())
}

/// A token file others can read is refused, like ssh refuses such keys.
#[cfg(unix)]
fn check_owner_only(file: &std::fs::File, path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = file
        .metadata()
        .with_context(|| format!("failed to stat token file {}", path.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        bail!(
            "failed to accept token file {}: its mode {:o} lets others read it (want 0600)",
            path.display(),
            mode & 0o777
        );
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_owner_only(_file: &std::fs::File, _path: &Path) -> Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str, mode: u32) -> std::path::PathBuf {
        let path = dir.join("token");
        std::fs::write(&path, text).expect("write");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        }
        let _ = mode;
        path
    }

    #[test]
    fn a_file_is_read_once_and_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write(dir.path(), "t0k3n\n", 0o600);
        assert_eq!(take(Some(&path), None).expect("token"), "t0k3n");
        assert!(!path.exists(), "the token file must be gone");
        assert!(take(Some(&path), None).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn a_file_others_can_read_is_refused_and_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write(dir.path(), "t0k3n\n", 0o644);
        let err = take(Some(&path), None).expect_err("0644 must be refused");
        assert!(format!("{err:#}").contains("644"), "{err:#}");
        assert!(!format!("{err:#}").contains("t0k3n"), "{err:#}");
    }

    #[test]
    fn the_legacy_value_is_the_fallback_and_empty_is_refused() {
        assert_eq!(take(None, Some("old".into())).expect("token"), "old");
        assert!(take(None, None).is_err());
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write(dir.path(), "\n", 0o600);
        assert!(take(Some(&path), None).is_err());
    }
}
