//! The first report of a triggered build: `queued`, put in the outbox the
//! moment the build is submitted, so even a build that finishes before the
//! watcher's next look shows `pending` first.

use burst_common::error_chain::Chain;

use crate::config::Config;
use crate::model::{now_millis, BuildId, BuildState};
use crate::store::Store;

/// Watches `builds`, which `source` started, and queues their `queued`
/// reports. A store failure is logged: reporting never fails a build.
pub async fn watch_new(config: &Config, store: &dyn Store, source: &str, builds: &[BuildId]) {
    let reporters: Vec<String> = config
        .reporters
        .iter()
        .filter(|r| r.sources.iter().any(|s| s == source))
        .map(|r| r.name.clone())
        .collect();
    // Queued first, watched second: the watcher's first look can then only
    // add a later state (or the same one, which is not queued twice).
    if !reporters.is_empty() {
        for id in builds {
            if let Err(e) = store
                .enqueue_reports(*id, BuildState::Queued, &reporters, now_millis())
                .await
            {
                tracing::warn!(build = id, error = %Chain(&e), "failed to queue a build's first report");
            }
        }
    }
    if let Err(e) = store.watch_builds(source, builds).await {
        tracing::warn!(builds = ?builds, error = %Chain(&e), "failed to record triggered builds for their reporters");
    }
}
