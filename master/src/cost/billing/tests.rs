use std::time::Duration;

use super::*;

fn row(
    provider: &str,
    details: serde_json::Value,
    launched: Millis,
    ended: Option<Millis>,
) -> Instance {
    let mut r = crate::cost::fixtures::row("w", "p", None, (launched, None, ended));
    r.provider = provider.into();
    r.details = details;
    r
}

#[test]
fn billed_time_is_the_minimum_or_whole_increments() {
    let ec2 = Billing::EC2_LINUX;
    assert_eq!(ec2.billed_millis(0), 60_000);
    assert_eq!(ec2.billed_millis(10_000), 60_000);
    assert_eq!(ec2.billed_millis(61_001), 62_000);
    let hourly = Billing {
        minimum: Duration::from_secs(3600),
        increment: Duration::from_secs(3600),
    };
    assert_eq!(hourly.billed_millis(3_600_001), 7_200_000);
    assert_eq!(Billing::PER_SECOND.billed_millis(1_500), 2_000);
    assert_eq!(Billing::PER_SECOND.billed_millis(-5), 0);
}

#[test]
fn paid_until_is_where_the_billed_time_runs_out() {
    let hourly = Billing {
        minimum: Duration::ZERO,
        increment: Duration::from_secs(3600),
    };
    assert_eq!(hourly.paid_until(1_000, 1_000 + 600_000), 1_000 + 3_600_000);
    assert_eq!(Billing::EC2_LINUX.paid_until(0, 20_000), 60_000);
}

#[test]
fn a_recorded_price_and_rule_are_read_back_and_a_providers_price_is_kept() {
    let mut r = row("docker", serde_json::Value::Null, 0, None);
    Priced::record(&mut r, Some(0.36), Billing::PER_SECOND);
    let p = Priced::of(&r).expect("priced");
    assert_eq!(p.price_per_hour, 0.36);
    assert_eq!(p.billing, Billing::PER_SECOND);

    let mut ec2 = row(
        "ec2",
        serde_json::json!({ "price_per_hour": 0.10 }),
        0,
        None,
    );
    Priced::record(&mut ec2, Some(0.99), Billing::EC2_LINUX);
    assert_eq!(Priced::of(&ec2).unwrap().price_per_hour, 0.10);

    let mut unpriced = row("local", serde_json::Value::Null, 0, None);
    Priced::record(&mut unpriced, None, Billing::PER_SECOND);
    assert_eq!(
        unpriced.details,
        serde_json::Value::Null,
        "nothing to record"
    );
}

#[test]
fn rows_without_a_rule_default_by_provider_and_without_a_price_cost_nothing() {
    let old = row(
        "ec2",
        serde_json::json!({ "price_per_hour": 0.36 }),
        0,
        Some(10_000),
    );
    let p = Priced::of(&old).unwrap();
    assert_eq!(p.billing, Billing::EC2_LINUX);
    // 10 s used, 60 s billed at $0.36/h.
    assert!((p.cost(&old, 0) - 0.006).abs() < 1e-12);
    assert!(Priced::of(&row("local", serde_json::Value::Null, 0, None)).is_none());
}

#[test]
fn a_live_row_counts_at_least_its_minimum_and_windows_split_the_cost() {
    let r = row(
        "ec2",
        serde_json::json!({ "price_per_hour": 3.6 }),
        1_000,
        None,
    );
    let p = Priced::of(&r).unwrap();
    // 5 s into its life it is already billed 60 s: $0.06.
    assert!((p.cost(&r, 6_000) - 0.06).abs() < 1e-12);
    // Of those 60 s, 30 s fall before 31 000 and 30 s after.
    assert!((p.cost_within(&r, 6_000, 0, 31_000) - 0.03).abs() < 1e-12);
    assert!((p.cost_within(&r, 6_000, 31_000, 100_000) - 0.03).abs() < 1e-12);
    assert_eq!(p.cost_within(&r, 6_000, 100_000, 200_000), 0.0);
}
