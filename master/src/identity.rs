//! The master's identity. It tags every resource the master launches, so it
//! must outlive the database: it comes from `master.id` in the config, else
//! from `<state_dir>/master.id`, a file written once (mode 0600) beside the
//! database. Deleting the database keeps the id, so the next start still
//! finds, and reaps, what the last run left at its providers.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The identity file's name inside the state dir.
pub const ID_FILE: &str = "master.id";

/// Ids go into container labels, environment values and cloud tags.
const MAX_LEN: usize = 40;

/// Why `id` cannot be a master id, if it cannot.
pub fn problem(id: &str) -> Option<String> {
    let valid_chars = id
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if id.is_empty() || id.len() > MAX_LEN || !valid_chars || id.starts_with('-') {
        return Some(format!(
            "a master id must be 1 to {MAX_LEN} characters of [a-z0-9-], not starting with '-' (got {id:?})"
        ));
    }
    None
}

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("failed to read the master identity file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to use the master identity file {path}: {detail}")]
    Invalid { path: PathBuf, detail: String },
    #[error("failed to write the master identity file {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The id the config or the identity file names; `None` when neither does
/// (a first start, or a state dir from before the file existed).
pub fn known(configured: Option<&str>, state_dir: &Path) -> Result<Option<String>, IdentityError> {
    if let Some(id) = configured {
        return Ok(Some(id.to_owned()));
    }
    let path = state_dir.join(ID_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(IdentityError::Read { path, source }),
    };
    let id = text.trim();
    if let Some(detail) = problem(id) {
        return Err(IdentityError::Invalid { path, detail });
    }
    Ok(Some(id.to_owned()))
}

/// Writes the identity file, once: an existing file is never replaced.
pub fn remember(state_dir: &Path, id: &str) -> Result<(), IdentityError> {
    let path = state_dir.join(ID_FILE);
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        file.write_all(format!("{id}\n").as_bytes())?;
        file.sync_all()
    };
    write().map_err(|source| IdentityError::Write {
        path: path.clone(),
        source,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn ids_are_checked() {
        assert_eq!(problem("m-0123456789ab"), None);
        assert_eq!(problem("ci-master-1"), None);
        for bad in ["", "-x", "Upper", "a b", "x/y", &"a".repeat(41)] {
            assert!(problem(bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn the_file_is_written_once_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(known(None, dir.path()).unwrap(), None);
        remember(dir.path(), "m-abc").unwrap();
        let path = dir.path().join(ID_FILE);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(known(None, dir.path()).unwrap().as_deref(), Some("m-abc"));
        // Never replaced, and the config wins over it.
        assert!(matches!(
            remember(dir.path(), "m-other"),
            Err(IdentityError::Write { .. })
        ));
        assert_eq!(known(None, dir.path()).unwrap().as_deref(), Some("m-abc"));
        assert_eq!(
            known(Some("cfg-id"), dir.path()).unwrap().as_deref(),
            Some("cfg-id")
        );
    }

    #[test]
    fn a_broken_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(ID_FILE), "Not An Id\n").unwrap();
        let err = known(None, dir.path()).unwrap_err().to_string();
        assert!(err.contains(ID_FILE), "{err}");
    }
}
