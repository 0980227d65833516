use std::collections::HashMap;
use std::fs::File;
use std::io::{Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use burst_common::error_chain::Chain;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::watch;

use super::checkpoint::{self, Checkpoint};
use super::compress;
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
    /// Written on a blocking thread, one hand-off per chunk (the file, its
    /// checkpoint and the limit line together).
    file: Arc<Mutex<File>>,
    /// The worker's offset: every byte it sent, kept or dropped.
    bytes: u64,
    /// Bytes in the file (at most the limit, plus the closing line).
    written: u64,
    capped: bool,
    /// Where `bytes`/`written` are saved for a restart (see `checkpoint.rs`).
    checkpoint: Option<Arc<std::fs::File>>,
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
        let at = path.clone();
        // One hand-off to a blocking thread for the directory, the file and
        // its checkpoint.
        let (file, mark) = blocking(move || {
            let io = |action, source| LogError::Io {
                action,
                path: at.clone(),
                source,
            };
            if let Some(dir) = at.parent() {
                std::fs::create_dir_all(dir).map_err(|e| io("create the directory of", e))?;
            }
            // Owner-only: steps of other builds on a local pool run as the
            // same user but must not read this through group or other bits.
            let file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&at)
                .map_err(|e| io("create", e))?;
            let mark = checkpoint::create(&at).map_err(|e| io("create the checkpoint of", e))?;
            Ok((file, mark))
        })
        .await
        .map_err(|source| LogError::Io {
            action: "create",
            path: path.clone(),
            source,
        })??;
        let log = OpenLog {
            worker_id: worker_id.to_owned(),
            path: path.clone(),
            file: Arc::new(Mutex::new(file)),
            bytes: 0,
            written: 0,
            capped: false,
            checkpoint: Some(Arc::new(mark)),
            mask: [self.mask.stream(), self.mask.stream()],
        };
        self.lock_open().insert(id, log);
        self.notify(id.build);
        Ok(())
    }

    /// Opens the log of a step that a previous run of the master left
    /// running, for its worker to go on with: the file is cut back to its
    /// last checkpoint. Returns the worker offset to resume from.
    pub async fn reopen_step(&self, id: StepRunId, worker_id: &str) -> Result<u64, LogError> {
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
        let (mark, at) = checkpoint::open(&path).map_err(|e| io("read the checkpoint of", e))?;
        let at = at.unwrap_or_default();
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(|e| io("open", e))?;
        // Bytes past the checkpoint may be half a chunk: the worker sends
        // them again.
        file.set_len(at.written).map_err(|e| io("truncate", e))?;
        file.seek(std::io::SeekFrom::End(0))
            .map_err(|e| io("seek in", e))?;
        let log = OpenLog {
            worker_id: worker_id.to_owned(),
            path: path.clone(),
            file: Arc::new(Mutex::new(file)),
            bytes: at.bytes,
            written: at.written,
            capped: at.capped,
            checkpoint: Some(Arc::new(mark)),
            mask: [self.mask.stream(), self.mask.stream()],
        };
        self.lock_open().insert(id, log);
        self.notify(id.build);
        Ok(at.bytes)
    }

    /// Hands an open step log to a new session of its worker; returns the
    /// offset the worker resumes from (`None`: the log is not open). Done
    /// under the lock, so the old session can add nothing after the offset
    /// was read.
    /// Whether `worker_id` (a session owner) may send for step `id` now:
    /// the step's log is open and theirs.
    pub fn owns(&self, worker_id: &str, id: StepRunId) -> bool {
        self.lock_open()
            .get(&id)
            .is_some_and(|l| l.worker_id == worker_id)
    }

    /// Whether step run `id` is running now (its log is open).
    pub fn is_open(&self, id: StepRunId) -> bool {
        self.lock_open().contains_key(&id)
    }

    pub fn take_over(&self, id: StepRunId, worker_id: &str) -> Option<u64> {
        let mut open = self.lock_open();
        let log = open.get_mut(&id)?;
        log.worker_id = worker_id.to_owned();
        Some(log.bytes)
    }

    /// Appends a chunk a worker sent. Bytes before the log's offset were
    /// received already (a replay after a reconnect) and are dropped. Refuses
    /// chunks for steps the worker does not run and chunks that leave a gap;
    /// the caller logs and drops them.
    pub async fn append(
        &self,
        worker_id: &str,
        id: StepRunId,
        stream: Output,
        mut offset: u64,
        mut data: &[u8],
    ) -> Result<u64, LogError> {
        // Decided under the lock: the masked bytes, how much of them to keep,
        // and whether this chunk is the one that passes the cap.
        let (file, path, out, keep, caps, mark) = {
            let mut open = self.lock_open();
            let log = open
                .get_mut(&id)
                .filter(|l| l.worker_id == worker_id)
                .ok_or_else(|| LogError::NotYours {
                    step: id.to_string(),
                    worker: worker_id.to_owned(),
                })?;
            if offset < log.bytes {
                let seen = usize::try_from(log.bytes - offset).unwrap_or(usize::MAX);
                if seen >= data.len() {
                    return Ok(log.bytes);
                }
                data = &data[seen..];
                offset = log.bytes;
            }
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
            // A checkpoint only where the mask holds nothing back: then the
            // file holds exactly the masked form of the worker's bytes.
            let idle = log.mask.iter().all(MaskStream::is_idle);
            let mark = log.checkpoint.clone().filter(|_| idle).map(|f| {
                let at = Checkpoint {
                    bytes: log.bytes,
                    written: log.written,
                    capped: log.capped,
                };
                (f, at)
            });
            (log.file.clone(), log.path.clone(), out, keep, caps, mark)
        };
        let limit_line = caps.then(|| format!("\n[burst] {}\n", limit_message(self.limit)));
        let line_len = limit_line.as_ref().map_or(0, |l| l.len() as u64);
        // Awaiting the write before reading the worker's next message is the
        // master's half of backpressure: a slow disk slows the worker.
        let wrote = blocking(move || -> std::io::Result<()> {
            let mut file = file.lock().unwrap_or_else(|p| p.into_inner());
            file.write_all(&out[..keep])?;
            if let Some(line) = &limit_line {
                file.write_all(line.as_bytes())?;
            }
            if let Some((mark, mut at)) = mark {
                // The bytes reach the file before the checkpoint says so
                // (unbuffered: each write_all is in the file already).
                if caps {
                    at.written = file.stream_position()?;
                }
                if let Err(e) = checkpoint::write(&mark, at) {
                    tracing::warn!(step = %id, error = %Chain(&e), "failed to write a step log checkpoint");
                }
            }
            Ok(())
        })
        .await;
        if let Err(source) = wrote.and_then(|r| r) {
            return Err(LogError::Io {
                action: "append to",
                path,
                source,
            });
        }
        if caps {
            if let Some(log) = self.lock_open().get_mut(&id) {
                log.written += line_len;
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
                let [stdout, stderr] = &mut log.mask;
                let mut tail = stdout.finish();
                tail.extend(stderr.finish());
                let mut out = Vec::new();
                if !log.capped && !tail.is_empty() {
                    let room = self.limit.saturating_sub(log.written);
                    let keep = tail.len().min(usize::try_from(room).unwrap_or(usize::MAX));
                    out = tail[..keep].to_vec();
                    if keep < tail.len() {
                        out.extend(format!("\n[burst] {}\n", limit_message(self.limit)).bytes());
                    }
                }
                if !out.is_empty() {
                    let file = log.file.clone();
                    let len = out.len() as u64;
                    let wrote = blocking(move || {
                        let mut file = file.lock().unwrap_or_else(|p| p.into_inner());
                        file.write_all(&out)
                    })
                    .await;
                    match wrote.and_then(|r| r) {
                        Ok(()) => log.written += len,
                        Err(e) => {
                            tracing::warn!(step = %id, error = %Chain(&e), "failed to write the end of a step log")
                        }
                    }
                }
                log.written
            }
            None => 0,
        };
        self.notify(id.build);
        bytes
    }

    /// Bytes of the step's log from `offset` on, at most `max`, plain or
    /// compressed alike. A missing file reads as empty: the step has not
    /// started.
    pub async fn read_from(
        &self,
        id: StepRunId,
        offset: u64,
        max: usize,
    ) -> Result<Vec<u8>, LogError> {
        let path = self.path(id);
        // The plain file first: `seal_build` renames the compressed one into
        // place before it removes the plain one, so a reader that misses the
        // plain file finds the compressed one (and one that opened the plain
        // file reads it whole even once it is unlinked).
        let mut file = match tokio::fs::File::open(&path).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return self.read_compressed(path, offset, max).await
            }
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

    async fn read_compressed(
        &self,
        path: PathBuf,
        offset: u64,
        max: usize,
    ) -> Result<Vec<u8>, LogError> {
        let zst = compress::compressed_path(&path);
        let read = tokio::task::spawn_blocking(move || {
            match compress::Seekable::open(&zst) {
                Ok(mut log) => log.read_at(offset, max),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
                Err(e) => Err(e),
            }
            .map_err(|source| LogError::Io {
                action: "read",
                path: zst,
                source,
            })
        });
        read.await.unwrap_or_else(|e| {
            Err(LogError::Io {
                action: "read",
                path: compress::compressed_path(&path),
                source: std::io::Error::other(e),
            })
        })
    }

    /// The step log's length in bytes (of the plain log, compressed or
    /// not); 0 when there is none.
    pub async fn len(&self, id: StepRunId) -> u64 {
        let path = self.path(id);
        if let Ok(meta) = tokio::fs::metadata(&path).await {
            return meta.len();
        }
        let zst = compress::compressed_path(&path);
        tokio::task::spawn_blocking(move || compress::Seekable::open(&zst).map(|l| l.len()))
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or(0)
    }

    /// The build's logs are final (the build finished and is saved):
    /// compresses each step log and drops its restart checkpoint, in the
    /// background. Returns the task, which tests and the janitor may await.
    pub fn seal_build(&self, build: BuildId) -> tokio::task::JoinHandle<()> {
        let dir = self.root.join(build.to_string());
        tokio::task::spawn_blocking(move || {
            if let Err(e) = compress::seal_dir(&dir) {
                tracing::warn!(build, dir = %dir.display(), error = %Chain(&e), "failed to compress a finished build's logs; they stay plain");
            }
        })
    }

    /// Deletes everything the log store keeps of a finished build; returns
    /// the bytes freed (0 when there was nothing).
    pub async fn delete_build(&self, build: BuildId) -> std::io::Result<u64> {
        let dir = self.root.join(build.to_string());
        let freed = disk_usage(&dir).await;
        match tokio::fs::remove_dir_all(&dir).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        self.lock_watchers().remove(&build);
        Ok(freed)
    }

    /// The bytes a build's logs take on disk (allocated blocks, as `du`).
    pub async fn build_usage(&self, build: BuildId) -> u64 {
        disk_usage(&self.root.join(build.to_string())).await
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

/// Allocated bytes of the files in `dir` (one level: a build's logs) plus
/// the directory itself; 0 when it is missing.
/// Runs file work on a blocking thread; a panicked or cancelled task is an
/// I/O error, not a panic here.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> std::io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(std::io::Error::other)
}

