//! Budget windows and levels: the day and the month a spend counts in, in
//! the budget's time zone, and what a spend is against its limit.

use std::fmt;

use chrono::{DateTime, Datelike, Days, LocalResult, Months, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;

use crate::model::Millis;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Period {
    Day,
    Month,
}

impl Period {
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Month => "month",
        }
    }

    /// How a message names the window: "today", "this month".
    pub fn current(self) -> &'static str {
        match self {
            Period::Day => "today",
            Period::Month => "this month",
        }
    }
}

/// `[start, end)` in epoch milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: Millis,
    pub end: Millis,
}

/// The local midnight that starts `date` in `tz` (the first instant of the
/// day when midnight itself is skipped by a clock change).
fn day_start(tz: Tz, date: NaiveDate) -> Millis {
    let midnight = date.and_hms_opt(0, 0, 0).unwrap_or_default();
    match tz.from_local_datetime(&midnight) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => t.timestamp_millis(),
        // A gap at midnight: the day starts when the clock resumes.
        LocalResult::None => (1..=180)
            .find_map(|m| {
                tz.from_local_datetime(&(midnight + chrono::Duration::minutes(m)))
                    .earliest()
            })
            .map_or_else(
                || Utc.from_utc_datetime(&midnight).timestamp_millis(),
                |t| t.timestamp_millis(),
            ),
    }
}

/// The day or month that holds `at`, in `tz`.
pub fn window(period: Period, tz: Tz, at: DateTime<Utc>) -> Window {
    let local = at.with_timezone(&tz).date_naive();
    let (first, next) = match period {
        Period::Day => (local, local.checked_add_days(Days::new(1))),
        Period::Month => {
            let first = local.with_day(1).unwrap_or(local);
            (first, first.checked_add_months(Months::new(1)))
        }
    };
    let start = day_start(tz, first);
    let end = next.map_or(Millis::MAX, |n| day_start(tz, n));
    Window { start, end }
}

/// The instant as chrono sees it, for windows of epoch milliseconds.
pub fn utc(millis: Millis) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(millis).unwrap_or_default()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Ok,
    /// At or over the warning share (80 % by default).
    Warning,
    /// At or over the limit: nothing new is launched.
    Reached,
}

impl Level {
    pub fn of(spent: f64, limit: f64, warn_at: f64) -> Level {
        if spent >= limit {
            Level::Reached
        } else if spent >= limit * warn_at {
            Level::Warning
        } else {
            Level::Ok
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Warning => "warning",
            Level::Reached => "reached",
        }
    }
}

/// Whose budget: the master's, or one pool's.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    Global,
    Pool(String),
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Global => f.write_str("global"),
            Scope::Pool(p) => write!(f, "pool {p}"),
        }
    }
}

/// One budget against its spend.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetStatus {
    pub scope: Scope,
    pub period: Period,
    pub spent: f64,
    pub limit: f64,
    pub level: Level,
    pub currency: String,
    /// When the window ends and the spend starts again from zero.
    pub resets_at: Millis,
}

impl fmt::Display for BudgetStatus {
    /// "budget reached: 40.12 of 40.00 USD today", with the pool named for a
    /// pool's budget.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.level {
            Level::Reached => "budget reached",
            Level::Warning => "budget nearly reached",
            Level::Ok => "budget",
        };
        write!(
            f,
            "{what}: {:.2} of {:.2} {} {}",
            self.spent,
            self.limit,
            self.currency,
            self.period.current()
        )?;
        if let Scope::Pool(p) = &self.scope {
            write!(f, " (pool {p})")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
