use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use super::Teardown;
use crate::config::load_str_with_secret_env;
use crate::cost::Billing;

fn load(pool: &str, top: &str) -> Result<crate::config::Config, Vec<String>> {
    let text = format!(
        "{top}[pools.local]\nprovider = \"local\"\nmax_workers = 4\n{pool}\n[[builders]]\n\
         name = \"b\"\nsteps = [{{ name = \"s\", run = \"true\" }}]\n"
    );
    load_str_with_secret_env(&text, Path::new("t.toml"), &BTreeMap::new(), &|_| None)
        .map_err(|e| e.problems().iter().map(ToString::to_string).collect())
}

#[test]
fn cost_settings_are_read_with_their_defaults() {
    let plain = load("", "").unwrap();
    let pool = &plain.pools["local"];
    assert_eq!(pool.price_per_hour, None);
    assert_eq!(pool.billing_rule(), Billing::PER_SECOND);
    assert_eq!(pool.teardown, Teardown::Idle);
    assert!(!pool.has_spend_limits());
    assert_eq!(plain.budget.currency, "USD");
    assert_eq!(plain.budget.warn_at, 0.8);

    let config = load(
        "price_per_hour = 0.25\nteardown = \"billing-aware\"\nmax_spend_rate = 2.0\n\
         billing = { minimum = \"60s\", increment = \"1h\" }\nbudget = { daily = 5.0 }\n",
        "[budget]\ndaily = 40.0\nmonthly = 800.0\ntimezone = \"Europe/Berlin\"\ncurrency = \"EUR\"\n",
    )
    .unwrap();
    let pool = &config.pools["local"];
    assert_eq!(pool.price_per_hour, Some(0.25));
    assert_eq!(pool.teardown, Teardown::BillingAware);
    assert_eq!(
        pool.billing_rule(),
        Billing {
            minimum: Duration::from_secs(60),
            increment: Duration::from_secs(3600)
        }
    );
    assert_eq!(pool.budget.daily, Some(5.0));
    assert!(pool.has_spend_limits());
    assert_eq!(config.budget.daily, Some(40.0));
    assert_eq!(config.budget.tz(), chrono_tz::Europe::Berlin);
}

#[test]
fn broken_cost_settings_name_file_line_and_key() {
    let got = load(
        "price_per_hour = -1.0\nmax_spend_rate = 0.0\nbilling = { increment = \"0s\" }\n\
         budget = { daily = -3.0 }\n",
        "[budget]\nmonthly = 0.0\ntimezone = \"Mars/Olympus\"\nwarn_at = 1.5\ncurrency = \"US Dollar\"\n",
    )
    .unwrap_err();
    for want in [
        "t.toml:2: budget.monthly: must be a number more than 0 (got 0)",
        "t.toml:3: budget.timezone: unknown time zone \"Mars/Olympus\"",
        "t.toml:4: budget.warn_at: must be a share between 0 and 1",
        "t.toml:5: budget.currency: must be a short code",
        "t.toml:9: pools.local.price_per_hour: must be a number at least 0 (got -1)",
        "t.toml:10: pools.local.max_spend_rate: must be a number more than 0 (got 0)",
        "t.toml:11: pools.local.billing.increment: must be more than 0",
        "t.toml:12: pools.local.budget.daily: must be a number more than 0 (got -3)",
    ] {
        assert!(
            got.iter().any(|g| g.starts_with(want)),
            "missing {want:?} in {got:#?}"
        );
    }
    assert_eq!(got.len(), 8, "{got:#?}");
}

#[test]
fn unknown_keys_and_teardown_values_name_their_line() {
    let got = load("budget = { dayly = 3.0 }\n", "").unwrap_err();
    assert!(
        got.iter()
            .any(|g| g.starts_with("t.toml:4") && g.contains("dayly")),
        "{got:#?}"
    );
    let got = load("teardown = \"never\"\n", "").unwrap_err();
    assert!(
        got.iter()
            .any(|g| g.starts_with("t.toml:4") && g.contains("never")),
        "{got:#?}"
    );
}
