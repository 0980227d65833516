//! GitHub's rate limits, as pure functions of an answer's status and
//! headers, and the cap on JIT configs per minute. Both hand back *when* to
//! call next; `api.rs` sleeps until then.

use std::collections::VecDeque;
use std::time::Duration;

use reqwest::header::HeaderMap;
use tokio::time::Instant;

/// A secondary limit without `Retry-After`: GitHub's docs say wait at
/// least a minute, and longer if it goes on.
const SECONDARY_FIRST_WAIT: Duration = Duration::from_secs(60);
const SECONDARY_MAX_WAIT: Duration = Duration::from_secs(15 * 60);
/// A reset far in the future is a broken header, not an hour-long wait.
const MAX_RESET_WAIT: Duration = Duration::from_secs(3600);

/// What an answer says about the quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub remaining: Option<i64>,
    /// Unix seconds.
    pub reset: Option<u64>,
    pub retry_after: Option<u64>,
}

impl Quota {
    pub fn read(headers: &HeaderMap) -> Self {
        let num = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<i64>().ok())
        };
        Self {
            remaining: num("x-ratelimit-remaining"),
            reset: num("x-ratelimit-reset").and_then(|v| u64::try_from(v).ok()),
            retry_after: num("retry-after").and_then(|v| u64::try_from(v).ok()),
        }
    }
}

/// Whether an answer was a refusal for rate (then the call is made again
/// after the wait), and how long the next call must wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub limited: bool,
    pub wait: Option<Duration>,
}

/// Remembers the secondary-limit streak between answers.
#[derive(Debug, Default)]
pub struct RateGate {
    blocked_until: Option<Instant>,
    secondary_streak: u32,
}

impl RateGate {
    /// When the next call may go (`None`: now).
    pub fn open_at(&self, now: Instant) -> Option<Instant> {
        self.blocked_until.filter(|t| *t > now)
    }

    /// Reads an answer: `status`, its `quota` and whether its body speaks
    /// of a secondary rate limit; `now_unix` is the wall clock, for reset.
    pub fn record(
        &mut self,
        status: u16,
        quota: Quota,
        secondary_body: bool,
        now: Instant,
        now_unix: u64,
    ) -> Verdict {
        let refused = status == 403 || status == 429;
        let until_reset = || {
            quota.reset.map(|reset| {
                Duration::from_secs(reset.saturating_sub(now_unix).max(1)).min(MAX_RESET_WAIT)
            })
        };
        let verdict = if let Some(secs) = quota.retry_after.filter(|_| refused) {
            self.secondary_streak += 1;
            Verdict {
                limited: true,
                wait: Some(Duration::from_secs(secs.max(1)).min(SECONDARY_MAX_WAIT)),
            }
        } else if refused && quota.remaining == Some(0) {
            Verdict {
                limited: true,
                wait: Some(until_reset().unwrap_or(SECONDARY_FIRST_WAIT)),
            }
        } else if refused && secondary_body {
            self.secondary_streak += 1;
            let factor = 1u32 << self.secondary_streak.saturating_sub(1).min(4);
            Verdict {
                limited: true,
                wait: Some((SECONDARY_FIRST_WAIT * factor).min(SECONDARY_MAX_WAIT)),
            }
        } else {
            if (200..300).contains(&status) {
                self.secondary_streak = 0;
            }
            // The last call of the window went through: the next waits.
            let wait = (quota.remaining == Some(0)).then(until_reset).flatten();
            Verdict {
                limited: false,
                wait,
            }
        };
        if let Some(wait) = verdict.wait {
            let until = now + wait;
            self.blocked_until = Some(self.blocked_until.map_or(until, |b| b.max(until)));
        }
        verdict
    }
}

/// At most `max` JIT configs in any 60 s.
#[derive(Debug)]
pub struct JitWindow {
    max: usize,
    issued: VecDeque<Instant>,
}

pub const JIT_WINDOW: Duration = Duration::from_secs(60);

