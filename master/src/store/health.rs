//! Whether the store takes writes: set by the scheduler when a write fails
//! and cleared once everything it kept unsaved is saved again. `/readyz`
//! and submits read it.

use tokio::sync::watch;

#[derive(Debug)]
pub struct StoreHealth {
    /// `Some(reason)` while the store fails.
    fault: watch::Sender<Option<String>>,
}

impl Default for StoreHealth {
    fn default() -> Self {
        Self {
            fault: watch::Sender::new(None),
        }
    }
}

impl StoreHealth {
    pub fn new() -> Self {
        Self::default()
    }

    /// Why the store fails, or `None` when it works.
    pub fn fault(&self) -> Option<String> {
        self.fault.borrow().clone()
    }

    pub fn fail(&self, reason: String) {
        self.fault.send_replace(Some(reason));
    }

    pub fn recover(&self) {
        self.fault.send_if_modified(|f| f.take().is_some());
    }
}
