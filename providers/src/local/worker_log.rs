//! A local worker's own log (its stdout and stderr): a file per worker
//! beside its work dir, `<state_dir>/workers/<worker_id>.log`, owner-only,
//! kept after the worker is gone so a failed start can be read afterwards.
//! The master's output stays the master's.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::ProviderError;

pub fn path(work_root: &Path, worker_id: &str) -> PathBuf {
    work_root.join(format!("{worker_id}.log"))
}

/// Stdout and stderr for the worker process, both appending to its file.
pub fn open(work_root: &Path, worker_id: &str) -> Result<(Stdio, Stdio), ProviderError> {
    let path = path(work_root, worker_id);
    let fail = |e: std::io::Error| {
        ProviderError::transient(format!(
            "failed to open the worker log {}: {e}",
            path.display()
        ))
        .with_source(e)
    };
    let file: File = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&path)
        .map_err(fail)?;
    let err = file.try_clone().map_err(fail)?;
    Ok((Stdio::from(file), Stdio::from(err)))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn the_log_is_owner_only_and_appended() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        drop(open(dir.path(), "local-1")?);
        let log = path(dir.path(), "local-1");
        std::fs::write(&log, "first\n")?;
        drop(open(dir.path(), "local-1")?);
        assert_eq!(std::fs::read_to_string(&log)?, "first\n");
        let mode = std::fs::metadata(&log)?.permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        Ok(())
    }
}
