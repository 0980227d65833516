//! Where command output goes: stdout in the binary, a buffer in tests.
//! Cloned into every follow task; each `write` is one locked write, so lines
//! from concurrent builds never interleave mid-line.

use std::io::{self, Write};
use std::sync::{Arc, Mutex, MutexGuard};

#[derive(Clone)]
pub struct Output {
    inner: Arc<Mutex<Box<dyn Write + Send>>>,
}

impl Output {
    pub fn stdout() -> Self {
        Self::new(Box::new(io::stdout()))
    }

    pub fn new(w: Box<dyn Write + Send>) -> Self {
        Self {
            inner: Arc::new(Mutex::new(w)),
        }
    }

    /// An output whose bytes can be read back (tests).
    pub fn buffer() -> (Self, SharedBuf) {
        let buf = SharedBuf::default();
        (Self::new(Box::new(buf.clone())), buf)
    }

    pub fn write(&self, bytes: &[u8]) -> io::Result<()> {
        let mut w = lock(&self.inner);
        w.write_all(bytes)?;
        w.flush()
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
