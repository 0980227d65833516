//! The janitor's background loop: a pass at start, then every
//! `retention.interval` (read again after each pass, so a reload applies).

use std::sync::Arc;

use burst_common::error_chain::Chain;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::Janitor;
use crate::config::LiveConfig;

pub fn spawn(
    janitor: Arc<Janitor>,
    config: LiveConfig,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if config.get().retention.enabled() {
                match janitor.sweep(false).await {
                    Ok(report) if !report.builds.is_empty() => tracing::info!(
                        builds = report.builds.len(),
                        bytes = report.bytes,
                        "retention: deleted finished builds and their logs"
                    ),
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %Chain(&e), "retention pass failed; trying again at the next one")
                    }
                }
            } else {
                // Caches go by their own rules, with or without retention.
                janitor.sweep_caches().await;
            }
            let interval = config.get().retention.interval();
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    })
}
