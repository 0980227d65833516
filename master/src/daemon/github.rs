//! Wiring of the GitHub runner manager, when the config has `[github]`:
//! its API client and credentials, read at start (the App key is checked
//! by validation too, so a broken one stops the master before it serves).

use std::sync::Arc;

use anyhow::Context;

use crate::config::LiveConfig;
use crate::github::{Credentials, GithubApi, RunnerManager};
use crate::metrics::Metrics;
use crate::scheduler::SchedulerHandle;
use crate::store::Store;

pub(super) fn runner_manager(
    live: &LiveConfig,
    store: Arc<dyn Store>,
    scheduler: SchedulerHandle,
    metrics: Arc<Metrics>,
) -> anyhow::Result<Option<Arc<RunnerManager>>> {
    let config = live.get();
    let Some(g) = &config.github else {
        return Ok(None);
    };
    let credentials = Credentials::from_config(g, &config.secret_values)
        .map_err(anyhow::Error::msg)
        .context("failed to set up the GitHub runner manager ([github])")?;
    let api = Arc::new(GithubApi::new(g.api(), credentials, metrics.clone()));
    tracing::info!(api = g.api(), pools = ?g.runners.iter().map(|e| &e.pool).collect::<Vec<_>>(), "GitHub runner manager on");
    Ok(Some(Arc::new(RunnerManager::new(
        live.clone(),
        api,
        scheduler,
        store,
        metrics,
    ))))
}
