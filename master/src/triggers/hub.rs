//! The one actor that turns changes into builds: it matches rules, holds
//! changes on their tree-stable timers, submits through the scheduler's
//! handle and cancels what a newer change supersedes. Webhooks and pollers
//! only hand it changes, so rules, timers and supersession cannot race.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use burst_common::error_chain::Chain;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::change::Change;
use super::rules::Rule;
use super::source_params;
use super::stable::Stable;
use crate::config::LiveConfig;
use crate::metrics::Metrics;
use crate::model::{now_millis, BuildId, BuildState, NewBuild};
use crate::scheduler::{SchedError, SchedulerHandle};
use crate::store::Store;

/// Changes waiting for the hub; a webhook past this waits for room.
const QUEUE: usize = 256;
/// Lines (branches, pull requests) whose latest builds are kept for
/// `cancel_superseded`; past it one is forgotten, so memory stays bounded
/// (a forgotten line's next change just cancels nothing).
const MAX_LINES: usize = 4096;

/// Where the hub's builds go: the scheduler, or a recorder in tests.
#[async_trait]
pub trait Submitter: Send + Sync + 'static {
    async fn submit(&self, builds: Vec<NewBuild>) -> Result<Vec<BuildId>, SchedError>;
    async fn cancel(&self, build: BuildId) -> Result<BuildState, SchedError>;
}

#[async_trait]
impl Submitter for SchedulerHandle {
    async fn submit(&self, builds: Vec<NewBuild>) -> Result<Vec<BuildId>, SchedError> {
        SchedulerHandle::submit(self, builds).await
    }

    async fn cancel(&self, build: BuildId) -> Result<BuildState, SchedError> {
        SchedulerHandle::cancel(self, build).await
    }
}

/// What the hub did with one change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Indexes of the rules it matched.
    pub rules: Vec<usize>,
    /// Builds started at once.
    pub builds: Vec<BuildId>,
    /// Rules holding it on their tree-stable timer.
    pub waiting: usize,
}

struct Offer {
    change: Change,
    reply: Option<oneshot::Sender<Outcome>>,
}

#[derive(Clone)]
pub struct HubHandle {
    tx: mpsc::Sender<Offer>,
}

#[derive(Debug, thiserror::Error)]
#[error("the trigger hub has stopped")]
pub struct HubStopped;

impl HubHandle {
    /// Hands the hub a change and waits for what it did.
    pub async fn offer(&self, change: Change) -> Result<Outcome, HubStopped> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Offer {
                change,
                reply: Some(reply),
            })
            .await
            .map_err(|_| HubStopped)?;
        rx.await.map_err(|_| HubStopped)
    }
}

/// (rule index, line): what a tree-stable timer and a supersession are
/// kept per.
type Line = (usize, String);

pub struct Hub {
    /// Builders are expanded from the config in force (a reload may change
    /// them); the rules are fixed at start (`config/fixed.rs`).
    config: LiveConfig,
    rules: Vec<Rule>,
    store: Arc<dyn Store>,
    submitter: Arc<dyn Submitter>,
    metrics: Arc<Metrics>,
    rx: mpsc::Receiver<Offer>,
    stable: Stable<Line, Change>,
    /// The builds the newest change of each line started.
    latest: HashMap<Line, Vec<BuildId>>,
}

impl Hub {
    pub fn new(
        config: impl Into<LiveConfig>,
        store: Arc<dyn Store>,
        submitter: Arc<dyn Submitter>,
        metrics: Arc<Metrics>,
    ) -> (Hub, HubHandle) {
        let config = config.into();
        let (tx, rx) = mpsc::channel(QUEUE);
        let hub = Hub {
            rules: Rule::all(&config.get()),
            config,
            store,
            submitter,
            metrics,
            rx,
            stable: Stable::default(),
            latest: HashMap::new(),
        };
        (hub, HubHandle { tx })
    }

    /// Runs until every handle is dropped; changes still on a timer then
    /// are dropped too (they were never promised a build).
    pub async fn run(mut self) {
        loop {
            let next = self.stable.next_due();
            tokio::select! {
                offer = self.rx.recv() => match offer {
                    Some(offer) => self.handle(offer).await,
                    None => break,
                },
                () = sleep_until(next), if next.is_some() => self.fire_due().await,
            }
        }
    }

