use super::*;

const H: Millis = 3_600_000;

fn row(pool: &str, launched: Millis, ended: Millis, price: f64) -> Instance {
    let worker = format!("{pool}-{launched}");
    crate::cost::fixtures::row(&worker, pool, Some(price), (launched, None, Some(ended)))
}

fn day(start: Millis) -> Window {
    Window {
        start,
        end: start + 24 * H,
    }
}

#[test]
fn an_ended_worker_counts_in_the_days_it_ran() {
    let mut s = Spend::default();
    // 22:00 to 02:00 UTC at $1/h: 2 h on each day.
    s.record_ended(&row("p", 22 * H, 26 * H, 1.0), None, Tz::UTC, 30 * H);
    assert!((s.ended_within(Some("p"), day(0)) - 2.0).abs() < 1e-9);
    assert!((s.ended_within(Some("p"), day(24 * H)) - 2.0).abs() < 1e-9);
    assert_eq!(s.ended_within(Some("q"), day(0)), 0.0);
    s.record_ended(&row("q", H, 2 * H, 3.0), None, Tz::UTC, 30 * H);
    assert!((s.ended_within(None, day(0)) - 5.0).abs() < 1e-9);
    // A row without a price costs nothing.
    let mut free = row("p", 0, H, 0.0);
    free.details = serde_json::Value::Null;
    s.record_ended(&free, None, Tz::UTC, 30 * H);
    assert!((s.ended_within(Some("p"), day(0)) - 2.0).abs() < 1e-9);
}

#[test]
fn days_before_the_month_are_forgotten() {
    let mut s = Spend::default();
    s.record_ended(&row("p", H, 2 * H, 1.0), None, Tz::UTC, 30 * H);
    s.record_ended(&row("p", 25 * H, 26 * H, 1.0), None, Tz::UTC, 30 * H);
    s.prune(24 * H);
    assert_eq!(s.ended_within(Some("p"), day(0)), 0.0);
    assert!((s.ended_within(Some("p"), day(24 * H)) - 1.0).abs() < 1e-9);
}
