//! `decide` on hand-built state: plain tests, no runtime, no provider calls.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use burst_providers::{LaunchSpec, Launched, ListedInstance, Provider, ProviderError};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::decide;
use burst_providers::local::LocalPoolConfig;
use burst_providers::ProviderSection;

use crate::config::PoolConfig;
use crate::model::{
    Attempt, AttemptState, BuildId, BuildState, Expiry, Instance, InstanceState, LostReason,
    NewBuild, QueuedStatus, Retrying, Unservable, WaitReason,
};
use crate::scheduler::actor::SchedulerSettings;
use crate::scheduler::builds::{Fence, Running};
use crate::scheduler::effect::Effect;
use crate::scheduler::pool::Pool;
use crate::scheduler::reason::StopReason;
use crate::scheduler::state::{ShutdownState, State};
use crate::scheduler::worker::{Session, Worker, WorkerState};

const S: Duration = Duration::from_secs(1);
/// heartbeat_interval 10s × 3 misses.
const WINDOW: Duration = Duration::from_secs(30);
const LEASE: Duration = Duration::from_secs(120);
/// `SchedulerSettings::lease_grace` for a 10s heartbeat.
const GRACE: Duration = Duration::from_secs(10);

/// `decide` never calls a provider; this one would say so.
struct NoProvider;

#[async_trait]
impl Provider for NoProvider {
    fn kind(&self) -> &'static str {
        "none"
    }
    async fn launch(&self, _: &LaunchSpec) -> Result<Launched, ProviderError> {
        Err(ProviderError::permanent("decide called a provider"))
    }
    async fn terminate(&self, _: &str, _: &str) -> Result<(), ProviderError> {
        Err(ProviderError::permanent("decide called a provider"))
    }
    async fn list(&self) -> Result<Vec<ListedInstance>, ProviderError> {
        Ok(Vec::new())
    }
}

/// The one place these tests spell out a pool's config.
fn pool_cfg(max_workers: u32) -> PoolConfig {
    let mut cfg = PoolConfig::new(ProviderSection::new(LocalPoolConfig::default()));
    cfg.labels = vec!["linux".into()];
    cfg.max_workers = max_workers.into();
    cfg.max_starting = max_workers.into();
    cfg.idle_timeout = (60 * S).into();
    cfg.start_timeout = (30 * S).into();
    cfg.backoff_min = S.into();
    cfg.backoff_max = 60 * S;
    cfg
}

fn state(cfg: PoolConfig) -> State {
    let settings = SchedulerSettings {
        master_id: "m".into(),
        advertise_url: "http://127.0.0.1:1".into(),
        master_pin: None,
        heartbeat_interval: 10 * S,
        heartbeat_misses: 3,
        step_lease: LEASE,
        shutdown_grace: 30 * S,
        health_interval: S,
        secrets: Default::default(),
        clock: crate::scheduler::WallClock::System,
        artifact_limit: 0,
        cache_keys: Default::default(),
        budget: Default::default(),
    };
    State::new(
        settings,
        vec![Pool::new("pool".into(), cfg, Arc::new(NoProvider))],
    )
}

/// A worker of pool 0 that entered `state` at `since` and was last heard
/// from `now`.
fn add_worker(s: &mut State, id: &str, state: WorkerState, since: Instant, now: Instant) {
    let connected = matches!(state, WorkerState::Idle | WorkerState::Busy);
    let session = connected.then(|| Session {
        id: 1,
        tx: mpsc::channel(1).0,
    });
    let worker = Worker {
        id: id.into(),
        pool: 0,
        provider: s.pools[0].provider.clone(),
        state,
        since,
        deadline: (!connected).then_some(since + 30 * S),
        launch_token: [0; 32],
        resume_token: None,
        resume_prev: None,
        lease_until: now + LEASE,
        readmitted: false,
        session,
        last_seen: now,
        builds_done: 0,
        build: None,
        os: None,
        labels: vec!["linux".into()],
        ledger: Instance {
            worker_id: id.into(),
            pool: "pool".into(),
            provider: "none".into(),
            provider_id: (state != WorkerState::Launching).then(|| format!("p-{id}")),
            state: InstanceState::Launched,
            details: serde_json::Value::Null,
            error: None,
            launched_at: 0,
            connected_at: None,
            terminated_at: None,
            ended_by: None,
            resume_hash: None,
            resume_prev_hash: None,
        },
        launch_returned: state != WorkerState::Launching,
        health_in_flight: false,
        next_health: now + 100 * S,
    };
    s.workers.insert(id.into(), worker);
}

