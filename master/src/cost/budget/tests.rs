use chrono::TimeZone;

use super::*;

fn at(tz: Tz, y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    tz.with_ymd_and_hms(y, mo, d, h, mi, 0)
        .single()
        .expect("a local time")
        .with_timezone(&Utc)
}

#[test]
fn a_day_runs_from_local_midnight_to_local_midnight() {
    let tz: Tz = "Europe/Berlin".parse().unwrap();
    let w = window(Period::Day, tz, at(tz, 2026, 12, 3, 15, 0));
    assert_eq!(utc(w.start), at(tz, 2026, 12, 3, 0, 0));
    assert_eq!(utc(w.end), at(tz, 2026, 12, 4, 0, 0));
    assert_eq!(w.end - w.start, 24 * 3_600_000);
}

#[test]
fn the_day_of_a_clock_change_is_23_or_25_hours() {
    let tz: Tz = "Europe/Berlin".parse().unwrap();
    let spring = window(Period::Day, tz, at(tz, 2026, 3, 29, 12, 0));
    assert_eq!(spring.end - spring.start, 23 * 3_600_000);
    let autumn = window(Period::Day, tz, at(tz, 2026, 10, 25, 12, 0));
    assert_eq!(autumn.end - autumn.start, 25 * 3_600_000);
}

#[test]
fn a_month_starts_on_its_first_local_day() {
    let tz: Tz = "America/New_York".parse().unwrap();
    let w = window(Period::Month, tz, at(tz, 2026, 2, 14, 23, 59));
    assert_eq!(utc(w.start), at(tz, 2026, 2, 1, 0, 0));
    assert_eq!(utc(w.end), at(tz, 2026, 3, 1, 0, 0));
    let dec = window(Period::Month, Tz::UTC, at(Tz::UTC, 2026, 12, 31, 23, 0));
    assert_eq!(utc(dec.end), at(Tz::UTC, 2027, 1, 1, 0, 0));
}

#[test]
fn levels_and_the_message_a_waiting_build_shows() {
    assert_eq!(Level::of(31.0, 40.0, 0.8), Level::Ok);
    assert_eq!(Level::of(32.0, 40.0, 0.8), Level::Warning);
    assert_eq!(Level::of(40.0, 40.0, 0.8), Level::Reached);
    let s = BudgetStatus {
        scope: Scope::Global,
        period: Period::Day,
        spent: 40.123,
        limit: 40.0,
        level: Level::Reached,
        currency: "USD".into(),
        resets_at: 0,
    };
    assert_eq!(s.to_string(), "budget reached: 40.12 of 40.00 USD today");
    let pool = BudgetStatus {
        scope: Scope::Pool("linux".into()),
        period: Period::Month,
        ..s
    };
    assert_eq!(
        pool.to_string(),
        "budget reached: 40.12 of 40.00 USD this month (pool linux)"
    );
}
