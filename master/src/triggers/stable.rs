//! The tree-stable timer: changes of one line (a branch, a pull request)
//! wait until the line has been quiet for the rule's `tree_stable`, and
//! only the newest is built. Pure: the hub passes `now` (tokio's clock, so
//! tests run on virtual time).

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug)]
struct Waiting<V> {
    value: V,
    due: Instant,
}

/// Pending values by key; a newer offer for a key replaces the value and
/// restarts its quiet period.
#[derive(Debug)]
pub(super) struct Stable<K, V> {
    waiting: BTreeMap<K, Waiting<V>>,
}

impl<K: Ord + Clone, V> Default for Stable<K, V> {
    fn default() -> Self {
        Self {
            waiting: BTreeMap::new(),
        }
    }
}

impl<K: Ord + Clone, V> Stable<K, V> {
    /// Holds `value` until `key` has been quiet for `quiet`. Returns the
    /// value it replaced, if any (collapsed into this one).
    pub(super) fn offer(&mut self, key: K, value: V, now: Instant, quiet: Duration) -> Option<V> {
        let due = now + quiet;
        self.waiting
            .insert(key, Waiting { value, due })
            .map(|w| w.value)
    }

    /// Takes every value whose quiet period has passed, in key order.
    pub(super) fn due(&mut self, now: Instant) -> Vec<(K, V)> {
        let keys: Vec<K> = self
            .waiting
            .iter()
            .filter(|(_, w)| w.due <= now)
            .map(|(k, _)| k.clone())
            .collect();
        keys.into_iter()
            .filter_map(|k| self.waiting.remove(&k).map(|w| (k, w.value)))
            .collect()
    }

    /// When the next value falls due.
    pub(super) fn next_due(&self) -> Option<Instant> {
        self.waiting.values().map(|w| w.due).min()
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.waiting.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_burst_collapses_into_its_newest_value() {
        let quiet = Duration::from_secs(10);
        let mut s: Stable<&str, u32> = Stable::default();
        let t0 = Instant::now();
        assert_eq!(s.offer("main", 1, t0, quiet), None);
        tokio::time::advance(Duration::from_secs(6)).await;
        assert_eq!(s.offer("main", 2, Instant::now(), quiet), Some(1));
        tokio::time::advance(Duration::from_secs(6)).await;
        // 12 s after the first push, but only 6 after the last: not yet.
        assert!(s.due(Instant::now()).is_empty());
        assert_eq!(s.offer("main", 3, Instant::now(), quiet), Some(2));
        assert_eq!(s.next_due(), Some(Instant::now() + quiet));
        tokio::time::advance(quiet).await;
        assert_eq!(s.due(Instant::now()), vec![("main", 3)]);
        assert_eq!(s.len(), 0);
        assert_eq!(s.next_due(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn lines_wait_independently() {
        let mut s: Stable<&str, u32> = Stable::default();
        let t0 = Instant::now();
        s.offer("main", 1, t0, Duration::from_secs(5));
        s.offer("pr/7", 2, t0, Duration::from_secs(20));
        assert_eq!(s.next_due(), Some(t0 + Duration::from_secs(5)));
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(s.due(Instant::now()), vec![("main", 1)]);
        assert_eq!(s.next_due(), Some(t0 + Duration::from_secs(20)));
        tokio::time::advance(Duration::from_secs(15)).await;
        assert_eq!(s.due(Instant::now()), vec![("pr/7", 2)]);
    }
}