fn queue(s: &mut State, n: usize) -> Vec<BuildId> {
    (0..n)
        .map(|_| {
            let id = s.builds.len() as BuildId + 1;
            let build = NewBuild {
                submit_id: "s".into(),
                builder: "b".into(),
                cell: Default::default(),
                params: Default::default(),
                labels: vec!["linux".into()],
                steps: Vec::new(),
                retries: 1,
                submitted_by: None,
            }
            .into_build(id, 0);
            s.builds.insert(id, build);
            s.queue.push_back(id);
            id
        })
        .collect()
}

fn launches(effects: &[Effect]) -> usize {
    effects
        .iter()
        .filter(|e| matches!(e, Effect::Launch { .. }))
        .count()
}

fn terminated(effects: &[Effect]) -> Vec<(&str, &StopReason)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Terminate { worker, reason } => Some((worker.as_str(), reason)),
            _ => None,
        })
        .collect()
}

fn explained(effects: &[Effect]) -> Vec<&QueuedStatus> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Explain { status, .. } => Some(status),
            _ => None,
        })
        .collect()
}

#[test]
fn nothing_pending_asks_for_no_wake() {
    let plan = decide(&state(pool_cfg(4)), Instant::now());
    assert!(plan.effects.is_empty(), "{:?}", plan.effects);
    assert_eq!(plan.wake_at, None);
}

#[test]
fn scales_from_zero_for_a_queued_build() {
    let mut s = state(pool_cfg(4));
    let ids = queue(&mut s, 1);
    let plan = decide(&s, Instant::now());
    assert_eq!(
        plan.effects,
        vec![
            Effect::Launch { pool: 0 },
            Effect::Explain {
                build: ids[0],
                status: QueuedStatus {
                    retry: None,
                    wait: WaitReason::Starting {
                        pool: "pool".into()
                    },
                },
            },
        ]
    );
    assert_eq!(plan.wake_at, None, "no deadline until the launch exists");
}

#[test]
fn launches_stop_at_max_workers() {
    let now = Instant::now();
    let mut s = state(pool_cfg(3));
    add_worker(&mut s, "a", WorkerState::Busy, now, now);
    add_worker(&mut s, "b", WorkerState::Busy, now, now);
    queue(&mut s, 5);
    assert_eq!(launches(&decide(&s, now).effects), 1, "one slot left");

    add_worker(&mut s, "c", WorkerState::Busy, now, now);
    let plan = decide(&s, now);
    assert_eq!(launches(&plan.effects), 0);
    assert!(explained(&plan.effects).iter().all(|st| st.wait
        == WaitReason::AtCap {
            pool: "pool".into(),
            max_workers: 3
        }));
}

#[test]
fn launches_stop_at_max_starting_and_starting_workers_count() {
    let now = Instant::now();
    let mut cfg = pool_cfg(8);
    cfg.max_starting = 2.into();
    let mut s = state(cfg);
    queue(&mut s, 8);
    assert_eq!(launches(&decide(&s, now).effects), 2);

    add_worker(&mut s, "a", WorkerState::Connecting, now, now);
    assert_eq!(launches(&decide(&s, now).effects), 1);
}

#[test]
fn min_idle_spares_are_launched_and_kept_past_idle_timeout() {
    let now = Instant::now();
    let mut cfg = pool_cfg(4);
    cfg.min_idle = 2;
    let mut s = state(cfg);
    assert_eq!(launches(&decide(&s, now).effects), 2);

    // Idle far past idle_timeout, but they are the spares.
    add_worker(&mut s, "a", WorkerState::Idle, now - 300 * S, now);
    add_worker(&mut s, "b", WorkerState::Idle, now - 300 * S, now);
    let plan = decide(&s, now);
    assert!(plan.effects.is_empty(), "{:?}", plan.effects);
    // Their passed idle deadline is not a wake time (that spun); their
    // heartbeats are.
    assert_eq!(plan.wake_at, Some(now + WINDOW));
}

