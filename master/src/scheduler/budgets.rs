//! The acting side of budgets: levels logged once per crossing, ended
//! workers' spend recorded, and the spend of this month read back from the
//! ledger at start (so a restart never resets a budget).

use burst_common::error_chain::Chain;
use tokio::time::Instant;

use super::actor::Scheduler;
use crate::cost::budget::{self, Level, Period, Scope};
use crate::cost::Priced;
use crate::model::Instance;

impl Scheduler {
    pub(super) fn budget_level(
        &mut self,
        scope: Scope,
        period: Period,
        level: Level,
        message: &str,
    ) {
        let old = self
            .state
            .spend
            .levels
            .insert((scope.clone(), period), level);
        match level {
            Level::Reached => {
                tracing::warn!(budget = %scope, period = period.as_str(), "{message}; no new workers are launched until it resets or is raised")
            }
            Level::Warning => {
                tracing::warn!(budget = %scope, period = period.as_str(), "{message}")
            }
            Level::Ok if old.is_some() => {
                tracing::info!(budget = %scope, period = period.as_str(), "{message}: under its warning share again")
            }
            Level::Ok => {}
        }
    }

    /// A worker leaves the scheduler: what it cost joins the ended spend.
    pub(super) fn record_spend(&mut self, row: &Instance, priced: Option<Priced>) {
        let now = self.state.settings.clock.millis(Instant::now());
        let tz = self.state.settings.budget.tz();
        self.state.spend.record_ended(row, priced, tz, now);
        let month = budget::window(Period::Month, tz, budget::utc(now));
        self.state.spend.prune(month.start);
    }

    /// Reads this month's ended workers from the ledger. A store that fails
    /// here leaves budgets counting from now (logged): better than no start.
    pub(super) async fn seed_spend(&mut self) {
        let now = self.state.settings.clock.millis(Instant::now());
        let tz = self.state.settings.budget.tz();
        let month = budget::window(Period::Month, tz, budget::utc(now));
        match self.store.instances_since(month.start).await {
            Ok(rows) => {
                for row in rows.iter().filter(|r| r.terminated_at.is_some()) {
                    self.state.spend.record_ended(row, None, tz, now);
                }
                self.state.spend.prune(month.start);
            }
            Err(e) => {
                tracing::error!(error = %Chain(&e), "failed to read this month's spend from the ledger; budgets count from now")
            }
        }
    }
}
