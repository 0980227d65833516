//! Which reporters a triggered submit's builds go to, recorded before the
//! builds are submitted. From then on the store queues every state such a
//! build is saved with in the outbox, in the same write as the build
//! (`TriggerStore::watch_submit`): no transition is skipped, however fast
//! the build, and none is queued twice.

use burst_common::error_chain::Chain;

use crate::config::Config;
use crate::model::{now_millis, NewBuild};
use crate::store::Store;

/// Watches the submits of `builds`, which `source` is about to start, for
/// the reporters of `source`. A store failure is logged: reporting never
/// fails a build.
pub async fn watch_submit(config: &Config, store: &dyn Store, source: &str, builds: &[NewBuild]) {
    let reporters: Vec<String> = config
        .reporters
        .iter()
        .filter(|r| r.sources.iter().any(|s| s == source))
        .map(|r| r.name.clone())
        .collect();
    if reporters.is_empty() {
        return;
    }
    let mut submits: Vec<&str> = builds.iter().map(|b| b.submit_id.as_str()).collect();
    submits.sort_unstable();
    submits.dedup();
    for submit in submits {
        if let Err(e) = store
            .watch_submit(submit, source, &reporters, now_millis())
            .await
        {
            tracing::warn!(submit, error = %Chain(&e), "failed to record a triggered submit for its reporters");
        }
    }
}