#[test]
fn a_spare_given_a_build_is_replaced() {
    let now = Instant::now();
    let mut cfg = pool_cfg(4);
    cfg.min_idle = 1;
    let mut s = state(cfg);
    add_worker(&mut s, "a", WorkerState::Idle, now, now);
    let ids = queue(&mut s, 1);
    let plan = decide(&s, now);
    assert_eq!(
        plan.effects,
        vec![
            Effect::Start {
                build: ids[0],
                worker: "a".into()
            },
            Effect::Launch { pool: 0 },
        ]
    );
}

#[test]
fn idle_timeout_stops_idle_workers_never_busy_ones() {
    let now = Instant::now();
    let mut s = state(pool_cfg(4));
    add_worker(&mut s, "old", WorkerState::Idle, now - 61 * S, now);
    add_worker(&mut s, "busy", WorkerState::Busy, now - 1000 * S, now);
    add_worker(&mut s, "new", WorkerState::Idle, now - 50 * S, now - 25 * S);
    let plan = decide(&s, now);
    assert_eq!(
        plan.effects,
        vec![Effect::Terminate {
            worker: "old".into(),
            reason: StopReason::IdleTimeout
        }]
    );
    // "new" is next: its heartbeat window closes in 5s, its idle timeout in 10s.
    assert_eq!(plan.wake_at, Some(now + 5 * S));
}

#[test]
fn start_timeout_stops_the_worker_and_backs_the_pool_off() {
    let now = Instant::now();
    let mut s = state(pool_cfg(4));
    add_worker(&mut s, "slow", WorkerState::Connecting, now - 31 * S, now);
    queue(&mut s, 1);
    let plan = decide(&s, now);
    let expiry = Expiry::StartTimeout {
        worker: "slow".into(),
        timeout: 30 * S,
    };
    assert_eq!(
        plan.effects,
        vec![
            Effect::PoolFailed {
                pool: 0,
                cause: expiry.clone()
            },
            Effect::Terminate {
                worker: "slow".into(),
                reason: StopReason::Expired(expiry)
            },
        ],
        "no relaunch and no status until the backoff is known"
    );
}

#[test]
fn missed_heartbeats_fence_the_build_until_the_lease_surely_ran_out() {
    let now = Instant::now();
    let mut s = state(pool_cfg(4));
    let ids = queue(&mut s, 1);
    s.queue.clear();
    add_worker(
        &mut s,
        "gone",
        WorkerState::Busy,
        now - 100 * S,
        now - WINDOW,
    );
    let renewed = now - WINDOW;
    let w = s.workers.get_mut("gone").unwrap();
    w.build = Some(ids[0]);
    w.lease_until = renewed + LEASE;
    let plan = decide(&s, now);
    assert!(
        matches!(&plan.effects[..], [Effect::Fence { build, until, .. }, Effect::Terminate { worker, .. }]
            if *build == ids[0] && worker == "gone" && *until == renewed + LEASE + GRACE),
        "the build is not lost yet, only fenced: {:?}",
        plan.effects
    );
}