async fn disk_usage(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = tokio::fs::metadata(dir).await else {
        return 0;
    };
    let mut total = meta.blocks() * 512;
    if let Ok(mut entries) = tokio::fs::read_dir(dir).await {
        while let Ok(Some(entry)) = entries.next_entry().await {
            if let Ok(meta) = entry.metadata().await {
                total += meta.blocks() * 512;
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_sealed_build_reads_back_the_same_at_every_offset() {
        let dir = tempfile::tempdir().unwrap();
        let logs = LogStore::new(dir.path());
        let step = |index| StepRunId {
            build: 7,
            attempt: 1,
            index,
        };
        // ~700 KB over several 32 KiB chunks, ending without a newline;
        // and an empty step.
        let mut data = Vec::new();
        for i in 0..80_000 {
            data.extend(format!("line {i}\n").bytes());
        }
        data.extend(b"no newline");
        logs.open_step(step(0), "w").await.unwrap();
        let mut at = 0;
        for chunk in data.chunks(32 * 1024) {
            at = logs
                .append("w", step(0), Output::Stdout, at, chunk)
                .await
                .unwrap();
        }
        assert_eq!(logs.close_step(step(0)).await, data.len() as u64);
        logs.open_step(step(1), "w").await.unwrap();
        logs.close_step(step(1)).await;
        let offsets = [
            0,
            1,
            64 * 1024,
            256 * 1024 - 5,
            300_000,
            data.len() as u64 - 3,
        ];
        let mut plain = Vec::new();
        for offset in offsets {
            plain.push(logs.read_from(step(0), offset, 64 * 1024).await.unwrap());
        }
        let whole = logs.read_from(step(0), 0, usize::MAX).await.unwrap();
        assert_eq!(whole, data);

        logs.seal_build(7).await.unwrap();
        let build_dir = dir.path().join("logs/7");
        let mut names: Vec<String> = std::fs::read_dir(&build_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["1.0.log.zst", "1.1.log.zst"],
            "plain logs and checkpoints go"
        );
        assert_eq!(logs.len(step(0)).await, data.len() as u64);
        assert_eq!(logs.len(step(1)).await, 0);
        for (offset, before) in offsets.into_iter().zip(plain) {
            let after = logs.read_from(step(0), offset, 64 * 1024).await.unwrap();
            assert!(after == before, "offset {offset}");
        }
        assert_eq!(logs.read_from(step(0), 0, usize::MAX).await.unwrap(), data);
        assert!(logs.read_from(step(1), 0, 10).await.unwrap().is_empty());
        // A step that never ran reads as empty, compressed build or not.
        assert!(logs.read_from(step(5), 0, 10).await.unwrap().is_empty());

        let used = logs.build_usage(7).await;
        assert!(used > 0);
        assert_eq!(logs.delete_build(7).await.unwrap(), used);
        assert!(!build_dir.exists());
        assert_eq!(logs.delete_build(7).await.unwrap(), 0, "gone already");
    }

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
        // A replay of what the log has is dropped; the new part of a chunk
        // that overlaps is kept; a gap is refused.
        assert_eq!(
            logs.append("w1", id, Output::Stdout, 3, b"lo ")
                .await
                .unwrap(),
            11
        );
        assert!(matches!(
            logs.append("w1", id, Output::Stdout, 20, b"x").await,
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

    /// A restarted master reopens a step's log at its checkpoint: the file is
    /// cut back to it, and the worker is asked for the rest, which a replay
    /// of bytes already kept does not duplicate.
    #[tokio::test]
    async fn a_reopened_log_resumes_at_its_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let id = StepRunId {
            build: 7,
            attempt: 1,
            index: 0,
        };
        {
            let logs = LogStore::new(dir.path());
            logs.open_step(id, "w1/1").await.unwrap();
            logs.append("w1/1", id, Output::Stdout, 0, b"one\n")
                .await
                .unwrap();
            logs.append("w1/1", id, Output::Stderr, 4, b"two\n")
                .await
                .unwrap();
            // The master dies here, without closing the step.
        }
        // Half a chunk past the checkpoint, as a crash mid-write leaves.
        use std::io::Write;
        std::fs::OpenOptions::new()
            .append(true)
            .open(LogStore::new(dir.path()).path(id))
            .unwrap()
            .write_all(b"thr")
            .unwrap();
        let logs = LogStore::new(dir.path());
        assert_eq!(logs.reopen_step(id, "w1/0").await.unwrap(), 8);
        assert_eq!(logs.take_over(id, "w1/2"), Some(8));
        // The worker replays from an older offset: only the new bytes count.
        logs.append("w1/2", id, Output::Stderr, 4, b"two\nthree\n")
            .await
            .unwrap();
        assert_eq!(logs.close_step(id).await, 14);
        assert_eq!(
            logs.read_from(id, 0, 1 << 20).await.unwrap(),
            b"one\ntwo\nthree\n"
        );
        assert_eq!(logs.take_over(id, "w1/3"), None, "closed");
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
