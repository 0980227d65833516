//! The master will not run on its database (corrupt, read-only, too new),
//! but before it exits it terminates every worker its providers list under
//! its id, so a previous run's orphans are not left running.

use std::path::Path;

use burst_common::error_chain::Chain;
use futures::future::join_all;

use crate::config::Config;

pub(super) async fn reap_listed(config: &Config, master_id: &str, state_dir: &Path) {
    let advertise_url = config.master.advertise_url();
    let pools = match super::run::pool_specs(
        config,
        master_id,
        state_dir,
        &advertise_url,
        config.master.grpc_listen,
    ) {
        Ok(pools) => pools,
        Err(e) => {
            tracing::error!(error = %Chain(e.as_ref()), "failed to set up the pools; workers of a previous run are not reaped");
            return;
        }
    };
    let mut jobs = Vec::new();
    for pool in &pools {
        let listed = match pool.provider.list().await {
            Ok(listed) => listed,
            Err(e) => {
                tracing::error!(pool = %pool.name, error = %Chain(&e), "failed to list workers; orphans may remain");
                continue;
            }
        };
        for target in listed {
            let provider = pool.provider.clone();
            let pool = pool.name.clone();
            jobs.push(async move {
                let result = provider
                    .terminate(&target.worker_id, &target.provider_id)
                    .await;
                (pool, target.worker_id, result)
            });
        }
    }
    for (pool, worker, result) in join_all(jobs).await {
        match result {
            Ok(()) => {
                tracing::warn!(%pool, %worker, master = master_id, "reaped at start: orphan from a previous run terminated")
            }
            Err(e) => {
                tracing::error!(%pool, %worker, error = %Chain(&e), "failed to terminate orphan")
            }
        }
    }
}
