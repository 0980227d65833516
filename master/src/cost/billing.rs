//! A worker's price and billing rule, as recorded in its ledger row at
//! launch, and what its lifetime is billed.

use std::time::Duration;

use crate::model::{Instance, Millis};

pub const MILLIS_PER_HOUR: f64 = 3_600_000.0;

/// How a provider bills a running instance: at least `minimum`, then in
/// steps of `increment` (EC2 Linux: per second after the first 60 s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Billing {
    pub minimum: Duration,
    pub increment: Duration,
}

impl Billing {
    /// Per second, no minimum: what a machine the team already owns costs.
    pub const PER_SECOND: Billing = Billing {
        minimum: Duration::ZERO,
        increment: Duration::from_secs(1),
    };

    /// EC2 Linux on-demand and spot: per second, 60 s minimum.
    pub const EC2_LINUX: Billing = Billing {
        minimum: Duration::from_secs(60),
        increment: Duration::from_secs(1),
    };

    /// The time billed for `used` of running: the minimum, else `used`
    /// rounded up to whole increments.
    pub fn billed_millis(&self, used: Millis) -> Millis {
        let used = used.max(0);
        let minimum = self.minimum.as_millis() as Millis;
        let step = (self.increment.as_millis() as Millis).max(1);
        let rounded = (used + step - 1) / step * step;
        rounded.max(minimum)
    }

    /// When what was paid for by `now` runs out, for an instance launched at
    /// `launched`: keeping it until then costs nothing more.
    pub fn paid_until(&self, launched: Millis, now: Millis) -> Millis {
        launched + self.billed_millis(now - launched)
    }
}

/// A ledger row's price and rule, as the launch recorded them
/// (`price_per_hour`, `billing_minimum_ms`, `billing_increment_ms` in its
/// details). A row without them costs nothing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Priced {
    pub price_per_hour: f64,
    pub billing: Billing,
}

impl Priced {
    pub fn of(row: &Instance) -> Option<Priced> {
        let details = &row.details;
        let price_per_hour = details.get("price_per_hour")?.as_f64()?;
        let millis = |key: &str, default: Duration| {
            details
                .get(key)
                .and_then(|v| v.as_u64())
                .map(Duration::from_millis)
                .unwrap_or(default)
        };
        // Rows from before billing rules were recorded: EC2 wrote them.
        let default = if row.provider == "ec2" {
            Billing::EC2_LINUX
        } else {
            Billing::PER_SECOND
        };
        Some(Priced {
            price_per_hour,
            billing: Billing {
                minimum: millis("billing_minimum_ms", default.minimum),
                increment: millis("billing_increment_ms", default.increment),
            },
        })
    }

    /// Writes the price and rule into a row's details, keeping a price the
    /// provider already recorded (EC2's, a host's). A row with neither that
    /// nor a pool price records nothing: it costs nothing.
    pub fn record(row: &mut Instance, pool_price: Option<f64>, billing: Billing) {
        let Some(price) = row
            .details
            .get("price_per_hour")
            .and_then(|p| p.as_f64())
            .or(pool_price)
        else {
            return;
        };
        if !row.details.is_object() {
            row.details = serde_json::Value::Object(Default::default());
        }
        let Some(details) = row.details.as_object_mut() else {
            return;
        };
        details
            .entry("price_per_hour")
            .or_insert_with(|| price.into());
        details.insert(
            "billing_minimum_ms".into(),
            (billing.minimum.as_millis() as u64).into(),
        );
        details.insert(
            "billing_increment_ms".into(),
            (billing.increment.as_millis() as u64).into(),
        );
    }

    pub fn dollars(&self, millis: Millis) -> f64 {
        self.price_per_hour * millis.max(0) as f64 / MILLIS_PER_HOUR
    }

    /// The billed span of a row: from launch for the billed time of its
    /// life so far (to `terminated_at`, or to `now` while it runs). A live
    /// row is counted at least at its minimum: what it will cost.
    pub fn billed_span(&self, row: &Instance, now: Millis) -> (Millis, Millis) {
        let end = row.terminated_at.unwrap_or(now).max(row.launched_at);
        let billed = self.billing.billed_millis(end - row.launched_at);
        (row.launched_at, row.launched_at + billed)
    }

    /// The row's cost so far (all of it once terminated).
    pub fn cost(&self, row: &Instance, now: Millis) -> f64 {
        let (from, to) = self.billed_span(row, now);
        self.dollars(to - from)
    }

    /// The part of the row's cost so far that falls in `[start, end)`.
    pub fn cost_within(&self, row: &Instance, now: Millis, start: Millis, end: Millis) -> f64 {
        let (from, to) = self.billed_span(row, now);
        self.dollars(to.min(end) - from.max(start))
    }
}

#[cfg(test)]
mod tests;
