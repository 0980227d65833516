//! Reconcile, because webhooks get lost: at start and every
//! `reconcile_interval`, cover each queued job that has no runner build,
//! and remove the registrations of runners named by this master whose
//! worker is gone, that have been offline for `offline_runner_timeout`, or
//! that sit idle with no job left for them (their job was cancelled after
//! they started, or another runner took it): their builds are cancelled,
//! so their workers go instead of waiting out `job_timeout`.

use std::collections::BTreeSet;
use std::sync::Arc;

use burst_common::error_chain::Chain;
use tokio::sync::watch;
use tokio::time::Instant;

use super::api::{ApiError, Scope};
use super::manager::{parse_runner_name, RunnerManager};

/// What one pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Pass {
    pub queued_seen: usize,
    pub launched: usize,
    pub removed: usize,
}

impl RunnerManager {
    /// Runs passes until `stop` turns true.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        loop {
            let Some(g) = self.config.get().github.clone() else {
                return;
            };
            match self.reconcile().await {
                Ok(pass) if pass.launched + pass.removed > 0 => tracing::info!(
                    queued = pass.queued_seen,
                    launched = pass.launched,
                    removed = pass.removed,
                    "GitHub reconcile pass done"
                ),
                Ok(pass) => tracing::debug!(
                    queued = pass.queued_seen,
                    "GitHub reconcile pass done; nothing to do"
                ),
                Err(e) => {
                    tracing::warn!(error = %Chain(&e), "GitHub reconcile pass failed; trying again next interval")
                }
            }
            tokio::select! {
                () = tokio::time::sleep(g.reconcile_interval.get()) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }

    /// One pass.
    pub async fn reconcile(&self) -> Result<Pass, ApiError> {
        let Some(g) = self.config.get().github.clone() else {
            return Ok(Pass::default());
        };
        let mut pass = Pass::default();
        let repos = match &g.org {
            Some(org) => self.api.org_repos(org).await?,
            None => g.repos.clone(),
        };
        let mut queued = Vec::new();
        for repo in &repos {
            for job in self.api.queued_jobs(repo).await? {
                pass.queued_seen += 1;
                queued.push(job.clone());
                match self.cover(repo, &job).await {
                    Ok(outcome) => {
                        if matches!(outcome, super::manager::JobOutcome::Launched(_)) {
                            pass.launched += 1;
                            tracing::info!(
                                job = job.id,
                                repo,
                                "reconcile found a queued job without a runner (a lost webhook?)"
                            );
                        }
                        self.metrics.github_job(outcome.word());
                    }
                    Err(why) => {
                        tracing::warn!(job = job.id, repo, "failed to cover a queued job: {why}")
                    }
                }
            }
        }
        let scopes: Vec<Scope> = match &g.org {
            Some(org) => vec![Scope::Org(org.clone())],
            None => g.repos.iter().cloned().map(Scope::Repo).collect(),
        };
        let workers: BTreeSet<String> = match self.scheduler.workers().await {
            Ok(w) => w.into_iter().map(|w| w.worker_id).collect(),
            // Without the fleet, nothing can be called an orphan.
            Err(_) => return Ok(pass),
        };
        let timeout = g.offline_runner_timeout.get();
        for scope in &scopes {
            for runner in self.api.list_runners(scope).await? {
                let Some((worker, build)) = parse_runner_name(&runner.name) else {
                    continue;
                };
                if !self.launched_by_us(worker, build).await {
                    continue;
                }
                let now = Instant::now();
                let why = if !workers.contains(worker) && !runner.busy {
                    Some("orphan")
                } else if runner.status == "offline" && !runner.busy {
                    let mut offline = self.offline_since.lock().unwrap_or_else(|p| p.into_inner());
                    let since = *offline.entry(runner.id).or_insert(now);
                    (now.duration_since(since) >= timeout).then_some("offline")
                } else {
                    self.offline_since
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&runner.id);
                    None
                };
                // Idle with nothing to take, seen so at an earlier pass too:
                // a runner that has just come up is given one interval.
                let idle = why.is_none() && !runner.busy && self.jobless(build, &queued).await;
                let why = why.or_else(|| {
                    let mut seen = self.idle_since.lock().unwrap_or_else(|p| p.into_inner());
                    if !idle {
                        seen.remove(&runner.id);
                        return None;
                    }
                    let since = *seen.entry(runner.id).or_insert(now);
                    (since < now).then_some("idle")
                });
                let Some(why) = why else { continue };
                // GitHub refuses to remove a runner that is running a job
                // (422), so a job taken just now is never cut off.
                match self.api.delete_runner(scope, runner.id).await {
                    Ok(()) => {
                        pass.removed += 1;
                        self.metrics.github_runner_removed(why);
                        for map in [&self.offline_since, &self.idle_since] {
                            map.lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .remove(&runner.id);
                        }
                        tracing::info!(runner = %runner.name, id = runner.id, %scope, why, "removed a runner registration");
                        // Its worker runs nothing useful without it.
                        if why != "orphan" {
                            self.cancel_runner_build(build, &runner.name, why).await;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(runner = %runner.name, error = %Chain(&e), "failed to remove a runner registration")
                    }
                }
            }
        }
        Ok(pass)
    }

    /// Runner build `build` runs, has taken no job, the job it was launched
    /// for is no longer queued, and no queued job fits its labels: its
    /// runner would wait for nothing until `job_timeout`.
    async fn jobless(&self, build: crate::model::BuildId, queued: &[super::job::Job]) -> bool {
        let b = match self.store.get_build(build).await {
            Ok(Some(b)) if b.state == crate::model::BuildState::Running => b,
            _ => return false,
        };
        let Ok(jobs) = self.store.github_jobs_of_build(build).await else {
            return false;
        };
        if jobs.iter().any(|j| j.ran_build == Some(build)) {
            return false;
        }
        let launched_for: BTreeSet<u64> = jobs
            .iter()
            .filter(|j| j.launched_build == Some(build))
            .map(|j| j.job_id as u64)
            .collect();
        // The labels its runner registered with; unreadable: any job fits.
        let labels = b
            .steps
            .iter()
            .find_map(|s| s.runner.as_ref())
            .map(|r| &r.labels);
        !queued.iter().any(|q| {
            launched_for.contains(&q.id)
                || labels.is_none_or(|l| {
                    q.labels
                        .iter()
                        .all(|want| l.iter().any(|have| have.eq_ignore_ascii_case(want)))
                })
        })
    }

    /// Cancels the build of a runner whose registration was removed
    /// (idle with no job left, or offline too long); a finished build stays
    /// as it is.
    async fn cancel_runner_build(&self, build: crate::model::BuildId, runner: &str, why: &str) {
        match self.scheduler.cancel(build).await {
            Ok(state) => tracing::info!(
                build,
                runner,
                why,
                ?state,
                "cancelled the build of a runner whose registration was removed"
            ),
            Err(e) => {
                tracing::warn!(build, runner, error = %Chain(&e), "failed to cancel an idle runner's build")
            }
        }
    }

    /// The name is ours: its build is a runner build of this master that
    /// ran (or runs) on that worker. Another master's runners are left alone.
    async fn launched_by_us(&self, worker: &str, build: crate::model::BuildId) -> bool {
        match self.store.get_build(build).await {
            Ok(Some(b)) => {
                b.builder == crate::config::RUNNER_BUILDER
                    && b.attempts.iter().any(|a| a.worker_id == worker)
            }
            _ => false,
        }
    }
}
