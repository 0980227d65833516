//! Turns build state changes into outbox rows: every tick, each watched
//! build whose state differs from the one last queued gets one row per
//! reporter of its source. Reading the store (not the scheduler's events)
//! keeps reporters off the scheduler's path and catches up after a restart.

use burst_common::error_chain::Chain;

use super::deliver::Reporters;
use crate::model::now_millis;

impl Reporters {
    pub(super) async fn watch(&self) {
        let watched = match self.store.watched_builds().await {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(error = %Chain(&e), "failed to list the builds reporters watch");
                return;
            }
        };
        for w in watched {
            let build = match self.store.get_build(w.build_id).await {
                Ok(Some(b)) => b,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(build = w.build_id, error = %Chain(&e), "failed to read a watched build");
                    continue;
                }
            };
            if w.last_state == Some(build.state) {
                continue;
            }
            let names: Vec<String> = self
                .config
                .reporters
                .iter()
                .filter(|r| r.sources.contains(&w.source))
                .map(|r| r.name.clone())
                .collect();
            if let Err(e) = self
                .store
                .enqueue_reports(build.id, build.state, &names, now_millis())
                .await
            {
                tracing::warn!(build = build.id, error = %Chain(&e), "failed to queue a build's reports");
            }
        }
    }
}