    async fn handle(&mut self, Offer { change, reply }: Offer) {
        let mut outcome = Outcome::default();
        let now = Instant::now();
        if change.event == super::Event::Push {
            // Schedules with `only_if_changed` compare against this head.
            if let Err(e) = self
                .store
                .save_source_head(
                    &change.source,
                    &change.branch,
                    &change.revision,
                    now_millis(),
                )
                .await
            {
                tracing::warn!(source = %change.source, error = %Chain(&e), "failed to record a branch's head");
            }
        }
        let matched: Vec<Rule> = self
            .rules
            .iter()
            .filter(|r| r.matches(&change))
            .cloned()
            .collect();
        for rule in &matched {
            outcome.rules.push(rule.index);
            let quiet = rule.tree_stable();
            if quiet.is_zero() {
                outcome.builds.extend(self.fire(rule, change.clone()).await);
                continue;
            }
            outcome.waiting += 1;
            let line = (rule.index, change.line());
            if let Some(older) = self.stable.offer(line, change.clone(), now, quiet) {
                tracing::info!(
                    source = %change.source,
                    rule = rule.index,
                    older = %older.revision,
                    newer = %change.revision,
                    "a newer change replaces one waiting for the tree to be stable"
                );
                self.metrics.trigger_change(&change.source, "collapsed");
            }
        }
        if matched.is_empty() {
            tracing::info!(
                source = %change.source,
                branch = %change.branch,
                revision = %change.revision,
                event = change.event.as_str(),
                "change matches no rule"
            );
            self.metrics.trigger_change(&change.source, "unmatched");
        }
        if let Some(reply) = reply {
            let _ = reply.send(outcome);
        }
    }

    async fn fire_due(&mut self) {
        for ((index, _line), change) in self.stable.due(Instant::now()) {
            if let Some(rule) = self.rules.get(index).cloned() {
                self.fire(&rule, change).await;
            }
        }
    }

    /// Submits the rule's builders for `change`; cancels what the line's
    /// previous change started when the rule says so.
    async fn fire(&mut self, rule: &Rule, change: Change) -> Vec<BuildId> {
        let source = match source_params::of(&change) {
            Ok(mut p) => {
                source_params::add_repo_url(&self.config.get(), &change.source, &mut p);
                p
            }
            Err(why) => {
                tracing::warn!(source = %change.source, "change refused: {why}");
                self.metrics.trigger_change(&change.source, "refused");
                return Vec::new();
            }
        };
        let mut started = Vec::new();
        for builder in &rule.config.builders {
            let submit_id = uuid::Uuid::new_v4().simple().to_string();
            let builds = source_params::expand(
                &self.config.get(),
                builder,
                &rule.config.params,
                &source,
                &submit_id,
            );
            let mut builds = match builds {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(source = %change.source, rule = rule.index, builder = %builder, "failed to start a triggered build: {e}");
                    self.metrics.trigger_change(&change.source, "refused");
                    continue;
                }
            };
            for b in &mut builds {
                b.submitted_by = Some(format!("source:{}", change.source));
            }
            crate::reporters::watch_submit(
                &self.config.get(),
                self.store.as_ref(),
                &change.source,
                &builds,
            )
            .await;
            match self.submitter.submit(builds).await {
                Ok(ids) => {
                    tracing::info!(
                        target: "audit",
                        source = %change.source,
                        rule = rule.index,
                        builder = %builder,
                        branch = %change.branch,
                        revision = %change.revision,
                        event = change.event.as_str(),
                        builds = ?ids,
                        "builds triggered"
                    );
                    self.metrics.trigger_change(&change.source, "built");
                    started.extend(ids);
                }
                Err(e) => {
                    tracing::warn!(source = %change.source, builder = %builder, error = %Chain(&e), "failed to submit a triggered build");
                    self.metrics.trigger_change(&change.source, "failed");
                }
            }
        }
        let line = (rule.index, change.line());
        if self.latest.len() >= MAX_LINES && !self.latest.contains_key(&line) {
            if let Some(any) = self.latest.keys().next().cloned() {
                self.latest.remove(&any);
            }
        }
        let older = self.latest.insert(line, started.clone());
        if rule.config.cancel_superseded {
            for id in older.unwrap_or_default() {
                match self.submitter.cancel(id).await {
                    Ok(state) => tracing::info!(
                        build = id,
                        state = state.as_str(),
                        revision = %change.revision,
                        "cancelled a build superseded by a newer change"
                    ),
                    // Finished already: nothing to cancel.
                    Err(SchedError::NotActive(_)) => {}
                    Err(e) => {
                        tracing::warn!(build = id, error = %Chain(&e), "failed to cancel a superseded build")
                    }
                }
            }
        }
        started
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
