//! `[[sources]] kind = "git-poll"`: one task per source asks `git
//! ls-remote` every `interval` and hands each moved head to the hub. The
//! heads are persisted, so a restart compares against what the last run
//! saw; the very first poll of a source only records them. A failing poll
//! backs off (jittered, doubling up to `MAX_BACKOFF`) and shows in
//! `/api/v1/sources` and the metrics.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use burst_common::backoff::Backoff;
use burst_common::error_chain::Chain;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::change::{Change, Event};
use super::changed_paths::PathsRepo;
use super::glob::Globs;
use super::hub::HubHandle;
use super::ls_remote;
use super::status::SourceStatus;
use crate::config::{Config, SourceConfig, SourceKind};
use crate::metrics::Metrics;
use crate::model::now_millis;
use crate::store::Store;

/// Longest wait after failures; the first is the poll interval.
const MAX_BACKOFF: Duration = Duration::from_secs(15 * 60);

struct Poller {
    source: SourceConfig,
    branches: Globs,
    password: Option<String>,
    secrets: Vec<String>,
    store: Arc<dyn Store>,
    hub: HubHandle,
    status: Arc<SourceStatus>,
    metrics: Arc<Metrics>,
    /// What was last seen; `None` until read from the store.
    known: Option<BTreeMap<String, String>>,
    /// Where changed paths are worked out, when a rule of this source
    /// filters by them.
    paths: Option<PathsRepo>,
}

/// Starts a poller per git-poll source; each stops when `stop` turns true.
pub fn spawn_pollers(
    config: &Config,
    store: Arc<dyn Store>,
    hub: HubHandle,
    status: Arc<SourceStatus>,
    metrics: Arc<Metrics>,
    stop: watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    config
        .sources
        .iter()
        .filter(|s| s.kind == SourceKind::GitPoll)
        .map(|s| {
            let password = s
                .secret
                .as_deref()
                .and_then(|n| config.secret_values.get(n))
                .map(str::to_owned);
            let by_path = config
                .rules
                .iter()
                .any(|r| r.source == s.name && !r.paths.is_empty());
            let paths = by_path.then(|| {
                PathsRepo::new(
                    &config.master.state_dir,
                    &s.name,
                    s.url.as_deref().unwrap_or_default(),
                    password.clone(),
                )
            });
            let poller = Poller {
                branches: Globs::new(&s.branches),
                password,
                paths,
                secrets: config.secret_values.values().map(str::to_owned).collect(),
                source: s.clone(),
                store: store.clone(),
                hub: hub.clone(),
                status: status.clone(),
                metrics: metrics.clone(),
                known: None,
            };
            tokio::spawn(poller.run(stop.clone()))
        })
        .collect()
}

impl Poller {
    async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let interval = self.source.poll_interval();
        let mut backoff = Backoff::new(interval, MAX_BACKOFF.max(interval));
        loop {
            let wait = match self.poll().await {
                Ok(()) => {
                    backoff.reset();
                    self.metrics.poll_done(&self.source.name, true);
                    self.status.next_poll(&self.source.name, interval);
                    interval
                }
                Err(why) => {
                    let wait = backoff.next_delay();
                    let failures = self
                        .status
                        .poll_failed(&self.source.name, why.clone(), wait);
                    self.metrics.poll_done(&self.source.name, false);
                    tracing::warn!(
                        source = %self.source.name,
                        failures,
                        retry_in = %humantime::format_duration(wait),
                        "poll failed: {why}"
                    );
                    wait
                }
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }

    /// One poll. The error is a message with every secret masked.
    async fn poll(&mut self) -> Result<(), String> {
        let url = self.source.url.clone().unwrap_or_default();
        let heads = ls_remote::heads(&url, self.password.as_deref())
            .await
            .map_err(|e| self.masked(Chain(&e).to_string()))?;
        let known = match &self.known {
            Some(k) => k.clone(),
            None => self
                .store
                .source_heads(&self.source.name)
                .await
                .map_err(|e| Chain(&e).to_string())?,
        };
        let first = known.is_empty();
        let watched: BTreeMap<&String, &String> = heads
            .iter()
            .filter(|(b, _)| self.branches.matches(b))
            .collect();
        let mut now_known = known.clone();
        for (branch, revision) in &watched {
            if known.get(*branch) == Some(*revision) {
                continue;
            }
            if !first {
                let paths = self.changed_paths(known.get(*branch), revision).await;
                let change = Change {
                    source: self.source.name.clone(),
                    repo: self.source.repo_name(),
                    branch: (*branch).clone(),
                    base: None,
                    revision: (*revision).clone(),
                    pr: None,
                    event: Event::Push,
                    paths,
                };
                tracing::info!(source = %self.source.name, branch = %branch, revision = %revision, "branch moved");
                self.hub.offer(change).await.map_err(|e| e.to_string())?;
            } else {
                tracing::info!(source = %self.source.name, branch = %branch, revision = %revision, "first poll: head recorded, nothing triggered");
            }
            // After the offer: a crash in between builds the head again
            // rather than never.
            self.store
                .save_source_head(&self.source.name, branch, revision, now_millis())
                .await
                .map_err(|e| Chain(&e).to_string())?;
            now_known.insert((*branch).clone(), (*revision).clone());
        }
        self.known = Some(now_known);
        self.status.poll_ok(&self.source.name, watched.len());
        Ok(())
    }

    /// The files changed since `old` (`None`: unknown, or no rule asks).
    async fn changed_paths(&self, old: Option<&String>, new: &str) -> Option<Vec<String>> {
        let (repo, old) = (self.paths.as_ref()?, old?);
        match repo.changed(old, new).await {
            Ok(paths) => Some(paths),
            Err(why) => {
                tracing::warn!(source = %self.source.name, old = %old, new = %new, "failed to work out the changed paths; the change is not filtered by them: {}", self.masked(why));
                None
            }
        }
    }

    fn masked(&self, mut text: String) -> String {
        for s in &self.secrets {
            text = text.replace(s.as_str(), "***");
        }
        text
    }
}
