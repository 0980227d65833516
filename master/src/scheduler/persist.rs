//! Saving to the store. A write the store fails is never dropped: what it
//! refused is kept here, the store is marked failing (for `/readyz` and
//! submits), and the writes are tried again with backoff until they succeed.

use std::collections::BTreeMap;
use std::time::Duration;

use burst_common::backoff::Backoff;
use burst_common::error_chain::Chain;
use tokio::time::Instant;

use super::actor::Scheduler;
use crate::model::{Build, BuildId, Instance};
use crate::store::{StoreError, StoreResult};

/// Retry delays while the store fails: quick at first, so a short hiccup
/// costs little, and never more than a few seconds once it recovers.
const RETRY_MIN: Duration = Duration::from_millis(250);
const RETRY_MAX: Duration = Duration::from_secs(5);

/// What the store failed to save, newest version of each record.
pub(super) struct Unsaved {
    pub(super) builds: BTreeMap<BuildId, Build>,
    instances: BTreeMap<String, Instance>,
    backoff: Backoff,
    /// When to try again; `None` while the store works.
    pub(super) retry_at: Option<Instant>,
}

impl Default for Unsaved {
    fn default() -> Self {
        Self {
            builds: BTreeMap::new(),
            instances: BTreeMap::new(),
            backoff: Backoff::new(RETRY_MIN, RETRY_MAX),
            retry_at: None,
        }
    }
}

impl Scheduler {
    pub(super) async fn persist_worker(&mut self, worker_id: &str) {
        let Some(w) = self.state.workers.get(worker_id) else {
            return;
        };
        let row = w.ledger.clone();
        self.persist_instance(row).await;
    }

    /// Saves a ledger row, keeping it when the store fails.
    pub(super) async fn persist_instance(&mut self, row: Instance) {
        match self.store.save_instance(&row).await {
            Ok(()) => {
                self.unsaved.instances.remove(&row.worker_id);
            }
            Err(e) if e.is_fault() => {
                tracing::error!(worker = %row.worker_id, error = %Chain(&e), "failed to save ledger row; keeping it to save once the store works");
                self.store_failed(&e);
                self.unsaved.instances.insert(row.worker_id.clone(), row);
            }
            Err(e) => {
                tracing::error!(worker = %row.worker_id, error = %Chain(&e), "failed to save ledger row")
            }
        }
    }

    /// Marks the store failing and schedules a retry.
    pub(super) fn store_failed(&mut self, e: &StoreError) {
        self.health.fail(Chain(e).to_string());
        if self.unsaved.retry_at.is_none() {
            self.unsaved.retry_at = Some(Instant::now() + self.unsaved.backoff.next_delay());
        }
    }

    /// When the retry is due: probes the store and saves what it refused.
    pub(super) async fn retry_unsaved(&mut self, now: Instant) {
        if self.unsaved.retry_at.is_none_or(|at| at > now) {
            return;
        }
        match self.flush_unsaved().await {
            Ok(()) => {
                self.unsaved.retry_at = None;
                self.unsaved.backoff.reset();
                self.health.recover();
                tracing::info!("the store works again; everything it had refused is saved");
            }
            Err(e) => {
                let delay = self.unsaved.backoff.next_delay();
                tracing::warn!(
                    error = %Chain(&e),
                    builds = self.unsaved.builds.len(),
                    ledger_rows = self.unsaved.instances.len(),
                    ?delay,
                    "the store still fails; retrying"
                );
                self.health.fail(Chain(&e).to_string());
                self.unsaved.retry_at = Some(now + delay);
            }
        }
    }

    /// Saves each kept record in its newest version (the live one when the
    /// scheduler still holds it), stopping at the first fault.
    async fn flush_unsaved(&mut self) -> StoreResult<()> {
        self.store.probe().await?;
        while let Some((id, kept)) = self.unsaved.builds.pop_first() {
            let build = self.state.builds.get(&id).unwrap_or(&kept);
            match self.store.save_build(build).await {
                Ok(()) => {
                    if build.state.is_finished() {
                        self.logs.seal_build(id);
                    }
                    self.logs.notify(id);
                }
                Err(e) if e.is_fault() => {
                    self.unsaved.builds.insert(id, kept);
                    return Err(e);
                }
                Err(e) => tracing::error!(build = id, error = %Chain(&e), "failed to save build"),
            }
        }
        while let Some((id, kept)) = self.unsaved.instances.pop_first() {
            let row = self.state.workers.get(&id).map_or(&kept, |w| &w.ledger);
            match self.store.save_instance(row).await {
                Ok(()) => {}
                Err(e) if e.is_fault() => {
                    self.unsaved.instances.insert(id, kept);
                    return Err(e);
                }
                Err(e) => {
                    tracing::error!(worker = %id, error = %Chain(&e), "failed to save ledger row")
                }
            }
        }
        Ok(())
    }

    /// At shutdown: one last try, and a loud list of what is lost.
    pub(super) async fn flush_at_exit(&mut self) {
        self.commit().await;
        if self.unsaved.builds.is_empty() && self.unsaved.instances.is_empty() {
            return;
        }
        if let Err(e) = self.flush_unsaved().await {
            let builds: Vec<_> = self.unsaved.builds.keys().collect();
            let rows: Vec<_> = self.unsaved.instances.keys().collect();
            tracing::error!(error = %Chain(&e), ?builds, ledger_rows = ?rows, "stopping with state the store refused; it is lost");
        }
    }
}
