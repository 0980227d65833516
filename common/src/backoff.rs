//! Jittered exponential backoff as a value: ask it for the next delay after
//! each failure, reset it after a success. The caller keeps the clock, so it
//! works with std's and with tokio's (paused) `Instant` alike.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};

/// Delays for one run of failures: the first in `[min, 2·min)`, each next
/// one about twice the last (with jitter, so that many failing callers do
/// not retry in lockstep), never above `max`.
#[derive(Debug)]
pub struct Backoff {
    builder: ExponentialBuilder,
    max: Duration,
    /// The current run of failures; `None` until the first and after a reset.
    run: Option<ExponentialBackoff>,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Self {
        Self {
            builder: ExponentialBuilder::default()
                .with_min_delay(min)
                .with_max_delay(max)
                .with_jitter()
                .without_max_times(),
            max,
            run: None,
        }
    }

    /// Like `new`, with the jitter drawn from `seed`: the same failures get
    /// the same delays (the policy simulator replays deterministically).
    pub fn seeded(min: Duration, max: Duration, seed: u64) -> Self {
        let mut backoff = Self::new(min, max);
        backoff.builder = backoff.builder.with_jitter_seed(seed);
        backoff
    }

    /// The delay to wait after one more failure.
    pub fn next_delay(&mut self) -> Duration {
        let builder = self.builder;
        self.run
            .get_or_insert_with(|| builder.build())
            .next()
            .unwrap_or(self.max)
            // Jitter is added on top of the capped delay: cap it again.
            .min(self.max)
    }

    /// The longest delay: what a failure that only a config change can fix
    /// waits at once.
    pub fn max(&self) -> Duration {
        self.max
    }

    /// A success: the next failure starts a new run from `min`.
    pub fn reset(&mut self) {
        self.run = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(1);
    const MAX: Duration = Duration::from_secs(8);

    #[test]
    fn delays_grow_up_to_max_and_restart_after_reset() {
        let mut b = Backoff::new(MIN, MAX);
        let first = b.next_delay();
        assert!(first >= MIN && first <= 2 * MIN, "{first:?}");
        let second = b.next_delay();
        assert!(second >= 2 * MIN, "{second:?} grows");
        for _ in 0..20 {
            let d = b.next_delay();
            assert!(d <= MAX, "{d:?} is capped");
        }
        // At the cap, jitter cannot lift a delay above it.
        assert_eq!(b.next_delay(), MAX);
        assert_eq!(b.max(), MAX);
        b.reset();
        let again = b.next_delay();
        assert!(again <= 2 * MIN, "a reset restarts from min: {again:?}");
    }

    #[test]
    fn a_seeded_backoff_repeats_its_delays() {
        let delays = |seed| {
            let mut b = Backoff::seeded(MIN, MAX, seed);
            (0..5).map(|_| b.next_delay()).collect::<Vec<_>>()
        };
        assert_eq!(delays(7), delays(7));
        assert!(delays(7).iter().all(|d| *d <= MAX));
    }
}
