//! How times, durations and money read on the pages.

use std::time::{Duration, UNIX_EPOCH};

use crate::model::Millis;

/// `2026-12-01 15:04:05Z` (UTC, to the second).
pub fn time(ms: Millis) -> String {
    let Ok(ms) = u64::try_from(ms) else {
        return "-".to_owned();
    };
    let t = UNIX_EPOCH + Duration::from_millis(ms);
    humantime::format_rfc3339_seconds(t)
        .to_string()
        .replacen('T', " ", 1)
}

/// `1h 2m 3s`, to the second; under a second, in milliseconds.
pub fn duration_ms(ms: u64) -> String {
    if ms < 1000 {
        return format!("{ms} ms");
    }
    humantime::format_duration(Duration::from_secs(ms / 1000)).to_string()
}

/// From `from` to `to` (or `now` while it runs).
pub fn span(from: Option<Millis>, to: Option<Millis>, now: Millis) -> String {
    match from {
        Some(from) => duration_ms(u64::try_from(to.unwrap_or(now) - from).unwrap_or(0)),
        None => "-".to_owned(),
    }
}

/// USD with cents, or more digits under a cent.
pub fn money(usd: f64) -> String {
    if usd > 0.0 && usd < 0.01 {
        format!("${usd:.4}")
    } else {
        format!("${usd:.2}")
    }
}

/// A size for people: `1.2 MiB`.
pub fn bytes(n: u64) -> String {
    bytesize::ByteSize::b(n).display().iec().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_durations_and_money_read_well() {
        assert_eq!(time(0), "1970-01-01 00:00:00Z");
        assert_eq!(time(-5), "-");
        assert_eq!(duration_ms(250), "250 ms");
        assert_eq!(duration_ms(3_723_400), "1h 2m 3s");
        assert_eq!(span(Some(1000), Some(3000), 0), "2s");
        assert_eq!(span(Some(1000), None, 61_000), "1m");
        assert_eq!(span(None, None, 5), "-");
        assert_eq!(money(0.1234), "$0.12");
        assert_eq!(money(0.0012), "$0.0012");
    }
}
