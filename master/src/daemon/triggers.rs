//! Wiring of the trigger hub, the git pollers and the reporters: what the
//! daemon starts beside the scheduler when the config has sources.

use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::LiveConfig;
use crate::metrics::Metrics;
use crate::reporters::{spawn_reporters, ReporterSettings};
use crate::scheduler::SchedulerHandle;
use crate::store::Store;
use crate::triggers::{
    spawn_pollers, spawn_schedules, Hooks, Hub, SourceStatus, Submitter, SystemClock,
};

/// The webhook handlers' state, and the tasks to let run.
pub(super) struct Started {
    pub(super) hooks: Hooks,
    pub(super) tasks: Vec<JoinHandle<()>>,
}

pub(super) fn start(
    live: LiveConfig,
    store: Arc<dyn Store>,
    scheduler: SchedulerHandle,
    metrics: Arc<Metrics>,
    build_url: String,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<Started> {
    let submitter: Arc<dyn Submitter> = Arc::new(scheduler);
    let status = Arc::new(SourceStatus::default());
    // Sources, rules, schedules and reporters are fixed at start
    // (`config/fixed.rs`); builders are read from the config in force.
    let config = live.get();
    let (hub, hub_handle) = Hub::new(
        live.clone(),
        store.clone(),
        submitter.clone(),
        metrics.clone(),
    );
    let mut tasks = vec![tokio::spawn(hub.run())];
    tasks.extend(spawn_pollers(
        &config,
        store.clone(),
        hub_handle.clone(),
        status.clone(),
        metrics.clone(),
        stop.clone(),
    ));
    tasks.extend(spawn_schedules(
        &live,
        store.clone(),
        submitter.clone(),
        metrics.clone(),
        Arc::new(SystemClock),
        stop.clone(),
    ));
    tasks.extend(spawn_reporters(
        config.clone(),
        store.clone(),
        metrics.clone(),
        ReporterSettings::new(build_url),
        stop,
    )?);
    Ok(Started {
        hooks: Hooks {
            config: live,
            store,
            hub: hub_handle,
            submitter,
            metrics,
            status,
            runners: None,
        },
        tasks,
    })
}
