use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use burst_common::error_chain::Chain;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tokio::sync::watch;

use super::mask::{Mask, MaskStream};
use super::StepRunId;
use crate::model::BuildId;

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("failed to {action} log file {path}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A worker sent output for a step it is not running: refused.
    #[error("step {step} is not running on worker {worker}")]
    NotYours { step: String, worker: String },
    #[error("output for step {step} arrived at offset {got}, expected {want}")]
    OutOfOrder { step: String, got: u64, want: u64 },
    /// Returned once, for the chunk that passed the cap; later chunks of the
    /// step are accepted and dropped so the worker's offsets stay valid.
    #[error("step {step}: {}", limit_message(*.limit))]
    LimitExceeded { step: String, limit: u64 },
}

/// The line written at the end of a capped log and shown as the step's error.
pub fn limit_message(limit: u64) -> String {
    format!(
        "step output exceeded step_log_limit ({})",
        bytesize::ByteSize::b(limit).display().si()
    )
}

/// `[master] step_log_limit`'s default.
pub const DEFAULT_STEP_LOG_LIMIT: u64 = 100 * 1000 * 1000;

struct OpenLog {
    worker_id: String,
    path: PathBuf,
    file: Arc<tokio::sync::Mutex<tokio::fs::File>>,
    /// The worker's offset: every byte it sent, kept or dropped.
    bytes: u64,
    /// Bytes in the file (at most the limit, plus the closing line).
    written: u64,
    capped: bool,
    /// Secrets are replaced here, before the file: every reader sees the
    /// masked bytes, and file offsets are offsets in masked output. One
    /// stream each for stdout and stderr: a secret written to stdout in two
    /// writes may have stderr output arrive between its halves.
    mask: [MaskStream; 2],
}

/// Which of a step's output streams a chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Stdout = 0,
    Stderr = 1,
}

/// Owns the log files and tells followers when a build's log grew.
pub struct LogStore {
    root: PathBuf,
    open: Mutex<HashMap<StepRunId, OpenLog>>,
    watchers: Mutex<HashMap<BuildId, watch::Sender<u64>>>,
    /// Changes with every build's notify: the UI's live builds list.
    any: watch::Sender<u64>,
    /// Most bytes one step run may write (`[master] step_log_limit`).
    limit: u64,
    /// The secret values no log may contain.
    mask: Mask,
}

impl LogStore {
    pub fn new(state_dir: &Path) -> Self {
        Self {
            root: state_dir.join("logs"),
            open: Mutex::default(),
            watchers: Mutex::default(),
            any: watch::channel(0).0,
            limit: DEFAULT_STEP_LOG_LIMIT,
            mask: Mask::default(),
        }
    }

    /// Replaces these secrets with `***` in every log.
    pub fn with_mask(mut self, mask: Mask) -> Self {
        self.mask = mask;
        self
    }

