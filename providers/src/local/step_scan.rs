//! Finding the step process groups of terminated workers, with one `/proc`
//! pass shared by every terminate waiting for one.
//!
//! A worker that died abruptly cannot stop its steps, and its steps may have
//! left its process tree, so they are found by their environment, which
//! takes reading every process's. Done once per terminate, stopping N
//! workers read N × every process (500 workers: 162,692 environ files); now
//! terminates that ask while a pass runs share the next one, so a fleet
//! stopping at once costs a few passes, not one per worker.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::Mutex;

use crate::ProviderError;

/// One pass: step group leaders by worker id.
pub type ScanFn = dyn Fn() -> Result<HashMap<String, Vec<i32>>, ProviderError> + Send + Sync;

pub struct StepScans {
    scan: Arc<ScanFn>,
    /// Handed out to each request before it waits for a pass.
    next_ticket: AtomicU64,
    last: Mutex<Option<Pass>>,
}

struct Pass {
    /// Every request with a smaller ticket asked before this pass began, so
    /// the pass saw every process that existed when it asked.
    covers: u64,
    groups: HashMap<String, Vec<i32>>,
}

impl StepScans {
    pub fn new(scan: Arc<ScanFn>) -> Self {
        Self {
            scan,
            next_ticket: AtomicU64::new(0),
            last: Mutex::new(None),
        }
    }

    /// The step groups of `worker_id`, from a pass that began after this
    /// call did.
    pub async fn groups_of(&self, worker_id: &str) -> Result<Vec<i32>, ProviderError> {
        let ticket = self.next_ticket.fetch_add(1, Ordering::SeqCst);
        let mut last = self.last.lock().await;
        if let Some(pass) = last.as_ref().filter(|p| p.covers > ticket) {
            return Ok(pass.groups.get(worker_id).cloned().unwrap_or_default());
        }
        let covers = self.next_ticket.load(Ordering::SeqCst);
        let scan = self.scan.clone();
        let groups = tokio::task::spawn_blocking(move || scan())
            .await
            .map_err(|e| ProviderError::transient(format!("failed to scan processes: {e}")))??;
        let found = groups.get(worker_id).cloned().unwrap_or_default();
        *last = Some(Pass { covers, groups });
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicUsize};
    use std::time::Duration;

    use super::*;

    /// A scanner counting its passes; each pass waits for `gate` (bounded).
    fn counting(gate: Arc<AtomicBool>) -> (Arc<AtomicUsize>, StepScans) {
        let passes = Arc::new(AtomicUsize::new(0));
        let seen = passes.clone();
        let scans = StepScans::new(Arc::new(move || {
            for _ in 0..10_000 {
                if gate.load(Ordering::SeqCst) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            let n = seen.fetch_add(1, Ordering::SeqCst) + 1;
            // Which pass found it, so a test can tell a stale answer.
            Ok(HashMap::from([("w".to_owned(), vec![n as i32])]))
        }));
        (passes, scans)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn requests_waiting_together_share_one_pass() {
        let gate = Arc::new(AtomicBool::new(false));
        let (passes, scans) = counting(gate.clone());
        let scans = Arc::new(scans);
        let asks: Vec<_> = (0..200)
            .map(|_| {
                let scans = scans.clone();
                tokio::spawn(async move { scans.groups_of("w").await.ok() })
            })
            .collect();
        // Every request holds its ticket before the first pass may end.
        for _ in 0..10_000 {
            if scans.next_ticket.load(Ordering::SeqCst) == 200 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert_eq!(scans.next_ticket.load(Ordering::SeqCst), 200);
        gate.store(true, Ordering::SeqCst);
        for ask in asks {
            let groups = ask.await.ok().flatten();
            assert!(groups.is_some_and(|g| g.len() == 1));
        }
        // The pass running when they asked, then at most one for them all.
        let n = passes.load(Ordering::SeqCst);
        assert!((1..=2).contains(&n), "{n} passes for 200 requests");
    }

    #[tokio::test]
    async fn a_later_request_gets_a_fresh_pass() {
        let (passes, scans) = counting(Arc::new(AtomicBool::new(true)));
        assert_eq!(scans.groups_of("w").await.ok(), Some(vec![1]));
        assert_eq!(
            scans.groups_of("w").await.ok(),
            Some(vec![2]),
            "not the old pass"
        );
        assert_eq!(scans.groups_of("other").await.ok(), Some(vec![]));
        assert_eq!(passes.load(Ordering::SeqCst), 3);
    }
}