/// A fenced build whose worker the provider never confirmed gone is lost
/// once the lease plus grace is over, not a moment before, and the wake
/// time says when.
#[test]
fn a_fenced_build_is_lost_when_the_lease_and_grace_are_over() {
    let now = Instant::now();
    let mut s = state(pool_cfg(4));
    let ids = queue(&mut s, 1);
    s.queue.clear();
    let until = now + 40 * S;
    s.running.insert(
        ids[0],
        Running {
            worker_id: "gone".into(),
            session: 1,
            attempt: 1,
            step: 0,
            failed: false,
            timed_out: false,
            cancel_requested: false,
            failure: None,
            fence: Some(Fence {
                worker_id: "gone".into(),
                reason: LostReason::Expired(Expiry::NoReconnect {
                    worker: "gone".into(),
                }),
                until,
            }),
            restarted: false,
        },
    );
    let plan = decide(&s, now);
    assert!(
        !plan
            .effects
            .iter()
            .any(|e| matches!(e, Effect::LoseBuild { .. })),
        "{:?}",
        plan.effects
    );
    assert_eq!(plan.wake_at, Some(until));
    let plan = decide(&s, until);
    assert!(
        matches!(&plan.effects[..], [Effect::LoseBuild { build, .. }] if *build == ids[0]),
        "{:?}",
        plan.effects
    );
}

/// A worker that went away keeps its build while it may come back: only
/// the reconnect deadline fences it.
#[test]
fn a_reconnecting_worker_keeps_its_build_until_its_deadline() {
    let now = Instant::now();
    let mut s = state(pool_cfg(4));
    let ids = queue(&mut s, 1);
    s.queue.clear();
    add_worker(&mut s, "away", WorkerState::Reconnecting, now, now);
    let w = s.workers.get_mut("away").unwrap();
    w.build = Some(ids[0]);
    w.deadline = Some(now + WINDOW);
    let plan = decide(&s, now);
    assert!(plan.effects.is_empty(), "{:?}", plan.effects);
    let plan = decide(&s, now + WINDOW);
    assert!(
        matches!(&plan.effects[..], [Effect::Fence { build, until, .. }, Effect::Terminate { worker, .. }]
            if *build == ids[0] && worker == "away" && *until == now + LEASE + GRACE),
        "{:?}",
        plan.effects
    );
}

#[test]
fn backoff_waits_and_wakes_when_it_ends() {
    let now = Instant::now();
    let mut s = state(pool_cfg(4));
    s.pools[0].retry_at = Some(now + 5 * S);
    s.pools[0].last_error = Some("failed to reach the daemon".into());
    s.pools[0].last_delay = Duration::from_millis(4500);
    let plan = decide(&s, now);
    assert_eq!(
        plan.wake_at, None,
        "a backoff nobody waits for is no deadline"
    );

    queue(&mut s, 1);
    let plan = decide(&s, now);
    assert_eq!(launches(&plan.effects), 0);
    assert_eq!(
        explained(&plan.effects)[0].wait,
        WaitReason::Backoff {
            pool: "pool".into(),
            error: "failed to reach the daemon".into(),
            retry_after: 4 * S,
        }
    );
    assert_eq!(plan.wake_at, Some(now + 5 * S));
}

#[test]
fn wake_is_the_earliest_pending_deadline() {
    let now = Instant::now();
    let mut s = state(pool_cfg(4));
    // Start deadline in 30s, health check in 7s.
    add_worker(&mut s, "c", WorkerState::Connecting, now, now);
    s.workers.get_mut("c").unwrap().next_health = now + 7 * S;
    // Heartbeat window closes in 12s.
    add_worker(&mut s, "i", WorkerState::Idle, now, now - 18 * S);
    assert_eq!(decide(&s, now).wake_at, Some(now + 7 * S));

    // A health check in flight is no deadline; the heartbeat is next.
    s.workers.get_mut("c").unwrap().health_in_flight = true;
    assert_eq!(decide(&s, now).wake_at, Some(now + 12 * S));

    // What is due now is acted on, not slept for.
    let plan = decide(&s, now + 12 * S);
    assert!(terminated(&plan.effects).contains(&(
        "i",
        &StopReason::Expired(Expiry::MissedHeartbeats {
            worker: "i".into(),
            window: WINDOW
        })
    )));
    assert!(plan.wake_at.is_some_and(|w| w > now + 12 * S));
}

#[test]
fn due_health_check_is_an_effect() {
    let now = Instant::now();
    let mut s = state(pool_cfg(4));
    add_worker(&mut s, "c", WorkerState::Connecting, now, now);
    s.workers.get_mut("c").unwrap().next_health = now;
    let plan = decide(&s, now);
    assert_eq!(
        plan.effects,
        vec![Effect::CheckHealth { worker: "c".into() }]
    );
    assert_eq!(plan.wake_at, Some(now + 30 * S), "then the start deadline");
}

