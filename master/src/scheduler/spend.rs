//! Spend against budgets and spend-rate caps, for `decide`: what each pool
//! may still launch, why not, and when to look again.
//!
//! A budget counts, in its window (the day or month in `[budget] timezone`),
//! the billed cost of every worker that ran in it: ended workers from the
//! ledger (`Spend::days`, seeded from the store at start and added to as
//! workers go, so a restart or a crash never resets it) and live ones at
//! their cost so far, at least their billing minimum (what they will cost).
//! A spend rate is the hourly price of the workers in flight.

use std::collections::BTreeMap;

use chrono_tz::Tz;
use tokio::time::Instant;

use super::state::State;
use super::worker::Worker;
use crate::config::PoolConfig;
use crate::cost::budget::{self, BudgetStatus, Level, Period, Scope, Window};
use crate::cost::Priced;
use crate::model::{Instance, Millis};

/// A day's worth of ended workers at most per entry; a row spanning more
/// days than this is counted only in its first ones.
const MAX_DAYS_PER_ROW: usize = 400;

#[derive(Debug, Default)]
pub struct Spend {
    /// Billed cost of ended workers, by pool and the start of the local day
    /// it was spent in.
    days: BTreeMap<(String, Millis), f64>,
    /// The level last reported of each budget, so a crossing is logged once.
    pub levels: BTreeMap<(Scope, Period), Level>,
}

impl Spend {
    /// A worker ended: its billed cost moves from live to the days it fell in.
    pub fn record_ended(&mut self, row: &Instance, priced: Option<Priced>, tz: Tz, now: Millis) {
        let Some(priced) = priced.or_else(|| Priced::of(row)) else {
            return;
        };
        let (from, to) = priced.billed_span(row, now);
        let mut day = budget::window(Period::Day, tz, budget::utc(from));
        for _ in 0..MAX_DAYS_PER_ROW {
            if day.start >= to {
                break;
            }
            let cost = priced.cost_within(row, now, day.start, day.end);
            if cost > 0.0 {
                *self.days.entry((row.pool.clone(), day.start)).or_default() += cost;
            }
            day = budget::window(Period::Day, tz, budget::utc(day.end));
        }
    }

    /// What ended workers of `pool` (all pools: None) spent in `w`.
    fn ended_within(&self, pool: Option<&str>, w: Window) -> f64 {
        self.days
            .iter()
            .filter(|((p, day), _)| *day >= w.start && *day < w.end && pool.is_none_or(|x| x == p))
            .map(|(_, c)| c)
            .sum()
    }

    /// Forgets days before `before` (the start of the month): no budget
    /// window reaches them any more.
    pub fn prune(&mut self, before: Millis) {
        self.days.retain(|(_, day), _| *day >= before);
    }
}

/// A worker's price: what its ledger row recorded, or its pool's while the
/// launch has not returned yet.
pub fn priced(w: &Worker, cfg: &PoolConfig) -> Option<Priced> {
    Priced::of(&w.ledger).or_else(|| {
        cfg.price_per_hour.map(|price_per_hour| Priced {
            price_per_hour,
            billing: cfg.billing_rule(),
        })
    })
}

/// What `decide` may launch, computed once per pass.
#[derive(Debug, Default)]
pub struct SpendView {
    /// Per pool: why it may launch nothing now (a budget reached, a rate
    /// cap met).
    pub blocked: Vec<Option<String>>,
    /// Per pool: how many launches its own rate cap still allows.
    pub rate_room: Vec<Option<u32>>,
    /// Per pool: the hourly price a launch is counted at.
    pub launch_price: Vec<f64>,
    /// Dollars an hour left under `[budget] max_spend_rate`.
    pub global_headroom: Option<f64>,
    /// Every configured budget against its spend.
    pub statuses: Vec<BudgetStatus>,
    /// When a budget resets or the spend reaches its next level.
    pub wake_in: Option<Millis>,
}

struct Totals {
    day: f64,
    month: f64,
    /// The live workers' part of `day` and `month`.
    live_day: f64,
    live_month: f64,
    /// Dollars an hour of the workers in flight.
    rate: f64,
    /// The highest price of a live worker (what the next launch is counted
    /// at when the pool sets no price: EC2 records it per instance).
    max_price: f64,
}

