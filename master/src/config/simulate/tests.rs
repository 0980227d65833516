use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use super::*;
use crate::config::load_str;

const POOLS: &str = r#"
[pools.linux]
provider = "local"
labels = ["linux"]
"#;

fn load(extra: &str) -> Result<Config, String> {
    let text = format!("{POOLS}{extra}");
    load_str(&text, Path::new("sim.toml"), &BTreeMap::new()).map_err(|e| e.to_string())
}

#[test]
fn boot_times_are_fixed_or_a_uniform_range() {
    assert_eq!(
        "45s".parse::<BootTime>(),
        Ok(BootTime::fixed(Duration::from_secs(45)))
    );
    let range: BootTime = "30s..1m 30s".parse().unwrap();
    assert_eq!(
        (range.min, range.max),
        (Duration::from_secs(30), Duration::from_secs(90))
    );
    assert_eq!(range.to_string(), "30s..1m 30s");
    assert!("90s..30s".parse::<BootTime>().is_err());
    assert!("soon".parse::<BootTime>().is_err());
}

#[test]
fn a_simulate_table_loads() {
    let config = load(
        r#"
[simulate]
start = "2026-12-07T08:00:00+01:00"
[simulate.pools.linux]
boot = "30s..90s"
failure_rate = 0.05
price_per_hour = 0.10
"#,
    )
    .unwrap();
    let sim = &config.simulate;
    assert_eq!(
        sim.start.map(|s| s.0.to_rfc3339()).as_deref(),
        Some("2026-12-07T07:00:00+00:00")
    );
    let pool = &sim.pools["linux"];
    assert_eq!(pool.boot.max, Duration::from_secs(90));
    assert_eq!(pool.price_per_hour, Some(0.10));
}

#[test]
fn unknown_keys_and_bad_values_name_line_and_key() {
    let err = load("[simulate.pools.linux]\nboot_time = \"1m\"\n").unwrap_err();
    assert!(err.contains("sim.toml:6:"), "{err}");
    assert!(err.contains("boot_time"), "{err}");
    let err = load("[simulate.pools.linux]\nboot = \"later\"\n").unwrap_err();
    assert!(
        err.contains("sim.toml:6:") && err.contains("later"),
        "{err}"
    );
    let err = load("[simulate.pools.linux]\nfailure_rate = 1.5\n").unwrap_err();
    assert!(
        err.contains("simulate.pools.linux.failure_rate") && err.contains("below 1"),
        "{err}"
    );
    let err = load("[simulate.pools.mac]\nboot = \"1m\"\n").unwrap_err();
    assert!(err.contains("no pool \"mac\""), "{err}");
}

#[test]
fn the_example_loads() {
    let path = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/simulate.toml"
    ));
    let config = crate::config::load_file(path).unwrap();
    let pool = &config.simulate.pools["linux"];
    assert_eq!(pool.boot.to_string(), "30s..1m 30s");
    assert!(pool.price_per_hour.is_some());
    assert!(config.pools.contains_key("linux"));
}
