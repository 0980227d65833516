//! A step log's checkpoint: how many of the worker's bytes the log file
//! holds, kept beside it (`ATTEMPT.INDEX.offset`) so that a restarted master
//! can tell a reconnecting worker where to resume its output from.
//!
//! Written after the log's own bytes reached the file, and only at points
//! where the mask holds nothing back, so the pair (worker bytes, file bytes)
//! is always consistent: a restart truncates the file to the file bytes and
//! asks the worker for everything from the worker bytes on.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

const LEN: usize = 17;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Checkpoint {
    /// Bytes the worker sent (its offset), kept or dropped.
    pub bytes: u64,
    /// Bytes in the log file.
    pub written: u64,
    /// The log hit `step_log_limit`: later output is dropped.
    pub capped: bool,
}

/// The checkpoint file of the log at `log`.
pub fn path_of(log: &Path) -> PathBuf {
    log.with_extension("offset")
}

/// Creates (or truncates) the checkpoint file, owner-only like the log.
pub fn create(log: &Path) -> io::Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path_of(log))
}

/// Opens an existing checkpoint; `None` (and a fresh file) when there is none
/// or it is unreadable, which means nothing of the step was kept.
pub fn open(log: &Path) -> io::Result<(File, Option<Checkpoint>)> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path_of(log))?;
    let mut buf = [0u8; LEN];
    let found = match file.read_exact_at(&mut buf, 0) {
        Ok(()) => Some(decode(&buf)),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => None,
        Err(e) => return Err(e),
    };
    Ok((file, found))
}

pub fn write(file: &File, at: Checkpoint) -> io::Result<()> {
    file.write_all_at(&encode(at), 0)
}

fn encode(at: Checkpoint) -> [u8; LEN] {
    let mut buf = [0u8; LEN];
    buf[..8].copy_from_slice(&at.bytes.to_le_bytes());
    buf[8..16].copy_from_slice(&at.written.to_le_bytes());
    buf[16] = u8::from(at.capped);
    buf
}

fn decode(buf: &[u8; LEN]) -> Checkpoint {
    let word = |i: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&buf[i..i + 8]);
        u64::from_le_bytes(w)
    };
    Checkpoint {
        bytes: word(0),
        written: word(8),
        capped: buf[16] != 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_a_missing_file_reads_as_none() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("1.0.log");
        let (_, none) = open(&log).expect("open");
        assert_eq!(none, None);
        let file = create(&log).expect("create");
        let at = Checkpoint {
            bytes: 70_000,
            written: 65_536,
            capped: true,
        };
        write(&file, at).expect("write");
        let (_, found) = open(&log).expect("reopen");
        assert_eq!(found, Some(at));
    }
}
