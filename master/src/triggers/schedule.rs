//! `[[schedules]]`: one task per schedule starts its builders when the
//! cron pattern comes due in its time zone. After downtime the missed
//! occurrences are one catch-up run, never a storm; `only_if_changed`
//! skips a run when the branch has not moved since the last one. The clock
//! is injected (`WallClock`), and sleeping is tokio's, so tests run on
//! virtual time across DST changes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use burst_common::error_chain::Chain;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::change::{Change, Event};
use super::hub::Submitter;
use super::source_params;
use crate::config::{LiveConfig, ScheduleConfig};
use crate::metrics::Metrics;
use crate::model::{Millis, ScheduleRun};
use crate::store::Store;

/// The longest sleep between looks at the clock, so a wall clock that
/// jumps (NTP, a suspended VM) is noticed within this.
const MAX_SLEEP: Duration = Duration::from_secs(300);

/// Where the time comes from: the system, or a clock on tokio's time in
/// tests.
pub trait WallClock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

pub struct SystemClock;

impl WallClock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// Whether an occurrence of `cron` in `tz` falls in `(last, now]`.
pub(super) fn due(cron: &croner::Cron, tz: Tz, last: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    next_after(cron, tz, last).is_some_and(|next| next <= now)
}

/// The first occurrence strictly after `t`.
pub(super) fn next_after(cron: &croner::Cron, tz: Tz, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
    cron.find_next_occurrence(&t.with_timezone(&tz), false)
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

fn millis(t: DateTime<Utc>) -> Millis {
    t.timestamp_millis()
}

fn from_millis(m: Millis) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(m).unwrap_or_default()
}

pub(super) struct Schedule {
    pub(super) config: ScheduleConfig,
    /// The config in force, for the builders (a reload may change them).
    pub(super) full: LiveConfig,
    pub(super) store: Arc<dyn Store>,
    pub(super) submitter: Arc<dyn Submitter>,
    pub(super) metrics: Arc<Metrics>,
    pub(super) clock: Arc<dyn WallClock>,
}

/// Starts a task per schedule; each stops when `stop` turns true.
pub fn spawn_schedules(
    live: &LiveConfig,
    store: Arc<dyn Store>,
    submitter: Arc<dyn Submitter>,
    metrics: Arc<Metrics>,
    clock: Arc<dyn WallClock>,
    stop: watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    live.get()
        .schedules
        .iter()
        .map(|s| {
            let schedule = Schedule {
                config: s.clone(),
                full: live.clone(),
                store: store.clone(),
                submitter: submitter.clone(),
                metrics: metrics.clone(),
                clock: clock.clone(),
            };
            tokio::spawn(schedule.run(stop.clone()))
        })
        .collect()
}

impl Schedule {
    pub(super) async fn run(self, mut stop: watch::Receiver<bool>) {
        let name = self.config.name.clone();
        let (cron, tz) = match (self.config.parsed_cron(), self.config.tz()) {
            (Ok(c), Ok(t)) => (c, t),
            (Err(why), _) | (_, Err(why)) => {
                tracing::error!(schedule = %name, "schedule not started: {why}");
                return;
            }
        };
        let mut last = loop {
            match self.store.schedule_run(&name).await {
                Ok(Some(run)) => break run,
                // The first start: runs count from now, nothing is caught up.
                Ok(None) => {
                    let run = ScheduleRun {
                        at: millis(self.clock.now()),
                        revision: None,
                    };
                    if self.save(&run).await {
                        break run;
                    }
                }
                Err(e) => {
                    tracing::warn!(schedule = %name, error = %Chain(&e), "failed to read the schedule's last run")
                }
            }
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(5)) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        };
        loop {
            let now = self.clock.now();
            if due(&cron, tz, from_millis(last.at), now) {
                // However many occurrences were missed, this is one run.
                last = self.fire(now, &last).await;
            }
            let wait = next_after(&cron, tz, now)
                .and_then(|next| (next - now).to_std().ok())
                .unwrap_or(MAX_SLEEP)
                .min(MAX_SLEEP);
            tokio::select! {
                // A millisecond past the occurrence, so `now` is past it.
                () = tokio::time::sleep(wait + Duration::from_millis(1)) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }

    /// One run at `now`; returns the run to remember.
    async fn fire(&self, now: DateTime<Utc>, last: &ScheduleRun) -> ScheduleRun {
        let s = &self.config;
        let head = match (&s.source, &s.branch) {
            (Some(src), Some(branch)) => match self.store.source_heads(src).await {
                Ok(heads) => heads.get(branch).cloned(),
                Err(e) => {
                    tracing::warn!(schedule = %s.name, error = %Chain(&e), "failed to read the branch's head; the run is skipped");
                    return last.clone();
                }
            },
            _ => None,
        };
        let run = ScheduleRun {
            at: millis(now),
            revision: head.clone(),
        };
        if s.only_if_changed && (head.is_none() || head == last.revision) {
            tracing::info!(schedule = %s.name, revision = ?head, "schedule skipped: the branch has not moved since the last run");
            self.metrics.trigger_change(&s.name, "unchanged");
            self.save(&run).await;
            return run;
        }
        let source = match self.source_params(head.as_deref()) {
            Ok(p) => p,
            Err(why) => {
                tracing::warn!(schedule = %s.name, "schedule run refused: {why}");
                self.save(&run).await;
                return run;
            }
        };
        for builder in &s.builders {
            let submit_id = uuid::Uuid::new_v4().simple().to_string();
            let mut builds = match source_params::expand(
                &self.full.get(),
                builder,
                &s.params,
                &source,
                &submit_id,
            ) {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(schedule = %s.name, builder = %builder, "failed to start a scheduled build: {e}");
                    continue;
                }
            };
            for b in &mut builds {
                b.submitted_by = Some(format!("schedule:{}", s.name));
            }
            if let Some(src) = &s.source {
                crate::reporters::watch_submit(&self.full.get(), self.store.as_ref(), src, &builds)
                    .await;
            }
            match self.submitter.submit(builds).await {
                Ok(ids) => {
                    tracing::info!(target: "audit", schedule = %s.name, builder = %builder, builds = ?ids, "scheduled builds submitted");
                    self.metrics.trigger_change(&s.name, "built");
                }
                Err(e) => {
                    tracing::warn!(schedule = %s.name, error = %Chain(&e), "failed to submit a scheduled build")
                }
            }
        }
        self.save(&run).await;
        run
    }

    fn source_params(&self, head: Option<&str>) -> Result<BTreeMap<String, String>, String> {
        let s = &self.config;
        let mut params = BTreeMap::new();
        if let (Some(src), Some(branch), Some(revision)) = (&s.source, &s.branch, head) {
            let repo = self
                .full
                .get()
                .sources
                .iter()
                .find(|c| &c.name == src)
                .map(|c| c.repo_name())
                .unwrap_or_default();
            params = source_params::of(&Change {
                source: src.clone(),
                repo,
                branch: branch.clone(),
                base: None,
                revision: revision.to_owned(),
                pr: None,
                event: Event::Schedule,
                paths: None,
            })?;
            source_params::add_repo_url(&self.full.get(), src, &mut params);
        } else {
            params.insert(
                source_params::EVENT.to_owned(),
                Event::Schedule.as_str().to_owned(),
            );
        }
        Ok(params)
    }

    async fn save(&self, run: &ScheduleRun) -> bool {
        match self.store.save_schedule_run(&self.config.name, run).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(schedule = %self.config.name, error = %Chain(&e), "failed to save the schedule's last run");
                false
            }
        }
    }
}