#[test]
fn retried_build_keeps_its_retry_note() {
    let now = Instant::now();
    let mut s = state(pool_cfg(0));
    let ids = queue(&mut s, 1);
    let build = s.builds.get_mut(&ids[0]).unwrap();
    build.attempts.push(Attempt {
        number: 1,
        worker_id: "w".into(),
        pool: "pool".into(),
        state: AttemptState::WorkerLost,
        reason: Some("worker w disconnected".into()),
        started_at: 0,
        finished_at: None,
        steps: Vec::new(),
    });
    let plan = decide(&s, now);
    let status = explained(&plan.effects)[0];
    assert_eq!(
        status.retry,
        Some(Retrying {
            attempt: 1,
            cause: "worker w disconnected".into()
        })
    );
    assert!(status
        .to_string()
        .starts_with("retrying: worker w disconnected — waiting for a free worker"));
}

#[test]
fn unservable_builds_fail() {
    let now = Instant::now();
    let mut s = state(pool_cfg(4));
    let ids = queue(&mut s, 2);
    s.builds.get_mut(&ids[0]).unwrap().labels = vec!["windows".into()];
    s.pools[0].permanent_error = None;
    let plan = decide(&s, now);
    assert_eq!(
        plan.effects[0],
        Effect::Fail {
            build: ids[0],
            reason: Unservable::NoPool {
                labels: vec!["windows".into()]
            }
        }
    );
    s.pools[0].permanent_error = Some("no such image".into());
    let plan = decide(&s, now);
    assert!(plan.effects.contains(&Effect::Fail {
        build: ids[1],
        reason: Unservable::LaunchFailed {
            errors: vec![("pool".into(), "no such image".into())]
        }
    }));
}

#[test]
fn shutdown_keeps_busy_workers_for_the_grace_period() {
    let now = Instant::now();
    let mut s = state(pool_cfg(4));
    queue(&mut s, 1);
    add_worker(&mut s, "busy", WorkerState::Busy, now, now);
    add_worker(&mut s, "idle", WorkerState::Idle, now, now);
    s.workers.get_mut("busy").unwrap().build = Some(7);
    s.shutdown = Some(ShutdownState {
        deadline: now + 10 * S,
        waiters: Vec::new(),
    });
    let plan = decide(&s, now);
    assert_eq!(
        plan.effects,
        vec![Effect::Terminate {
            worker: "idle".into(),
            reason: StopReason::ShuttingDown
        }],
        "no launch or start while shutting down"
    );
    assert_eq!(plan.wake_at, Some(now + 10 * S));

    let plan = decide(&s, now + 10 * S);
    assert!(plan
        .effects
        .starts_with(&[Effect::CancelForShutdown { build: 7 }]));
    assert_eq!(s.builds[&1].state, BuildState::Queued);
}

#[test]
fn queue_position_counts_the_builds_ahead_for_the_same_pool() {
    let mut s = state(pool_cfg(1));
    let ids = queue(&mut s, 3);
    // A build no pool serves neither has a place nor takes one.
    let stray = ids[2] + 1;
    let mut build = s.builds[&ids[0]].clone();
    build.id = stray;
    build.labels = vec!["windows".into()];
    s.builds.insert(stray, build);
    s.queue.insert(1, stray);
    for (i, id) in ids.iter().enumerate() {
        let at = s
            .queue_position(*id)
            .map(|q| (q.pool, q.position, q.queued));
        assert_eq!(at, Some(("pool".to_owned(), i as u32 + 1, 3)), "build {id}");
    }
    assert_eq!(s.queue_position(stray), None);
    // Started: out of the queue, so no position.
    s.queue.retain(|id| *id != ids[0]);
    assert_eq!(s.queue_position(ids[0]), None);
    assert_eq!(s.queue_position(ids[1]).map(|q| q.position), Some(1));
}