/// None when no budget or rate cap is configured: nothing to hold back.
pub fn view(state: &State, now: Instant) -> Option<SpendView> {
    let global = &state.settings.budget;
    let any = global.daily.is_some()
        || global.monthly.is_some()
        || global.max_spend_rate.is_some()
        || state.pools.iter().any(|p| p.cfg.has_spend_limits());
    if !any {
        return None;
    }
    let tz = global.tz();
    let wall = state.settings.clock.at(now);
    let now_ms = wall.timestamp_millis();
    let day = budget::window(Period::Day, tz, wall);
    let month = budget::window(Period::Month, tz, wall);
    let n = state.pools.len();
    let mut totals: Vec<Totals> = state
        .pools
        .iter()
        .map(|p| Totals {
            day: state.spend.ended_within(Some(&p.name), day),
            month: state.spend.ended_within(Some(&p.name), month),
            live_day: 0.0,
            live_month: 0.0,
            rate: 0.0,
            max_price: 0.0,
        })
        .collect();
    for w in state.workers.values() {
        let Some(p) = state.pools.get(w.pool) else {
            continue;
        };
        let Some(priced) = priced(w, &p.cfg) else {
            continue;
        };
        let t = &mut totals[w.pool];
        t.live_day += priced.cost_within(&w.ledger, now_ms, day.start, day.end);
        t.live_month += priced.cost_within(&w.ledger, now_ms, month.start, month.end);
        t.rate += priced.price_per_hour;
        t.max_price = t.max_price.max(priced.price_per_hour);
    }
    let mut v = SpendView {
        blocked: vec![None; n],
        rate_room: vec![None; n],
        launch_price: state
            .pools
            .iter()
            .zip(&totals)
            .map(|(p, t)| p.cfg.price_per_hour.unwrap_or(t.max_price))
            .collect(),
        ..SpendView::default()
    };
    let wake = |v: &mut SpendView, at: Millis| {
        let ms = (at - now_ms).max(1_000);
        v.wake_in = Some(v.wake_in.map_or(ms, |w| w.min(ms)));
    };
    // Budgets: each window's spend against its limit. The master's counts
    // ended workers of every pool, removed ones too.
    let live = |f: fn(&Totals) -> f64, ended: f64| ended + totals.iter().map(f).sum::<f64>();
    let global_day = live(|t| t.live_day, state.spend.ended_within(None, day));
    let global_month = live(|t| t.live_month, state.spend.ended_within(None, month));
    let global_rate: f64 = totals.iter().map(|t| t.rate).sum();
    let check = |v: &mut SpendView,
                 scope: Scope,
                 period: Period,
                 spent: f64,
                 limit: Option<f64>,
                 rate: f64| {
        let limit = limit?;
        let window = if period == Period::Day { day } else { month };
        let level = Level::of(spent, limit, global.warn_at);
        let status = BudgetStatus {
            scope,
            period,
            spent,
            limit,
            level,
            currency: global.currency.clone(),
            resets_at: window.end,
        };
        match level {
            Level::Reached => wake(v, window.end),
            _ if rate > 0.0 => {
                let next = if level == Level::Ok {
                    limit * global.warn_at
                } else {
                    limit
                };
                let hours = (next - spent) / rate;
                wake(v, now_ms + (hours * 3_600_000.0).ceil() as Millis);
            }
            _ => {}
        }
        let reached = (level == Level::Reached).then(|| status.to_string());
        v.statuses.push(status);
        reached
    };
    let mut global_block = None;
    for (period, spent, limit) in [
        (Period::Day, global_day, global.daily),
        (Period::Month, global_month, global.monthly),
    ] {
        if let Some(why) = check(&mut v, Scope::Global, period, spent, limit, global_rate) {
            global_block.get_or_insert(why);
        }
    }
    for (i, p) in state.pools.iter().enumerate() {
        let t = &totals[i];
        let (t_day, t_month) = (t.day + t.live_day, t.month + t.live_month);
        let mut why = global_block.clone();
        for (period, spent, limit) in [
            (Period::Day, t_day, p.cfg.budget.daily),
            (Period::Month, t_month, p.cfg.budget.monthly),
        ] {
            if let Some(reached) = check(
                &mut v,
                Scope::Pool(p.name.clone()),
                period,
                spent,
                limit,
                t.rate,
            ) {
                why.get_or_insert(reached);
            }
        }
        if let Some(cap) = p.cfg.max_spend_rate {
            let price = v.launch_price[i];
            let room = if price > 0.0 {
                ((cap - t.rate) / price + 1e-9).floor().max(0.0) as u32
            } else {
                u32::MAX
            };
            v.rate_room[i] = Some(room);
            if room == 0 {
                why.get_or_insert(format!(
                    "spend rate cap reached: {:.2} of {:.2} {}/h in flight (pool {})",
                    t.rate, cap, global.currency, p.name
                ));
            }
        }
        v.blocked[i] = why;
    }
    if let Some(cap) = global.max_spend_rate {
        v.global_headroom = Some(cap - global_rate);
    }
    Some(v)
}

/// What a waiting build shows when the master-wide rate cap holds a launch.
pub fn global_rate_reason(state: &State, headroom: f64) -> String {
    let b = &state.settings.budget;
    let cap = b.max_spend_rate.unwrap_or(0.0);
    format!(
        "spend rate cap reached: {:.2} of {:.2} {}/h in flight",
        cap - headroom,
        cap,
        b.currency
    )
}

#[cfg(test)]
mod tests;
