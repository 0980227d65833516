use std::collections::BTreeMap;
use std::path::Path;

use super::*;
use crate::config::load_str;

fn config(extra: &str) -> Config {
    let text = format!("[pools.linux]\nprovider = \"local\"\nlabels = [\"linux\"]\n{extra}");
    load_str(&text, Path::new("sim.toml"), &BTreeMap::new()).unwrap()
}

fn trace(text: &str) -> Trace {
    Trace::parse(text, Path::new("t.csv")).unwrap()
}

const OPTS: Options = Options {
    seed: 1,
    horizon: None,
};

#[test]
fn a_trace_in_seconds_starts_on_the_default_monday_and_lasts_whole_days() {
    let s = setup(
        &config(""),
        &trace("submit,labels,duration\n90000,linux,60\n"),
        Path::new("t.csv"),
        &Policy::AsConfigured,
        &OPTS,
    )
    .unwrap();
    assert_eq!(s.start, default_start());
    assert_eq!(s.start.format("%A").to_string(), "Monday");
    assert_eq!(s.horizon, Duration::from_secs(2 * 24 * 3600));
    assert_eq!(s.pools[0].0, "linux");
}

#[test]
fn an_rfc3339_trace_starts_at_midnight_of_its_first_day_unless_the_config_says() {
    let t = trace("submit,labels,duration\n2026-12-02T09:30:00Z,linux,60\n");
    let s = setup(
        &config(""),
        &t,
        Path::new("t.csv"),
        &Policy::AsConfigured,
        &OPTS,
    )
    .unwrap();
    assert_eq!(s.start.to_rfc3339(), "2026-12-02T00:00:00+00:00");
    assert_eq!(s.jobs[0].at, Duration::from_secs(9 * 3600 + 1800));
    let fixed = config("[simulate]\nstart = \"2026-12-02T09:00:00Z\"\n");
    let s = setup(&fixed, &t, Path::new("t.csv"), &Policy::AsConfigured, &OPTS).unwrap();
    assert_eq!(s.jobs[0].at, Duration::from_secs(1800));
    let opts = Options {
        seed: 1,
        horizon: Some(Duration::from_secs(60)),
    };
    let s = setup(&fixed, &t, Path::new("t.csv"), &Policy::AsConfigured, &opts).unwrap();
    assert_eq!(s.horizon, Duration::from_secs(60));
}

#[test]
fn every_policy_replays_the_same_trace() {
    let c = config("[simulate.pools.linux]\nboot = \"10s\"\n");
    let t = trace("submit,labels,duration\n0,linux,60\n30,linux,60\n");
    let out = run(
        &c,
        &t,
        Path::new("t.csv"),
        &crate::simulate::anchors(),
        &OPTS,
    )
    .unwrap();
    assert_eq!(out.len(), 6);
    assert!(out
        .iter()
        .all(|o| o.report.builds == 2 && o.report.unfinished == 0));
    // No price in the file: a note, and no cost.
    assert!(out[0].report.notes[0].contains("no price_per_hour"));
    assert_eq!(out[0].report.total.cost, 0.0);
}
