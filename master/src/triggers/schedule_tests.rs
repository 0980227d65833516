//! Schedules on virtual time: the wall clock is tokio's paused clock plus
//! a start date, so days pass in milliseconds and DST changes are exact.

#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use tokio::time::Instant;

use super::hub::Submitter;
use super::hub_tests::config;
use super::schedule::{Schedule, WallClock};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::model::{BuildId, BuildState, NewBuild, ScheduleRun};
use crate::scheduler::SchedError;
use crate::store::{MemoryStore, Store, TriggerStore};

struct PausedClock {
    base: DateTime<Utc>,
    start: Instant,
}

impl WallClock for PausedClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = chrono::Duration::from_std(self.start.elapsed()).unwrap();
        self.base + elapsed
    }
}

/// Submits recorded with the (virtual) wall time they came at.
struct Runs {
    clock: Arc<PausedClock>,
    runs: Mutex<Vec<(DateTime<Utc>, NewBuild)>>,
}

#[async_trait]
impl Submitter for Runs {
    async fn submit(&self, builds: Vec<NewBuild>) -> Result<Vec<BuildId>, SchedError> {
        let mut runs = self.runs.lock().unwrap();
        let now = self.clock.now();
        let first = runs.len() as BuildId + 1;
        let n = builds.len() as BuildId;
        runs.extend(builds.into_iter().map(|b| (now, b)));
        Ok((first..first + n).collect())
    }

    async fn cancel(&self, _: BuildId) -> Result<BuildState, SchedError> {
        Ok(BuildState::Cancelled)
    }
}

impl Runs {
    fn times(&self) -> Vec<DateTime<Utc>> {
        self.runs.lock().unwrap().iter().map(|(t, _)| *t).collect()
    }
}

const BASE: &str = r#"
[pools.local]
provider = "local"

[[builders]]
name = "nightly"
steps = [{ name = "s", run = "true" }]

[[sources]]
name = "repo"
kind = "git-poll"
url = "file:///srv/repo.git"
branches = ["main"]
"#;

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
}

/// Runs the one schedule of `schedule_toml` from `start` for `run_for` of
/// virtual time.
async fn run(
    schedule_toml: &str,
    start: DateTime<Utc>,
    store: Arc<MemoryStore>,
    run_for: Duration,
) -> Arc<Runs> {
    let full: Config = config(&format!("{BASE}{schedule_toml}"));
    let clock = Arc::new(PausedClock {
        base: start,
        start: Instant::now(),
    });
    let runs = Arc::new(Runs {
        clock: clock.clone(),
        runs: Mutex::new(Vec::new()),
    });
    let schedule = Schedule {
        config: full.schedules[0].clone(),
        full: Arc::new(full).into(),
        store: store as Arc<dyn Store>,
        submitter: runs.clone(),
        metrics: Arc::new(Metrics::new()),
        clock,
    };
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(schedule.run(stop));
    tokio::time::sleep(run_for).await;
    let _ = stop_tx.send(true);
    task.await.unwrap();
    runs
}

const DAY: Duration = Duration::from_secs(24 * 3600);

#[tokio::test(start_paused = true)]
async fn runs_at_the_wall_time_of_its_zone() {
    let s = r#"
[[schedules]]
name = "n"
cron = "0 9 * * *"
timezone = "Europe/Berlin"
builders = ["nightly"]
"#;
    // 07:00 UTC on a winter day is 08:00 in Berlin: the first run is at
    // 09:00 Berlin, 08:00 UTC, then a day later.
    let runs = run(s, utc(2026, 1, 10, 7, 0), Arc::default(), 2 * DAY).await;
    let times = runs.times();
    assert_eq!(times.len(), 2, "{times:?}");
    assert_eq!(times[0].format("%F %R").to_string(), "2026-01-10 08:00");
    assert_eq!(times[1].format("%F %R").to_string(), "2026-01-11 08:00");
    let b = runs.runs.lock().unwrap()[0].1.clone();
    assert_eq!(b.submitted_by.as_deref(), Some("schedule:n"));
    assert_eq!(b.params["BURST_EVENT"], "schedule");
}

