//! What workers cost and what a team may spend: a pool's `price_per_hour`,
//! `billing` rule, `teardown`, `budget` and `max_spend_rate`, and the
//! master's `[budget]`. The scheduler's side is `scheduler/spend.rs`; the
//! arithmetic is `crate::cost`.

use std::str::FromStr;
use std::time::Duration;

use burst_providers::ProviderKind;
use chrono_tz::Tz;
use serde::Deserialize;

use super::locate::KeyPath;
use super::pool::PoolConfig;
use super::schema::Config;
use super::validate::Issue;
use crate::cost::Billing;

/// When an idle worker past `idle_timeout` goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum Teardown {
    /// At `idle_timeout`.
    #[default]
    #[serde(rename = "idle")]
    Idle,
    /// At `idle_timeout`, or later when the billing rule has already paid
    /// for the time until then (the minimum, or the increment under way):
    /// keeping it costs nothing and a build may still come.
    #[serde(rename = "billing-aware")]
    BillingAware,
}

/// `billing = { minimum = "60s", increment = "1s" }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BillingConfig {
    #[serde(default, with = "humantime_serde")]
    pub minimum: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub increment: Option<Duration>,
}

/// `budget = { daily = 40.0, monthly = 800.0 }`, in the price's currency.
#[derive(Debug, Clone, Copy, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolBudget {
    pub daily: Option<f64>,
    pub monthly: Option<f64>,
}

/// `[budget]`: the master's own limits, over every pool, and how budgets
/// are counted.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BudgetConfig {
    pub daily: Option<f64>,
    pub monthly: Option<f64>,
    /// USD (or `currency`) per hour of every worker in flight at once.
    pub max_spend_rate: Option<f64>,
    /// Shown beside amounts; prices are taken to be in it.
    pub currency: String,
    /// Days and months start at midnight here (IANA name).
    pub timezone: String,
    /// The share of a budget at which a warning is raised.
    pub warn_at: f64,
}

impl Default for BudgetConfig {
    fn default() -> Self {
        Self {
            daily: None,
            monthly: None,
            max_spend_rate: None,
            currency: "USD".to_owned(),
            timezone: "UTC".to_owned(),
            warn_at: 0.8,
        }
    }
}

impl BudgetConfig {
    /// The zone days are counted in (UTC if it does not parse: validation
    /// refuses such a file).
    pub fn tz(&self) -> Tz {
        Tz::from_str(&self.timezone).unwrap_or(Tz::UTC)
    }
}

impl PoolConfig {
    /// The pool's billing rule: what `billing` sets, over the provider's
    /// usual rule (EC2 Linux: per second, 60 s minimum; machines of one's
    /// own: per second).
    pub fn billing_rule(&self) -> Billing {
        let default = match self.provider.kind() {
            ProviderKind::Ec2 => Billing::EC2_LINUX,
            _ => Billing::PER_SECOND,
        };
        Billing {
            minimum: self.billing.minimum.unwrap_or(default.minimum),
            increment: self.billing.increment.unwrap_or(default.increment),
        }
    }

    /// Whether anything about this pool's spend needs tracking.
    pub fn has_spend_limits(&self) -> bool {
        self.budget.daily.is_some()
            || self.budget.monthly.is_some()
            || self.max_spend_rate.is_some()
    }
}

const DAY: Duration = Duration::from_secs(24 * 3600);

fn amount(
    push: &mut impl FnMut(KeyPath, String),
    path: KeyPath,
    value: Option<f64>,
    zero_ok: bool,
) {
    let Some(v) = value else { return };
    let ok = v.is_finite() && (v > 0.0 || (zero_ok && v == 0.0));
    if !ok {
        let least = if zero_ok { "at least 0" } else { "more than 0" };
        push(path, format!("must be a number {least} (got {v})"));
    }
}

/// Problems of a pool's cost settings.
pub(crate) fn check_pool(path: &KeyPath, pool: &PoolConfig) -> Vec<Issue> {
    let mut issues = Vec::new();
    let mut push = |path: KeyPath, message: String| issues.push(Issue { path, message });
    amount(
        &mut push,
        path.key("price_per_hour"),
        pool.price_per_hour,
        true,
    );
    amount(
        &mut push,
        path.key("max_spend_rate"),
        pool.max_spend_rate,
        false,
    );
    amount(
        &mut push,
        path.key("budget").key("daily"),
        pool.budget.daily,
        false,
    );
    amount(
        &mut push,
        path.key("budget").key("monthly"),
        pool.budget.monthly,
        false,
    );
    let billing = path.key("billing");
    if let Some(m) = pool.billing.minimum {
        if m > DAY {
            push(billing.key("minimum"), "must be at most 24h".into());
        }
    }
    if let Some(i) = pool.billing.increment {
        if i.is_zero() || i > DAY {
            push(
                billing.key("increment"),
                "must be more than 0 and at most 24h, e.g. \"1s\" or \"1h\"".into(),
            );
        }
    }
    if pool.provider.kind() == ProviderKind::Ec2 && pool.price_per_hour.is_some() {
        push(
            path.key("price_per_hour"),
            "an EC2 pool is priced per instance type: set ec2.price_per_hour, or let spot prices be read".into(),
        );
    }
    issues
}

/// Problems of `[budget]`.
pub(crate) fn check(config: &Config) -> Vec<Issue> {
    let mut issues = Vec::new();
    let b = &config.budget;
    let path = KeyPath::root().key("budget");
    let mut push = |path: KeyPath, message: String| issues.push(Issue { path, message });
    amount(&mut push, path.key("daily"), b.daily, false);
    amount(&mut push, path.key("monthly"), b.monthly, false);
    amount(
        &mut push,
        path.key("max_spend_rate"),
        b.max_spend_rate,
        false,
    );
    if Tz::from_str(&b.timezone).is_err() {
        push(
            path.key("timezone"),
            format!(
                "unknown time zone {:?} (use an IANA name such as \"Europe/Berlin\")",
                b.timezone
            ),
        );
    }
    if !(b.warn_at > 0.0 && b.warn_at < 1.0) {
        push(
            path.key("warn_at"),
            format!(
                "must be a share between 0 and 1, e.g. 0.8 (got {})",
                b.warn_at
            ),
        );
    }
    let c = &b.currency;
    if c.is_empty() || c.len() > 8 || !c.chars().all(|ch| ch.is_ascii_alphanumeric()) {
        push(
            path.key("currency"),
            format!("must be a short code such as \"USD\" (got {c:?})"),
        );
    }
    issues
}

#[cfg(test)]
mod tests;
