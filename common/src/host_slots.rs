//! One host's share of a pool's workers: its capacity, the workers that hold
//! a slot on it, and the quarantine that keeps launches away from it while
//! it keeps failing. Pure bookkeeping, generic over the caller's clock so
//! that tokio's paused-time `Instant` works in tests.

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::ops::{Add, Sub};
use std::time::Duration;

use crate::backoff::Backoff;

/// What a clock's instant must do here. std's and tokio's `Instant` do.
pub trait Moment: Copy + Ord + Add<Duration, Output = Self> + Sub<Output = Duration> {}

impl<I> Moment for I where I: Copy + Ord + Add<Duration, Output = I> + Sub<Output = Duration> {}

#[derive(Debug)]
pub struct HostSlots<I> {
    /// `None`: no limit.
    capacity: Option<usize>,
    /// Workers placed here whose processes or containers may still exist.
    workers: BTreeSet<String>,
    backoff: Backoff,
    quarantine: Option<Quarantine<I>>,
}

#[derive(Debug)]
struct Quarantine<I> {
    until: I,
    error: String,
    /// Only a config change can fix it (a host key, refused auth).
    permanent: bool,
}

impl<I: Moment> HostSlots<I> {
    /// `backoff` spaces the quarantines of a run of failures.
    pub fn new(capacity: Option<usize>, backoff: Backoff) -> Self {
        Self {
            capacity,
            workers: BTreeSet::new(),
            backoff,
            quarantine: None,
        }
    }

    pub fn capacity(&self) -> Option<usize> {
        self.capacity
    }

    /// Workers holding a slot here now.
    pub fn used(&self) -> usize {
        self.workers.len()
    }

    fn full(&self) -> bool {
        self.capacity.is_some_and(|cap| self.workers.len() >= cap)
    }

    /// Whether a launch may try this host at `now`: a free slot, and no
    /// quarantine.
    pub fn has_room(&self, now: I) -> bool {
        !self.full() && self.quarantined(now).is_none()
    }

    /// Takes a slot for `worker_id` if the host has one and is not
    /// quarantined. A worker that already holds one keeps it.
    pub fn reserve(&mut self, worker_id: &str, now: I) -> bool {
        if self.workers.contains(worker_id) {
            return true;
        }
        if !self.has_room(now) {
            return false;
        }
        self.workers.insert(worker_id.to_owned())
    }

    /// A worker found on the host (after a master restart, say) holds a
    /// slot until it is released, whatever the capacity.
    pub fn adopt(&mut self, worker_id: &str) {
        self.workers.insert(worker_id.to_owned());
    }

    /// Frees the worker's slot; returns how many remain taken.
    pub fn release(&mut self, worker_id: &str) -> usize {
        self.workers.remove(worker_id);
        self.workers.len()
    }

    /// A failure that says the host itself is in trouble: no launch goes
    /// here for the next backoff delay, or for the longest one at once when
    /// the failure is `permanent`. Returns the delay.
    pub fn quarantine(&mut self, now: I, error: impl Into<String>, permanent: bool) -> Duration {
        let delay = if permanent {
            self.backoff.max()
        } else {
            self.backoff.next_delay()
        };
        self.quarantine = Some(Quarantine {
            until: now + delay,
            error: error.into(),
            permanent,
        });
        delay
    }

    /// A call succeeded: the host is healthy again.
    pub fn healthy(&mut self) {
        self.quarantine = None;
        self.backoff.reset();
    }

    /// How long the quarantine still lasts at `now`, and the error it
    /// followed.
    pub fn quarantined(&self, now: I) -> Option<(Duration, &str)> {
        self.quarantine
            .as_ref()
            .filter(|q| q.until > now)
            .map(|q| (q.until - now, q.error.as_str()))
    }

    /// The error the host is quarantined after at `now`, when only a config
    /// change can fix it.
    pub fn permanent_failure(&self, now: I) -> Option<&str> {
        self.quarantine
            .as_ref()
            .filter(|q| q.permanent && q.until > now)
            .map(|q| q.error.as_str())
    }

    /// For ordering placements: compares as the fraction of the capacity in
    /// use, then the number of workers (an unlimited host counts by that
    /// alone).
    pub fn load(&self) -> Load {
        Load {
            used: self.workers.len(),
            capacity: self.capacity.filter(|c| *c > 0),
        }
    }
}

