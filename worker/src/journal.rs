//! What the worker owes the master: each step's output and result, kept
//! across sessions until the master has them.
//!
//! Steps write into the journal, never into a session. A session's forwarder
//! takes from it in order (output, then the result once all output is out).
//! After a reconnect the master's `Welcome` says how much of each step's
//! output it already has, and the forwarder resends from there; a result is
//! offered on every session until the master acknowledges it. A step's
//! output is kept until then: in memory up to [`MEMORY_LIMIT`] bytes (all
//! steps together), beyond that in a spill file per step in the work dir. While a session is up the journal also carries the
//! backpressure: a step may run at most [`BACKLOG`] bytes ahead of what was
//! sent, so a slow master slows the step down.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use burst_proto::{worker_message, ArtifactChunk, StepFinished, StepOutput, WorkerMessage};
use tokio::sync::Notify;

use crate::artifacts::ArtifactFile;

/// Output the journal holds in memory, all steps together; the rest spills.
pub const MEMORY_LIMIT: usize = 4 * 1024 * 1024;
/// How far a step's output may run ahead of what was sent, while connected:
/// a few messages' worth, so the pipe reader never waits on a send.
pub const BACKLOG: u64 = 2 * MESSAGE_DATA as u64;
/// Most output bytes in one `StepOutput`: consecutive chunks of one stream
/// go out together, so a fast step costs the master a write per 512 KiB,
/// not per pipe read (well under the master's 1 MiB message limit).
pub const MESSAGE_DATA: usize = 512 * 1024;
/// Bytes of an artifact file per message: well under the master's 256 KiB message
/// limit, large enough that a gigabyte is a few thousand messages.
pub const ARTIFACT_CHUNK: usize = 128 * 1024;
/// Spill files live here, inside the worker's work dir.
const SPILL_DIR: &str = ".journal";

#[derive(Clone)]
pub(crate) struct Journal {
    inner: Arc<Mutex<Inner>>,
    changed: Arc<Notify>,
    dir: PathBuf,
}

#[derive(Default)]
struct Inner {
    steps: BTreeMap<String, StepJournal>,
    memory: usize,
    /// A session takes what the journal has.
    connected: bool,
}

#[derive(Default)]
struct StepJournal {
    records: Vec<Record>,
    spill: Option<File>,
    spill_len: u64,
    /// Output bytes the step produced.
    written: u64,
    /// Output bytes handed to the current session.
    sent: u64,
    /// Files to upload after the output, read from disk as they are sent.
    artifacts: Vec<ArtifactFile>,
    /// The file being sent, how much of it went, and its open handle.
    artifact_at: usize,
    artifact_sent: u64,
    artifact_file: Option<File>,
    result: Option<StepFinished>,
    result_sent: bool,
}

struct Record {
    offset: u64,
    stream: i32,
    len: usize,
    place: Place,
}

enum Place {
    Memory(Vec<u8>),
    /// Position in the step's spill file.
    Spilled(u64),
}

