//! Moving a step's stdout and stderr into the journal, on their way to the
//! master.
//!
//! One loop reads both pipes and awaits each append to the journal before
//! reading more. While a session is up and the master reads slowly, the
//! journal holds the loop back, the pipes fill and the step blocks on its
//! writes; without a session the output is kept (spilling to disk), so the
//! step goes on until its lease runs out.

use std::time::Duration;

use burst_proto::OutputStream;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::journal::Journal;

/// The most one read of a step's pipe takes (the journal joins reads into
/// larger messages).
pub const CHUNK_SIZE: usize = 128 * 1024;

/// How long, in total, to wait for more output once the step's main process
/// has exited. Its process group is killed by then, so this only matters when
/// something outside the group still holds a pipe open.
const DRAIN_BUDGET: Duration = Duration::from_secs(1);

/// The last bytes of a process's stderr, kept for an error message (the
/// checkout step quotes git's).
pub(crate) type Tail = std::sync::Arc<std::sync::Mutex<Vec<u8>>>;

/// How much of stderr a [`Tail`] keeps.
pub(crate) const TAIL_LIMIT: usize = 4096;

/// Journals everything `stdout` and `stderr` produce, in order (the
/// journal's offsets count the bytes of both streams before a chunk).
/// `exited` fires when the step's main process has exited; from then on the
/// pipes get [`DRAIN_BUDGET`] to reach end-of-file. Returns the byte count.
pub(crate) async fn pump<O, E>(
    step_run_id: String,
    stdout: Option<O>,
    stderr: Option<E>,
    journal: Journal,
    mut exited: oneshot::Receiver<()>,
    tail: Option<Tail>,
) -> u64
where
    O: AsyncRead + Unpin,
    E: AsyncRead + Unpin,
{
    let mut out = Pipe::new(stdout, OutputStream::Stdout);
    let mut err = Pipe::new(stderr, OutputStream::Stderr);
    let mut offset = 0u64;
    // None until the main process exits; then the read time left.
    let mut budget: Option<Duration> = None;

    while out.is_open() || err.is_open() {
        let waiting_since = Instant::now();
        let event = tokio::select! {
            r = out.read(), if out.is_open() => Event::Read(out.kind, r),
            r = err.read(), if err.is_open() => Event::Read(err.kind, r),
            // An error means the sender was dropped, which also means exited.
            _ = &mut exited, if budget.is_none() => Event::Exited,
            () = tokio::time::sleep(budget.unwrap_or_default()), if budget.is_some() => Event::DrainTimedOut,
        };
        // Only time spent waiting on the pipes counts, not time spent sending.
        if let Some(left) = budget.as_mut() {
            *left = left.saturating_sub(waiting_since.elapsed());
        }
        match event {
            Event::Exited => budget = Some(DRAIN_BUDGET),
            Event::DrainTimedOut => {
                tracing::warn!(
                    step = %step_run_id,
                    "step exited but something still holds its output open; not waiting for it"
                );
                break;
            }
            Event::Read(kind, Ok(data)) if data.is_empty() => close(kind, &mut out, &mut err),
            Event::Read(kind, Ok(data)) => {
                if let Some(tail) = tail.as_ref().filter(|_| kind == OutputStream::Stderr) {
                    keep_tail(tail, &data);
                }
                let len = data.len() as u64;
                journal.append(&step_run_id, kind as i32, data).await;
                offset += len;
            }
            Event::Read(kind, Err(e)) => {
                tracing::warn!(step = %step_run_id, "failed to read the step's {kind:?}: {e}");
                close(kind, &mut out, &mut err);
            }
        }
    }
    offset
}

fn keep_tail(tail: &Tail, data: &[u8]) {
    let mut t = tail.lock().unwrap_or_else(|p| p.into_inner());
    t.extend_from_slice(data);
    if t.len() > TAIL_LIMIT {
        let cut = t.len() - TAIL_LIMIT;
        t.drain(..cut);
    }
}

enum Event {
    Read(OutputStream, std::io::Result<Vec<u8>>),
    Exited,
    DrainTimedOut,
}

fn close<O, E>(kind: OutputStream, out: &mut Pipe<O>, err: &mut Pipe<E>) {
    if kind == OutputStream::Stdout {
        out.reader = None;
    } else {
        err.reader = None;
    }
}

struct Pipe<R> {
    reader: Option<R>,
    kind: OutputStream,
    buf: Vec<u8>,
}

impl<R: AsyncRead + Unpin> Pipe<R> {
    fn new(reader: Option<R>, kind: OutputStream) -> Self {
        Self {
            buf: if reader.is_some() {
                vec![0; CHUNK_SIZE]
            } else {
                Vec::new()
            },
            reader,
            kind,
        }
    }

    fn is_open(&self) -> bool {
        self.reader.is_some()
    }

    /// The next chunk; empty at end-of-file. Cancel-safe: nothing is read
    /// unless the future completes.
    async fn read(&mut self) -> std::io::Result<Vec<u8>> {
        let Some(reader) = self.reader.as_mut() else {
            return Ok(Vec::new());
        };
        let n = reader.read(&mut self.buf).await?;
        Ok(self.buf[..n].to_vec())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use burst_proto::{worker_message, StepOutput};

    use super::*;

    fn output(msg: burst_proto::WorkerMessage) -> StepOutput {
        match msg.msg {
            Some(worker_message::Msg::Output(o)) => o,
            other => panic!("expected output, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn offsets_count_both_streams() {
        let dir = tempfile::tempdir().expect("tempdir");
        let journal = Journal::new(dir.path());
        journal.open("s1");
        journal.resume(&HashMap::from([("s1".to_owned(), 0)]));
        let stdout: &[u8] = &[b'o'; CHUNK_SIZE + 10];
        let stderr: &[u8] = b"err";
        let (_exited_tx, exited) = oneshot::channel();
        let pump = tokio::spawn(pump(
            "s1".into(),
            Some(stdout),
            Some(stderr),
            journal.clone(),
            exited,
            None,
        ));
        let mut next = 0u64;
        let (mut out, mut err) = (Vec::new(), Vec::new());
        while next < (stdout.len() + stderr.len()) as u64 {
            let o = output(journal.next().await);
            assert_eq!(o.offset, next);
            assert!(o.data.len() <= crate::journal::MESSAGE_DATA);
            next += o.data.len() as u64;
            if o.stream == OutputStream::Stdout as i32 {
                out.extend(o.data);
            } else {
                err.extend(o.data);
            }
        }
        assert_eq!(out, stdout);
        assert_eq!(err, stderr);
        assert_eq!(pump.await.expect("join"), next);
    }

    #[tokio::test]
    async fn gives_up_on_a_pipe_held_open_after_exit() {
        let dir = tempfile::tempdir().expect("tempdir");
        // The write half stays alive: the pipe never reaches end-of-file.
        let (_held, read) = tokio::io::duplex(64);
        let (exited_tx, exited) = oneshot::channel();
        let _ = exited_tx.send(());
        let started = Instant::now();
        let n = pump::<_, &[u8]>(
            "s1".into(),
            Some(read),
            None,
            Journal::new(dir.path()),
            exited,
            None,
        )
        .await;
        assert_eq!(n, 0);
        assert!(started.elapsed() < DRAIN_BUDGET * 3);
    }
}