/// A host's load, ordered emptiest first.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    used: usize,
    capacity: Option<usize>,
}

impl Load {
    /// The fraction in use as `numerator / denominator`; an unlimited host
    /// is at 0.
    fn fraction(self) -> (u128, u128) {
        match self.capacity {
            Some(cap) => (self.used as u128, cap as u128),
            None => (0, 1),
        }
    }
}

impl Ord for Load {
    fn cmp(&self, other: &Self) -> Ordering {
        let (a, b) = (self.fraction(), other.fraction());
        // a.0 / a.1 against b.0 / b.1, exactly.
        (a.0 * b.1)
            .cmp(&(b.0 * a.1))
            .then(self.used.cmp(&other.used))
    }
}

impl PartialOrd for Load {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Load {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Load {}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    fn slots(capacity: Option<usize>, min: u64, max: u64) -> HostSlots<Instant> {
        HostSlots::new(
            capacity,
            Backoff::new(Duration::from_secs(min), Duration::from_secs(max)),
        )
    }

    #[test]
    fn capacity_is_per_host() {
        let mut h = slots(Some(2), 1, 60);
        let now = Instant::now();
        assert!(h.reserve("a", now));
        assert!(h.reserve("b", now));
        assert!(!h.reserve("c", now));
        assert_eq!((h.used(), h.capacity()), (2, Some(2)));
        assert_eq!(h.release("a"), 1);
        assert!(h.reserve("c", now));
        // Adopted workers count even beyond the capacity.
        h.adopt("d");
        assert_eq!(h.used(), 3);
        assert!(!h.has_room(now));
    }

    #[test]
    fn a_failed_host_backs_off_and_recovers() {
        let mut h = slots(Some(1), 2, 60);
        let (min, max) = (Duration::from_secs(2), Duration::from_secs(60));
        let now = Instant::now();
        let delay = h.quarantine(now, "failed to connect", false);
        assert!(delay >= min && delay <= max, "{delay:?}");
        assert!(h.quarantined(now).is_some());
        assert!(!h.reserve("a", now));
        assert_eq!(h.permanent_failure(now), None);
        let delay = h.quarantine(now, "bad host key", true);
        assert_eq!(delay, max);
        assert_eq!(h.permanent_failure(now), Some("bad host key"));
        h.healthy();
        assert!(h.quarantined(now).is_none());
        assert!(h.reserve("a", now));
    }

    #[test]
    fn quarantine_backs_off_and_lifts() {
        let mut h = slots(None, 1, 8);
        let now = Instant::now();
        let first = h.quarantine(now, "failed to reach h0", false);
        assert!(first >= Duration::from_secs(1) && first <= Duration::from_secs(2));
        assert!(!h.reserve("w1", now));
        assert_eq!(
            h.quarantined(now).map(|(_, why)| why),
            Some("failed to reach h0")
        );
        let second = h.quarantine(now, "failed to reach h0", false);
        assert!(second >= Duration::from_secs(2), "{second:?} grows");
        let later = now + second + Duration::from_millis(1);
        assert!(h.quarantined(later).is_none());
        assert!(h.reserve("w2", later), "quarantine over");
        h.healthy();
        let again = h.quarantine(later, "failed to reach h0", false);
        assert!(
            again <= Duration::from_secs(2),
            "a success resets: {again:?}"
        );
    }

    #[test]
    fn load_orders_by_fraction_of_capacity_then_count() {
        let load = |used: usize, capacity: Option<usize>| {
            let mut h = slots(capacity, 1, 1);
            for i in 0..used {
                h.adopt(&i.to_string());
            }
            h.load()
        };
        assert!(load(0, Some(2)) < load(1, Some(4)));
        // 1/2 against 1/4.
        assert!(load(1, Some(4)) < load(1, Some(2)));
        assert!(
            load(1, Some(3)) < load(334, Some(1000)),
            "exact, not rounded"
        );
        // Equal fractions: fewer workers first.
        assert!(load(1, Some(2)) < load(2, Some(4)));
        // Unlimited hosts count by their workers alone.
        assert!(load(1, None) < load(2, None));
        assert!(load(3, None) < load(1, Some(2)));
        assert_eq!(load(0, Some(2)), load(0, Some(4)));
    }
}
