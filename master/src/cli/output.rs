//! Where command output goes: stdout in the binary, a buffer in tests.
//! Cloned into every follow task; each `write` is one locked write, so lines
//! from concurrent builds never interleave mid-line.
//!
//! On a terminal it also holds the progress spinners (indicatif) of builds
//! that wait: every write first clears them and redraws them after, so a
//! spinner never lands inside a log line.

use std::io::{self, IsTerminal, Write};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

#[derive(Clone)]
pub struct Output {
    inner: Arc<Mutex<Box<dyn Write + Send>>>,
    /// Only when stdout is a terminal: elsewhere progress is plain lines.
    bars: Option<MultiProgress>,
}

impl Output {
    pub fn stdout() -> Self {
        let mut out = Self::new(Box::new(io::stdout()));
        if io::stdout().is_terminal() {
            out.bars = Some(MultiProgress::with_draw_target(ProgressDrawTarget::stdout()));
        }
        out
    }

    pub fn new(w: Box<dyn Write + Send>) -> Self {
        Self {
            inner: Arc::new(Mutex::new(w)),
            bars: None,
        }
    }

    /// A spinner line redrawn in place, or `None` when output is not a
    /// terminal (print plain lines then).
    pub fn spinner(&self) -> Option<ProgressBar> {
        let bars = self.bars.as_ref()?;
        let bar = bars.add(ProgressBar::new_spinner());
        if let Ok(style) = ProgressStyle::with_template("{spinner} {wide_msg}") {
            bar.set_style(style);
        }
        bar.enable_steady_tick(Duration::from_millis(120));
        Some(bar)
    }

    /// An output whose bytes can be read back (tests).
    pub fn buffer() -> (Self, SharedBuf) {
        let buf = SharedBuf::default();
        (Self::new(Box::new(buf.clone())), buf)
    }

    pub fn write(&self, bytes: &[u8]) -> io::Result<()> {
        let write = || {
            let mut w = lock(&self.inner);
            w.write_all(bytes)?;
            w.flush()
        };
        match &self.bars {
            Some(bars) => bars.suspend(write),
            None => write(),
        }
    }

    pub fn line(&self, text: &str) -> io::Result<()> {
        let mut s = String::with_capacity(text.len() + 1);
        s.push_str(text);
        s.push('\n');
        self.write(s.as_bytes())
    }
}

/// A clonable in-memory writer.
#[derive(Clone, Default)]
pub struct SharedBuf(Arc<Mutex<Vec<u8>>>);

impl SharedBuf {
    pub fn contents(&self) -> String {
        String::from_utf8_lossy(&lock(&self.0)).into_owned()
    }
}

impl Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        lock(&self.0).extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A panicking writer cannot leave the bytes inconsistent, so poison is ignored.
fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