#[tokio::test(start_paused = true)]
async fn daylight_saving_changes_neither_skip_nor_double_a_day() {
    let s = r#"
[[schedules]]
name = "n"
cron = "30 2 * * *"
timezone = "Europe/Berlin"
builders = ["nightly"]
"#;
    // Spring: 02:30 does not exist on 2026-03-29. Autumn: it happens twice
    // on 2026-10-25. Either way, one run per day.
    for (start, days) in [(utc(2026, 3, 27, 12, 0), 4), (utc(2026, 10, 23, 12, 0), 4)] {
        let runs = run(s, start, Arc::default(), days * DAY).await;
        let times = runs.times();
        let mut dates: Vec<String> = times.iter().map(|t| t.format("%F").to_string()).collect();
        let n = dates.len();
        dates.dedup();
        assert_eq!(dates.len(), n, "one run a day: {times:?}");
        assert!(n >= 3, "no day skipped but maybe the gap itself: {times:?}");
        // The summer and winter runs are an hour apart in UTC.
        let hours: Vec<u32> = times
            .iter()
            .map(|t| t.format("%H").to_string().parse().unwrap())
            .collect();
        assert!(hours.iter().all(|h| *h == 0 || *h == 1), "{times:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn downtime_is_caught_up_once() {
    let s = r#"
[[schedules]]
name = "n"
cron = "0 * * * *"
builders = ["nightly"]
"#;
    let store = Arc::new(MemoryStore::new());
    // The last run was three days before this start: 72 missed hours.
    store
        .save_schedule_run(
            "n",
            &ScheduleRun {
                at: utc(2026, 5, 1, 0, 0).timestamp_millis(),
                revision: None,
            },
        )
        .await
        .unwrap();
    let runs = run(s, utc(2026, 5, 4, 0, 30), store, Duration::from_secs(3600)).await;
    let times = runs.times();
    assert_eq!(times.len(), 2, "{times:?}");
    assert_eq!(
        times[0].format("%F %R").to_string(),
        "2026-05-04 00:30",
        "one catch-up at start"
    );
    assert_eq!(times[1].format("%F %R").to_string(), "2026-05-04 01:00");
}

#[tokio::test(start_paused = true)]
async fn a_first_start_catches_nothing_up() {
    let s = r#"
[[schedules]]
name = "n"
cron = "0 0 1 1 *"
builders = ["nightly"]
"#;
    let runs = run(s, utc(2026, 5, 4, 0, 30), Arc::default(), DAY).await;
    assert!(runs.times().is_empty());
}

#[tokio::test(start_paused = true)]
async fn only_if_changed_skips_a_branch_that_did_not_move() {
    let s = r#"
[[schedules]]
name = "n"
cron = "0 3 * * *"
builders = ["nightly"]
source = "repo"
branch = "main"
only_if_changed = true
"#;
    let store = Arc::new(MemoryStore::new());
    let h1 = "1".repeat(40);
    store
        .save_source_head("repo", "main", &h1, 0)
        .await
        .unwrap();
    let runs = run(s, utc(2026, 6, 1, 0, 0), store.clone(), 2 * DAY).await;
    // Day 1 builds h1; day 2 finds main still at h1.
    let times = runs.times();
    assert_eq!(times.len(), 1, "{times:?}");
    let b = runs.runs.lock().unwrap()[0].1.clone();
    assert_eq!(b.params["BURST_REVISION"], h1);
    assert_eq!(b.params["BURST_BRANCH"], "main");
    assert_eq!(b.params["BURST_REPO"], "file:///srv/repo.git");
    assert_eq!(b.params["BURST_REPO_URL"], "file:///srv/repo.git");
    assert_eq!(b.params["BURST_EVENT"], "schedule");

    // main moves: the next day builds again (the restart keeps the last run).
    let h2 = "2".repeat(40);
    store
        .save_source_head("repo", "main", &h2, 0)
        .await
        .unwrap();
    let runs = run(s, utc(2026, 6, 3, 0, 0), store, DAY).await;
    let revs: Vec<String> = runs
        .runs
        .lock()
        .unwrap()
        .iter()
        .map(|(_, b)| b.params["BURST_REVISION"].clone())
        .collect();
    assert_eq!(revs, vec![h2]);
}
