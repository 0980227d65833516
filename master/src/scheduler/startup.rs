//! What a (re)started master does first: terminate everything a previous run
//! left behind, and take back the builds it had not finished.

use std::collections::HashSet;

use burst_common::error_chain::Chain;
use burst_providers::ListedInstance;
use futures::future::join_all;

use super::actor::Scheduler;
use super::lost::settle_interrupted_attempt;
use crate::model::{
    now_millis, AttemptState, BuildState, Instance, InstanceState, InterruptReason, REAPED_AT_START,
};

impl Scheduler {
    pub(super) async fn startup(&mut self) {
        self.reap_orphans().await;
        self.resume_builds().await;
    }

    /// Nothing from a previous run is adopted: every worker the ledger still
    /// calls live, and every worker a provider lists under this master's tag,
    /// is terminated. Its builds are requeued by `resume_builds`.
    async fn reap_orphans(&mut self) {
        let ledger = match self.store.live_instances().await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::error!(error = %Chain(&e), "failed to read the instance ledger; reconciling from provider listings only");
                Vec::new()
            }
        };
        let mut jobs = Vec::new();
        for pool in &self.state.pools {
            let listed = match pool.provider.list().await {
                Ok(listed) => listed,
                Err(e) => {
                    tracing::error!(pool = %pool.name, error = %Chain(&e), "failed to list workers; orphans may remain until the next start");
                    Vec::new()
                }
            };
            let mut targets: Vec<ListedInstance> = listed;
            for row in ledger.iter().filter(|r| r.pool == pool.name) {
                if let Some(pid) = &row.provider_id {
                    if !targets.iter().any(|t| t.worker_id == row.worker_id) {
                        targets.push(ListedInstance {
                            worker_id: row.worker_id.clone(),
                            provider_id: pid.clone(),
                        });
                    }
                }
            }
            for target in targets {
                let provider = pool.provider.clone();
                let pool_name = pool.name.clone();
                jobs.push(async move {
                    tracing::warn!(pool = %pool_name, worker = %target.worker_id, "terminating orphan from a previous run");
                    let result = provider.terminate(&target.worker_id, &target.provider_id).await;
                    (target, pool_name, result)
                });
            }
        }
        let reaper = format!("{REAPED_AT_START} {}", self.state.settings.master_id);
        // Rows settled here are final; the pass below must not rewrite them.
        let mut settled = HashSet::new();
        let kinds: Vec<(String, String)> = self
            .state
            .pools
            .iter()
            .map(|p| (p.name.clone(), p.provider.kind().to_owned()))
            .collect();
        let kind_of = |pool: &str| {
            kinds
                .iter()
                .find(|(name, _)| name == pool)
                .map(|(_, kind)| kind.clone())
                .unwrap_or_default()
        };
        for (target, pool, result) in join_all(jobs).await {
            let mut row = ledger
                .iter()
                .find(|r| r.worker_id == target.worker_id)
                .cloned()
                .unwrap_or_else(|| {
                    // Listed by the provider but never recorded: record it now.
                    Instance {
                        worker_id: target.worker_id.clone(),
                        pool: pool.clone(),
                        provider: kind_of(&pool),
                        provider_id: Some(target.provider_id.clone()),
                        state: InstanceState::Terminating,
                        details: serde_json::Value::Null,
                        error: Some("found at the provider but missing from the ledger".into()),
                        launched_at: now_millis(),
                        connected_at: None,
                        terminated_at: None,
                        ended_by: None,
                    }
                });
            row.provider_id.get_or_insert(target.provider_id.clone());
            match result {
                Ok(()) => {
                    self.metrics.orphan_reaped(&pool);
                    row.state = InstanceState::Gone;
                    row.terminated_at = Some(now_millis());
                    row.ended_by = Some(reaper.clone());
                }
                Err(e) => {
                    tracing::error!(worker = %target.worker_id, error = %Chain(&e), "failed to terminate orphan; will retry at next start");
                    row.state = InstanceState::Terminating;
                    row.error = Some(Chain(&e).to_string());
                }
            }
            settled.insert(row.worker_id.clone());
            self.persist_instance(row).await;
        }
        // Rows with no provider handle that no provider listed never got as
        // far as a launch the provider could see: nothing is left of them.
        let never_listed = ledger
            .into_iter()
            .filter(|r| r.provider_id.is_none() && !settled.contains(&r.worker_id));
        for mut row in never_listed {
            row.state = InstanceState::Failed;
            row.error
                .get_or_insert_with(|| "master stopped while the launch was in flight".into());
            row.terminated_at = Some(now_millis());
            row.ended_by = Some(format!(
                "settled at start by master {}: its provider lists no such worker",
                self.state.settings.master_id
            ));
            self.persist_instance(row).await;
        }
    }

    /// Queued builds wait again; builds that were running are requeued as
    /// interrupted: a restart never uses up a retry.
    async fn resume_builds(&mut self) {
        let builds = match self.store.unfinished_builds().await {
            Ok(builds) => builds,
            Err(e) => {
                tracing::error!(error = %Chain(&e), "failed to load unfinished builds");
                return;
            }
        };
        for mut build in builds {
            let id = build.id;
            let interrupted = build
                .attempts
                .last()
                .is_some_and(|a| a.state == AttemptState::Running);
            if build.state == BuildState::Running && interrupted {
                settle_interrupted_attempt(&mut build, &InterruptReason::MasterRestarted);
            } else if build.state == BuildState::Running {
                // Running with no running attempt cannot be resumed as is.
                build.state = BuildState::Queued;
            }
            let queued = build.state == BuildState::Queued;
            self.state.builds.insert(id, build);
            if queued {
                self.state.queue.push_back(id);
            }
            self.persist_build(id).await;
        }
        if !self.state.queue.is_empty() {
            tracing::info!(builds = self.state.queue.len(), "resumed queued builds");
        }
    }
}