impl JitWindow {
    pub fn new(max: u32) -> Self {
        Self {
            max: max.max(1) as usize,
            issued: VecDeque::new(),
        }
    }

    /// Takes a slot now, or says when one frees up.
    pub fn take(&mut self, now: Instant) -> Result<(), Instant> {
        while self
            .issued
            .front()
            .is_some_and(|t| now.duration_since(*t) >= JIT_WINDOW)
        {
            self.issued.pop_front();
        }
        if self.issued.len() < self.max {
            self.issued.push_back(now);
            return Ok(());
        }
        Err(self.issued[0] + JIT_WINDOW)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_is_obeyed_and_blocks_the_gate() {
        let now = Instant::now();
        let mut gate = RateGate::default();
        let q = Quota::read(&headers(&[("retry-after", "7")]));
        let v = gate.record(429, q, false, now, 1000);
        assert_eq!(
            v,
            Verdict {
                limited: true,
                wait: Some(Duration::from_secs(7))
            }
        );
        assert_eq!(gate.open_at(now), Some(now + Duration::from_secs(7)));
        assert_eq!(gate.open_at(now + Duration::from_secs(7)), None);
    }

    #[tokio::test(start_paused = true)]
    async fn an_exhausted_primary_quota_waits_until_reset() {
        let now = Instant::now();
        let mut gate = RateGate::default();
        let q = Quota::read(&headers(&[
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", "1030"),
        ]));
        let v = gate.record(403, q, false, now, 1000);
        assert_eq!(
            v,
            Verdict {
                limited: true,
                wait: Some(Duration::from_secs(30))
            }
        );
        // The last allowed call succeeded: not refused, but the next waits.
        let mut gate = RateGate::default();
        let v = gate.record(200, q, false, now, 1000);
        assert_eq!(
            v,
            Verdict {
                limited: false,
                wait: Some(Duration::from_secs(30))
            }
        );
        // A reset in the past, or absurdly far, is bounded.
        let past = Quota {
            remaining: Some(0),
            reset: Some(10),
            retry_after: None,
        };
        assert_eq!(
            gate.record(403, past, false, now, 1000).wait,
            Some(Duration::from_secs(1))
        );
        let far = Quota {
            remaining: Some(0),
            reset: Some(10_000_000),
            retry_after: None,
        };
        assert_eq!(
            gate.record(403, far, false, now, 1000).wait,
            Some(MAX_RESET_WAIT)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn secondary_limits_without_retry_after_back_off_exponentially() {
        let now = Instant::now();
        let mut gate = RateGate::default();
        let q = Quota {
            remaining: Some(4000),
            reset: None,
            retry_after: None,
        };
        let waits: Vec<_> = (0..7)
            .map(|_| gate.record(403, q, true, now, 0).wait.unwrap().as_secs())
            .collect();
        assert_eq!(waits, [60, 120, 240, 480, 900, 900, 900]);
        gate.record(200, q, false, now, 0);
        assert_eq!(
            gate.record(403, q, true, now, 0).wait,
            Some(SECONDARY_FIRST_WAIT)
        );
        // A 403 that is no rate limit (a permission) is not waited on.
        let mut gate = RateGate::default();
        assert_eq!(
            gate.record(403, q, false, now, 0),
            Verdict {
                limited: false,
                wait: None
            }
        );
        assert_eq!(gate.open_at(now), None);
    }

    #[tokio::test(start_paused = true)]
    async fn the_jit_window_allows_max_per_minute() {
        let start = Instant::now();
        let mut w = JitWindow::new(3);
        for _ in 0..3 {
            w.take(start).unwrap();
        }
        assert_eq!(w.take(start), Err(start + JIT_WINDOW));
        let later = start + Duration::from_secs(59);
        assert_eq!(w.take(later), Err(start + JIT_WINDOW));
        for _ in 0..3 {
            w.take(start + JIT_WINDOW).unwrap();
        }
        assert_eq!(
            w.take(start + JIT_WINDOW),
            Err(start + JIT_WINDOW + JIT_WINDOW)
        );
    }
}