    /// Caps each step run's log at `limit` bytes.
    pub fn with_limit(mut self, limit: u64) -> Self {
        self.limit = limit;
        self
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// The secrets every log is masked of, for other text workers send.
    pub fn mask(&self) -> &Mask {
        &self.mask
    }

    pub fn path(&self, id: StepRunId) -> PathBuf {
        self.root
            .join(id.build.to_string())
            .join(format!("{}.{}.log", id.attempt, id.index))
    }

    /// Creates the step's (empty) log file and lets `worker_id` append to it.
    pub async fn open_step(&self, id: StepRunId, worker_id: &str) -> Result<(), LogError> {
        let path = self.path(id);
        let io = |action, source| LogError::Io {
            action,
            path: path.clone(),
            source,
        };
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|e| io("create the directory of", e))?;
        }
        // Owner-only: steps of other builds on a local pool run as the same
        // user but must not read this through group or other bits.
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .await
            .map_err(|e| io("create", e))?;
        let log = OpenLog {
            worker_id: worker_id.to_owned(),
            path: path.clone(),
            file: Arc::new(tokio::sync::Mutex::new(file)),
            bytes: 0,
            written: 0,
            capped: false,
            mask: [self.mask.stream(), self.mask.stream()],
        };
        self.lock_open().insert(id, log);
        self.notify(id.build);
        Ok(())
    }

    /// Appends a chunk a worker sent. Refuses chunks for steps the worker
    /// does not run and chunks out of order; the caller logs and drops them.
    pub async fn append(
        &self,
        worker_id: &str,
        id: StepRunId,
        stream: Output,
        offset: u64,
        data: &[u8],
    ) -> Result<u64, LogError> {
        // Decided under the lock: the masked bytes, how much of them to keep,
        // and whether this chunk is the one that passes the cap.
        let (file, path, out, keep, caps) = {
            let mut open = self.lock_open();
            let log = open
                .get_mut(&id)
                .filter(|l| l.worker_id == worker_id)
                .ok_or_else(|| LogError::NotYours {
                    step: id.to_string(),
                    worker: worker_id.to_owned(),
                })?;
            if log.bytes != offset {
                return Err(LogError::OutOfOrder {
                    step: id.to_string(),
                    got: offset,
                    want: log.bytes,
                });
            }
            if log.capped {
                // Dropped unwritten: a worker that ignores the cancel cannot
                // fill the disk.
                log.bytes += data.len() as u64;
                return Ok(log.bytes);
            }
            let out = log.mask[stream as usize].push(data);
            let room = self.limit.saturating_sub(log.written);
            let keep = out.len().min(usize::try_from(room).unwrap_or(usize::MAX));
            let caps = keep < out.len();
            // Counted before the write so a concurrent chunk cannot pass too.
            log.bytes += data.len() as u64;
            log.written += keep as u64;
            log.capped = caps;
            (log.file.clone(), log.path.clone(), out, keep, caps)
        };
        let io = |source| LogError::Io {
            action: "append to",
            path: path.clone(),
            source,
        };
        {
            // Awaiting the write before reading the worker's next message is
            // the master's half of backpressure: a slow disk slows the worker.
            let mut file = file.lock().await;
            file.write_all(&out[..keep]).await.map_err(io)?;
            if caps {
                let line = format!("\n[burst] {}\n", limit_message(self.limit));
                file.write_all(line.as_bytes()).await.map_err(io)?;
                if let Some(log) = self.lock_open().get_mut(&id) {
                    log.written += line.len() as u64;
                }
            }
        }
        self.notify(id.build);
        if caps {
            return Err(LogError::LimitExceeded {
                step: id.to_string(),
                limit: self.limit,
            });
        }
        Ok(offset + data.len() as u64)
    }

    /// Stops accepting output for the step, writes what the mask held
    /// back; returns the bytes written.
    pub async fn close_step(&self, id: StepRunId) -> u64 {
        let log = self.lock_open().remove(&id);
        let bytes = match log {
            Some(mut log) => {
                let mut file = log.file.lock().await;
                let [stdout, stderr] = &mut log.mask;
                let mut tail = stdout.finish();
                tail.extend(stderr.finish());
                if !log.capped && !tail.is_empty() {
                    let room = self.limit.saturating_sub(log.written);
                    let keep = tail.len().min(usize::try_from(room).unwrap_or(usize::MAX));
                    let mut out = tail[..keep].to_vec();
                    if keep < tail.len() {
                        out.extend(format!("\n[burst] {}\n", limit_message(self.limit)).bytes());
                    }
                    match file.write_all(&out).await {
                        Ok(()) => log.written += out.len() as u64,
                        Err(e) => {
                            tracing::warn!(step = %id, error = %Chain(&e), "failed to write the end of a step log")
                        }
                    }
                }
                if let Err(e) = file.flush().await {
                    tracing::warn!(step = %id, error = %Chain(&e), "failed to flush step log");
                }
                log.written
            }
            None => 0,
        };
        self.notify(id.build);
        bytes
    }

    /// Bytes of the step's log from `offset` on, at most `max`. A missing
    /// file reads as empty: the step has not started.
    pub async fn read_from(
        &self,
        id: StepRunId,
        offset: u64,
        max: usize,
    ) -> Result<Vec<u8>, LogError> {
        let path = self.path(id);
        let mut file = match tokio::fs::File::open(&path).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(LogError::Io {
                    action: "open",
                    path,
                    source,
                })
            }
        };
        file.seek(std::io::SeekFrom::Start(offset))
            .await
            .map_err(|source| LogError::Io {
                action: "seek in",
                path: path.clone(),
                source,
            })?;
        let mut buf = Vec::new();
        file.take(max as u64)
            .read_to_end(&mut buf)
            .await
            .map_err(|source| LogError::Io {
                action: "read",
                path,
                source,
            })?;
        Ok(buf)
    }

    /// A receiver that changes whenever the build's log or state changes.
    pub fn subscribe(&self, build: BuildId) -> watch::Receiver<u64> {
        self.lock_watchers()
            .entry(build)
            .or_insert_with(|| watch::channel(0).0)
            .subscribe()
    }

    /// A receiver that changes whenever any build's log or state changes.
    pub fn subscribe_any(&self) -> watch::Receiver<u64> {
        self.any.subscribe()
    }

    /// Wakes the build's followers (log growth, step or build state change).
    pub fn notify(&self, build: BuildId) {
        self.any.send_modify(|v| *v = v.wrapping_add(1));
        let mut watchers = self.lock_watchers();
        if let Some(tx) = watchers.get(&build) {
            if tx.receiver_count() == 0 {
                watchers.remove(&build);
            } else {
                tx.send_modify(|v| *v = v.wrapping_add(1));
            }
        }
    }

    fn lock_open(&self) -> std::sync::MutexGuard<'_, HashMap<StepRunId, OpenLog>> {
        // A panic while holding the lock cannot leave the map inconsistent
        // (every critical section is a single insert/get/remove).
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_watchers(&self) -> std::sync::MutexGuard<'_, HashMap<BuildId, watch::Sender<u64>>> {
        self.watchers.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn appends_in_order_and_refuses_strangers() {
        let dir = tempfile::tempdir().unwrap();
        let logs = LogStore::new(dir.path());
        let id = StepRunId {
            build: 1,
            attempt: 1,
            index: 0,
        };
        logs.open_step(id, "w1").await.unwrap();
        assert_eq!(
            logs.append("w1", id, Output::Stdout, 0, b"hello ")
                .await
                .unwrap(),
            6
        );
        assert_eq!(
            logs.append("w1", id, Output::Stdout, 6, b"world")
                .await
                .unwrap(),
            11
        );
        assert!(matches!(
            logs.append("w2", id, Output::Stdout, 11, b"x").await,
            Err(LogError::NotYours { .. })
        ));
        assert!(matches!(
            logs.append("w1", id, Output::Stdout, 3, b"x").await,
            Err(LogError::OutOfOrder { .. })
        ));
        assert_eq!(logs.close_step(id).await, 11);
        assert!(matches!(
            logs.append("w1", id, Output::Stdout, 11, b"x").await,
            Err(LogError::NotYours { .. })
        ));
        assert_eq!(
            logs.read_from(id, 0, 1 << 20).await.unwrap(),
            b"hello world"
        );
        assert_eq!(logs.read_from(id, 6, 3).await.unwrap(), b"wor");
    }

    #[tokio::test]
    async fn a_step_past_the_limit_is_capped_once_and_then_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let logs = LogStore::new(dir.path()).with_limit(8);
        let id = StepRunId {
            build: 2,
            attempt: 1,
            index: 0,
        };
        logs.open_step(id, "w").await.unwrap();
        assert_eq!(
            logs.append("w", id, Output::Stdout, 0, b"12345")
                .await
                .unwrap(),
            5
        );
        assert!(matches!(
            logs.append("w", id, Output::Stdout, 5, b"67890").await,
            Err(LogError::LimitExceeded { limit: 8, .. })
        ));
        // Later chunks are accepted at the worker's offsets but not written.
        assert_eq!(
            logs.append("w", id, Output::Stdout, 10, b"abc")
                .await
                .unwrap(),
            13
        );
        let text = logs.read_from(id, 0, 1 << 20).await.unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(text.starts_with("12345678\n[burst] step output exceeded step_log_limit"));
        assert!(!text.contains("abc"), "{text}");
        assert_eq!(logs.close_step(id).await, text.len() as u64);
    }

    #[tokio::test]
    async fn secrets_split_across_chunks_never_reach_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let mask = Mask::new(["DEPLOY-KEY-1234"]).unwrap();
        let logs = LogStore::new(dir.path()).with_mask(mask);
        let id = StepRunId {
            build: 3,
            attempt: 1,
            index: 0,
        };
        logs.open_step(id, "w").await.unwrap();
        // The worker's offsets count what it sent, not what was written.
        assert_eq!(
            logs.append("w", id, Output::Stdout, 0, b"key: DEPLOY-")
                .await
                .unwrap(),
            12
        );
        let early = logs.read_from(id, 0, 1 << 20).await.unwrap();
        assert_eq!(early, b"", "the possible start of a secret is held back");
        assert_eq!(
            logs.append("w", id, Output::Stdout, 12, b"KEY-1234 ok\n")
                .await
                .unwrap(),
            24
        );
        // A complete line is released at once.
        assert_eq!(
            logs.read_from(id, 0, 1 << 20).await.unwrap(),
            b"key: *** ok\n"
        );
        assert_eq!(
            logs.append("w", id, Output::Stdout, 24, b"tail DEPLOY")
                .await
                .unwrap(),
            35
        );
        // Readers only ever see a prefix of the final masked file.
        let mid = logs.read_from(id, 0, 1 << 20).await.unwrap();
        assert_eq!(logs.close_step(id).await, 23);
        let all = logs.read_from(id, 0, 1 << 20).await.unwrap();
        assert_eq!(all, b"key: *** ok\ntail DEPLOY");
        assert!(all.starts_with(&mid), "{mid:?}");
        assert_eq!(
            logs.read_from(id, mid.len() as u64, 1 << 20).await.unwrap(),
            &all[mid.len()..]
        );
    }

    /// A step writes a secret to stdout in two writes, and stderr output
    /// arrives between the halves: each stream is masked on its own.
    #[tokio::test]
    async fn a_secret_split_on_stdout_around_stderr_output_is_masked() {
        let dir = tempfile::tempdir().unwrap();
        let logs = LogStore::new(dir.path()).with_mask(Mask::new(["DEPLOY-KEY-1234"]).unwrap());
        let id = StepRunId {
            build: 4,
            attempt: 1,
            index: 0,
        };
        logs.open_step(id, "w").await.unwrap();
        logs.append("w", id, Output::Stdout, 0, b"half:DEPLOY-")
            .await
            .unwrap();
        logs.append("w", id, Output::Stderr, 12, b"err:DEPLOY-KEY-1234\n")
            .await
            .unwrap();
        logs.append("w", id, Output::Stdout, 32, b"KEY-1234\n")
            .await
            .unwrap();
        logs.close_step(id).await;
        let all = String::from_utf8(logs.read_from(id, 0, 1 << 20).await.unwrap()).unwrap();
        assert!(!all.contains("DEPLOY"), "{all:?}");
        // Complete lines go out at once; the held partial line of stdout
        // follows stderr's line, as its end arrived after it.
        assert_eq!(all, "err:***\nhalf:***\n");
    }

    #[tokio::test]
    async fn the_limit_counts_masked_bytes_and_the_flushed_tail() {
        let dir = tempfile::tempdir().unwrap();
        let logs = LogStore::new(dir.path())
            .with_limit(6)
            .with_mask(Mask::new(["abcdefgh"]).unwrap());
        let id = StepRunId {
            build: 4,
            attempt: 1,
            index: 0,
        };
        logs.open_step(id, "w").await.unwrap();
        assert_eq!(
            logs.append("w", id, Output::Stdout, 0, b"abcdefgh1234")
                .await
                .unwrap(),
            12
        );
        // "***" is written; "1234" is held back (it could begin a secret)...
        assert_eq!(logs.read_from(id, 0, 1 << 20).await.unwrap(), b"***");
        logs.close_step(id).await;
        let text = String::from_utf8(logs.read_from(id, 0, 1 << 20).await.unwrap()).unwrap();
        // ...and the cap applies to them at the end.
        assert!(
            text.starts_with("***123\n[burst] step output exceeded"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn followers_are_woken() {
        let dir = tempfile::tempdir().unwrap();
        let logs = LogStore::new(dir.path());
        let id = StepRunId {
            build: 7,
            attempt: 1,
            index: 0,
        };
        let mut rx = logs.subscribe(7);
        logs.open_step(id, "w").await.unwrap();
        assert!(rx.has_changed().unwrap());
        rx.mark_unchanged();
        logs.append("w", id, Output::Stdout, 0, b"x").await.unwrap();
        assert!(rx.has_changed().unwrap());
    }
}
