//! Delays between reconnect attempts: exponential with jitter, so a fleet of
//! workers does not hit a restarted master in lockstep.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};

pub(crate) struct Backoff {
    builder: ExponentialBuilder,
    max: Duration,
    delays: ExponentialBackoff,
}

impl Backoff {
    pub(crate) fn new(min: Duration, max: Duration) -> Self {
        let builder = ExponentialBuilder::default()
            .with_min_delay(min)
            .with_max_delay(max)
            .with_factor(2.0)
            .with_jitter()
            .without_max_times();
        Self {
            builder,
            max,
            delays: builder.build(),
        }
    }

    /// The next delay; never more than `max`.
    pub(crate) fn next_delay(&mut self) -> Duration {
        // backon's jitter adds up to one more delay on top, which could
        // otherwise double `max`.
        self.delays.next().unwrap_or(self.max).min(self.max)
    }

    /// Starts over from `min` after a session was established.
    pub(crate) fn reset(&mut self) {
        self.delays = self.builder.build();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_and_stays_bounded() {
        let min = Duration::from_millis(100);
        let max = Duration::from_secs(1);
        let mut b = Backoff::new(min, max);
        let first = b.next_delay();
        assert!(first >= min && first <= min * 2, "{first:?}");
        for _ in 0..50 {
            let d = b.next_delay();
            assert!(d >= min && d <= max, "{d:?}");
        }
        // Far along the curve, delays sit near the cap.
        assert!(b.next_delay() >= max / 2);
        b.reset();
        assert!(b.next_delay() <= min * 2);
    }
}
