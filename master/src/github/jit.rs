//! The scheduler's source of JIT configs: at most
//! `max_jit_configs_per_minute`, each for a runner named after its worker
//! and build, registered with the entry's labels and group.

use std::time::Duration;

use async_trait::async_trait;
use burst_common::error_chain::Chain;
use tokio::time::Instant;

use super::api::{ApiError, Scope};
use super::manager::{runner_name, RunnerManager};
use crate::model::{BuildId, RunnerStep};
use crate::scheduler::{JitConfig, RunnerConfigs};

/// Transient failures (after `api.rs`'s own retries) tried again, this
/// long apart, before the step fails.
const TRIES: u32 = 5;
const PAUSE: Duration = Duration::from_secs(5);

#[async_trait]
impl RunnerConfigs for RunnerManager {
    async fn jit_config(
        &self,
        runner: &RunnerStep,
        build: BuildId,
        worker_id: &str,
    ) -> Result<JitConfig, String> {
        let scope = if runner.org {
            Scope::Org(runner.target.clone())
        } else {
            Scope::Repo(runner.target.clone())
        };
        let name = runner_name(build, worker_id);
        let mut tries = 0;
        loop {
            self.jit_slot().await;
            tries += 1;
            match self
                .api
                .generate_jitconfig(&scope, &name, &runner.labels, runner.runner_group_id)
                .await
            {
                Ok(jit) => {
                    tracing::info!(runner = %name, id = jit.runner_id, %scope, "GitHub runner registered (just in time)");
                    return Ok(JitConfig(jit.encoded));
                }
                // The name is taken: this worker's step was sent before
                // (a master restart). The old registration goes.
                Err(ApiError::Status { status: 409, .. }) if tries < TRIES => {
                    self.remove_named(&scope, &name).await;
                }
                Err(e) if e.is_permanent() || tries >= TRIES => {
                    return Err(Chain(&e).to_string());
                }
                Err(e) => {
                    tracing::warn!(runner = %name, error = %Chain(&e), "failed to get a JIT config; trying again");
                    tokio::time::sleep(PAUSE).await;
                }
            }
        }
    }
}

impl RunnerManager {
    /// Waits for a slot of the per-minute JIT cap.
    async fn jit_slot(&self) {
        loop {
            let next = self
                .jit_window
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take(Instant::now());
            match next {
                Ok(()) => return,
                Err(at) => tokio::time::sleep_until(at).await,
            }
        }
    }

    async fn remove_named(&self, scope: &Scope, name: &str) {
        match self.api.list_runners(scope).await {
            Ok(runners) => {
                for r in runners.iter().filter(|r| r.name == name) {
                    if let Err(e) = self.api.delete_runner(scope, r.id).await {
                        tracing::warn!(runner = name, error = %Chain(&e), "failed to remove a stale runner registration");
                    }
                }
            }
            Err(e) => tracing::warn!(runner = name, error = %Chain(&e), "failed to list runners"),
        }
    }
}