impl Journal {
    pub(crate) fn new(work_dir: &Path) -> Self {
        Self {
            inner: Arc::default(),
            changed: Arc::new(Notify::new()),
            dir: work_dir.join(SPILL_DIR),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every critical section leaves the maps consistent.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A step starts: from now on its output and result are kept.
    pub(crate) fn open(&self, step: &str) -> bool {
        let mut inner = self.lock();
        if inner.steps.contains_key(step) {
            return false;
        }
        inner.steps.insert(step.to_owned(), StepJournal::default());
        true
    }

    #[cfg(test)]
    pub(crate) fn has(&self, step: &str) -> bool {
        self.lock().steps.contains_key(step)
    }

    /// Keeps a chunk of the step's output. Waits while the session is up and
    /// the step is more than [`BACKLOG`] bytes ahead of it.
    pub(crate) async fn append(&self, step: &str, stream: i32, data: Vec<u8>) {
        loop {
            let notified = self.changed.notified();
            {
                let inner = self.lock();
                let Some(s) = inner.steps.get(step) else {
                    return;
                };
                if !inner.connected || s.written.saturating_sub(s.sent) <= BACKLOG {
                    break;
                }
            }
            notified.await;
        }
        let spill_path = self.spill_path(step);
        let mut inner = self.lock();
        let to_memory = inner.memory + data.len() <= MEMORY_LIMIT;
        let Some(s) = inner.steps.get_mut(step) else {
            return;
        };
        let len = data.len();
        let offset = s.written;
        let place = if to_memory {
            Place::Memory(data)
        } else {
            match s.spill(&spill_path, &data) {
                Ok(at) => Place::Spilled(at),
                Err(e) => {
                    // Better in memory than lost.
                    tracing::warn!(
                        step,
                        "failed to spill step output to {}: {e}",
                        spill_path.display()
                    );
                    Place::Memory(data)
                }
            }
        };
        let in_memory = matches!(place, Place::Memory(_));
        s.records.push(Record {
            offset,
            stream,
            len,
            place,
        });
        s.written += len as u64;
        if in_memory {
            inner.memory += len;
        }
        drop(inner);
        self.changed.notify_waiters();
    }

    /// The step's artifacts: sent after all its output, before its result.
    pub(crate) fn artifacts(&self, step: &str, files: Vec<ArtifactFile>) {
        let mut inner = self.lock();
        if let Some(s) = inner.steps.get_mut(step) {
            s.artifacts = files;
            s.rewind_artifacts();
        }
        drop(inner);
        self.changed.notify_waiters();
    }

    /// The step ended; its result goes after all its output.
    pub(crate) fn finish(&self, finished: StepFinished) {
        let mut inner = self.lock();
        let step = finished.step_run_id.clone();
        let s = inner.steps.entry(step).or_default();
        s.result = Some(finished);
        s.result_sent = false;
        drop(inner);
        self.changed.notify_waiters();
    }

    /// The master has the step's result: forget the step.
    pub(crate) fn acknowledged(&self, step: &str) {
        self.forget(step);
    }

    /// Drops everything kept of a step.
    pub(crate) fn forget(&self, step: &str) {
        let mut inner = self.lock();
        if let Some(s) = inner.steps.remove(step) {
            inner.memory -= s.memory();
            if s.spill.is_some() {
                let _ = std::fs::remove_file(self.spill_path(step));
            }
        }
        drop(inner);
        self.changed.notify_waiters();
    }

    /// Steps still running (no result yet), and steps whose result the
    /// master has not acknowledged.
    pub(crate) fn ids(&self) -> (Vec<String>, Vec<String>) {
        let inner = self.lock();
        let (done, running): (Vec<_>, Vec<_>) =
            inner.steps.iter().partition(|(_, s)| s.result.is_some());
        (
            running.into_iter().map(|(k, _)| k.clone()).collect(),
            done.into_iter().map(|(k, _)| k.clone()).collect(),
        )
    }

    /// A new session: each step the master still wants resumes from the
    /// offset it names; the others are dropped and returned, for the caller
    /// to kill. (Output before the offset is kept until the result is
    /// acknowledged: a master restarted since may name an older offset.)
    pub(crate) fn resume(&self, offsets: &HashMap<String, u64>) -> Vec<String> {
        let mut inner = self.lock();
        let unwanted: Vec<String> = inner
            .steps
            .keys()
            .filter(|k| !offsets.contains_key(*k))
            .cloned()
            .collect();
        for (step, s) in inner.steps.iter_mut() {
            if let Some(&offset) = offsets.get(step) {
                s.sent = offset.min(s.written);
                s.result_sent = false;
                // The master keeps only whole files: each goes again.
                s.rewind_artifacts();
            }
        }
        inner.connected = true;
        drop(inner);
        for step in &unwanted {
            self.forget(step);
        }
        self.changed.notify_waiters();
        unwanted
    }

    /// The session ended: steps no longer wait for it.
    pub(crate) fn disconnected(&self) {
        self.lock().connected = false;
        self.changed.notify_waiters();
    }

    /// The next message for the session: a step's next output, or its
    /// result once all its output was handed over.
    pub(crate) async fn next(&self) -> WorkerMessage {
        loop {
            let notified = self.changed.notified();
            if let Some(msg) = self.take() {
                return msg;
            }
            notified.await;
        }
    }

    /// Waits until everything was handed to the session (or `bound` passed).
    pub(crate) async fn flushed(&self, bound: std::time::Duration) {
        let all = async {
            loop {
                let notified = self.changed.notified();
                if self.lock().steps.values().all(StepJournal::all_sent) {
                    return;
                }
                notified.await;
            }
        };
        let _ = tokio::time::timeout(bound, all).await;
    }

    fn take(&self) -> Option<WorkerMessage> {
        let mut inner = self.lock();
        for (step, s) in inner.steps.iter_mut() {
            if s.sent < s.written {
                let offset = s.sent;
                match s.read_at(offset) {
                    Ok((stream, data)) => {
                        s.sent += data.len() as u64;
                        let msg = worker_message::Msg::Output(StepOutput {
                            step_run_id: step.clone(),
                            stream,
                            offset,
                            data,
                        });
                        drop(inner);
                        // A step held back by the backlog may go on.
                        self.changed.notify_waiters();
                        return Some(WorkerMessage { msg: Some(msg) });
                    }
                    Err(e) => {
                        tracing::error!(step = %step, "failed to read kept step output: {e}");
                        // Skipped, not looped on: the master sees a gap.
                        s.sent = s.written;
                    }
                }
            }
            if s.sent >= s.written && s.artifact_at < s.artifacts.len() {
                let chunk = s.next_artifact_chunk(step);
                drop(inner);
                self.changed.notify_waiters();
                return Some(WorkerMessage {
                    msg: Some(worker_message::Msg::Artifact(chunk)),
                });
            }
            if s.sent >= s.written && s.artifact_at >= s.artifacts.len() {
                if let (Some(result), false) = (&s.result, s.result_sent) {
                    s.result_sent = true;
                    return Some(WorkerMessage {
                        msg: Some(worker_message::Msg::Finished(result.clone())),
                    });
                }
            }
        }
        None
    }

    fn spill_path(&self, step: &str) -> PathBuf {
        self.dir.join(file_stem(step))
    }
}

impl StepJournal {
    fn memory(&self) -> usize {
        self.records
            .iter()
            .filter(|r| matches!(r.place, Place::Memory(_)))
            .map(|r| r.len)
            .sum()
    }

    fn all_sent(&self) -> bool {
        self.sent >= self.written
            && self.artifact_at >= self.artifacts.len()
            && (self.result.is_none() || self.result_sent)
    }

    fn rewind_artifacts(&mut self) {
        self.artifact_at = 0;
        self.artifact_sent = 0;
        self.artifact_file = None;
    }

    /// The next piece of the artifact being sent, moving on to the next file
    /// after its last. A file that cannot be read ends short: the master
    /// fails the step for the incomplete file.
    fn next_artifact_chunk(&mut self, step: &str) -> ArtifactChunk {
        let file = &self.artifacts[self.artifact_at];
        let (abs, size) = (file.abs.clone(), file.size);
        let mut chunk = ArtifactChunk {
            step_run_id: step.to_owned(),
            path: file.rel.clone(),
            size,
            sha256: file.sha256.clone(),
            offset: self.artifact_sent,
            data: Vec::new(),
        };
        let want = usize::try_from(size - self.artifact_sent.min(size))
            .unwrap_or(usize::MAX)
            .min(ARTIFACT_CHUNK);
        let read = (|| -> std::io::Result<Vec<u8>> {
            if self.artifact_file.is_none() {
                self.artifact_file = Some(File::open(&abs)?);
            }
            let Some(f) = self.artifact_file.as_mut() else {
                return Err(std::io::Error::other("no open artifact"));
            };
            let mut data = vec![0; want];
            f.read_exact(&mut data)?;
            Ok(data)
        })();
        match read {
            Ok(data) => {
                self.artifact_sent += data.len() as u64;
                chunk.data = data;
            }
            Err(e) => {
                tracing::error!(step, path = %chunk.path, "failed to read an artifact: {e}");
                self.artifact_sent = size;
            }
        }
        if self.artifact_sent >= size {
            self.artifact_at += 1;
            self.artifact_sent = 0;
            self.artifact_file = None;
        }
        chunk
    }

    /// Appends to the spill file; returns where the chunk starts.
    fn spill(&mut self, path: &Path, data: &[u8]) -> std::io::Result<u64> {
        if self.spill.is_none() {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            self.spill = Some(
                std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .open(path)?,
            );
        }
        let Some(file) = self.spill.as_mut() else {
            return Err(std::io::Error::other("no spill file"));
        };
        let at = self.spill_len;
        file.seek(SeekFrom::Start(at))?;
        file.write_all(data)?;
        self.spill_len += data.len() as u64;
        Ok(at)
    }

    /// The output from `offset` to the end of the record that holds it.
    /// The output from `offset` on, joined across records of the same stream
    /// up to [`MESSAGE_DATA`] bytes.
    fn read_at(&mut self, offset: u64) -> std::io::Result<(i32, Vec<u8>)> {
        let mut i = self
            .records
            .partition_point(|r| r.offset + r.len as u64 <= offset);
        let Some(stream) = self.records.get(i).map(|r| r.stream) else {
            return Err(std::io::Error::other(format!(
                "no output kept at offset {offset}"
            )));
        };
        let mut data = Vec::new();
        let mut at = offset;
        while let Some(record) = self.records.get(i) {
            let room = MESSAGE_DATA - data.len();
            if record.stream != stream || room == 0 {
                break;
            }
            let skip = usize::try_from(at.saturating_sub(record.offset)).unwrap_or(usize::MAX);
            let skip = skip.min(record.len);
            let take = (record.len - skip).min(room);
            match &record.place {
                Place::Memory(bytes) => data.extend_from_slice(&bytes[skip..skip + take]),
                Place::Spilled(pos) => {
                    let Some(file) = self.spill.as_mut() else {
                        return Err(std::io::Error::other("the spill file is gone"));
                    };
                    let start = data.len();
                    data.resize(start + take, 0);
                    file.seek(SeekFrom::Start(pos + skip as u64))?;
                    file.read_exact(&mut data[start..])?;
                }
            }
            at += take as u64;
            if skip + take < record.len {
                break;
            }
            i += 1;
        }
        Ok((stream, data))
    }
}

/// `id` as a file name: anything but ASCII letters, digits, `-` and `_`
/// becomes `_`.
fn file_stem(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output(msg: WorkerMessage) -> StepOutput {
        match msg.msg {
            Some(worker_message::Msg::Output(o)) => o,
            other => panic!("expected output, got {other:?}"),
        }
    }

    fn finished(step: &str) -> StepFinished {
        StepFinished {
            step_run_id: step.into(),
            exit_code: Some(0),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn resends_from_the_masters_offset_then_the_result_once_per_session() {
        let dir = tempfile::tempdir().expect("tempdir");
        let j = Journal::new(dir.path());
        assert!(j.open("s"));
        j.resume(&HashMap::from([("s".to_owned(), 0)]));
        j.append("s", 1, b"hello ".to_vec()).await;
        j.append("s", 2, b"world".to_vec()).await;
        j.finish(finished("s"));
        assert_eq!(output(j.next().await).data, b"hello ");
        // The session breaks here; the master has 3 bytes.
        j.disconnected();
        j.resume(&HashMap::from([("s".to_owned(), 3)]));
        let o = output(j.next().await);
        assert_eq!((o.offset, o.data.as_slice(), o.stream), (3, &b"lo "[..], 1));
        let o = output(j.next().await);
        assert_eq!(
            (o.offset, o.data.as_slice(), o.stream),
            (6, &b"world"[..], 2)
        );
        assert!(matches!(
            j.next().await.msg,
            Some(worker_message::Msg::Finished(_))
        ));
        assert_eq!(j.ids(), (vec![], vec!["s".to_owned()]));
        // Not acknowledged: offered again on the next session.
        j.resume(&HashMap::from([("s".to_owned(), 11)]));
        assert!(matches!(
            j.next().await.msg,
            Some(worker_message::Msg::Finished(_))
        ));
        j.acknowledged("s");
        assert_eq!(j.ids(), (vec![], vec![]));
    }

    #[tokio::test]
    async fn steps_the_master_does_not_name_are_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let j = Journal::new(dir.path());
        j.open("keep");
        j.open("stale");
        let unwanted = j.resume(&HashMap::from([("keep".to_owned(), 0)]));
        assert_eq!(unwanted, vec!["stale".to_owned()]);
        assert!(!j.has("stale"));
        assert!(j.has("keep"));
    }

    #[tokio::test]
    async fn output_past_the_memory_limit_spills_and_reads_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let j = Journal::new(dir.path());
        j.open("big");
        // Disconnected: nothing holds the step back.
        let chunk = vec![7u8; 1024 * 1024];
        for i in 0..6u8 {
            let mut c = chunk.clone();
            c[0] = i;
            j.append("big", 1, c).await;
        }
        assert!(j.lock().memory <= MEMORY_LIMIT);
        assert!(dir.path().join(SPILL_DIR).join("big").exists());
        j.resume(&HashMap::from([("big".to_owned(), 0)]));
        let mut got = Vec::new();
        while got.len() < 6 * chunk.len() {
            got.extend(output(j.next().await).data);
        }
        for i in 0..6 {
            assert_eq!(got[i * chunk.len()], i as u8);
        }
        j.acknowledged("big");
        assert!(!dir.path().join(SPILL_DIR).join("big").exists());
        assert_eq!(j.lock().memory, 0);
    }

    #[tokio::test]
    async fn a_connected_step_waits_for_the_session() {
        let dir = tempfile::tempdir().expect("tempdir");
        let j = Journal::new(dir.path());
        j.open("s");
        j.resume(&HashMap::from([("s".to_owned(), 0)]));
        let chunk = vec![0u8; BACKLOG as usize];
        j.append("s", 1, chunk.clone()).await;
        j.append("s", 1, chunk.clone()).await;
        let blocked = tokio::time::timeout(
            std::time::Duration::from_millis(100),
            j.append("s", 1, chunk.clone()),
        )
        .await;
        assert!(blocked.is_err(), "a step past the backlog waits");
        // A message takes at most MESSAGE_DATA: two of them free a backlog.
        output(j.next().await);
        output(j.next().await);
        tokio::time::timeout(std::time::Duration::from_secs(5), j.append("s", 1, chunk))
            .await
            .expect("sending frees the backlog");
    }

    #[tokio::test]
    async fn chunks_of_one_stream_go_out_together_up_to_the_message_limit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let j = Journal::new(dir.path());
        j.open("s");
        // Disconnected while appending: nothing is taken in between.
        for _ in 0..3 {
            j.append("s", 1, vec![b'a'; 4096]).await;
        }
        j.append("s", 2, b"err".to_vec()).await;
        let big = vec![b'b'; MESSAGE_DATA];
        j.append("s", 1, big.clone()).await;
        j.append("s", 1, b"tail".to_vec()).await;
        j.resume(&HashMap::from([("s".to_owned(), 0)]));
        let o = output(j.next().await);
        assert_eq!((o.offset, o.stream, o.data), (0, 1, vec![b'a'; 3 * 4096]));
        let o = output(j.next().await);
        assert_eq!((o.offset, o.stream, o.data), (3 * 4096, 2, b"err".to_vec()));
        let o = output(j.next().await);
        assert_eq!((o.offset, o.stream), (3 * 4096 + 3, 1));
        assert_eq!(o.data, big, "one message holds at most MESSAGE_DATA");
        let o = output(j.next().await);
        assert_eq!(o.data, b"tail");
        // From inside a record, after a reconnect, the join goes on.
        j.resume(&HashMap::from([("s".to_owned(), 100)]));
        let o = output(j.next().await);
        assert_eq!(o.offset, 100);
        assert_eq!(o.data, vec![b'a'; 3 * 4096 - 100]);
    }
}
