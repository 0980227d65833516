//! The policies `--compare anchors` runs: the config as written, and
//! emulations of what rival systems do, each as burst pool settings. Every
//! emulation keeps the pool's labels, `max_workers` (the rival's instance
//! cap), start timeout and backoff; docs/simulate.md says where each one
//! differs from the original.

use std::time::Duration;

use crate::config::{Pattern, PoolConfig, WarmPeriod};

#[derive(Debug, Clone, PartialEq)]
pub enum Policy {
    /// The pools as the config file sets them.
    AsConfigured,
    /// Buildbot latent workers (master/buildbot/worker/latent.py):
    /// `build_wait_timeout` is how long a substantiated worker waits idle
    /// before it is insubstantiated (default 600 s); 0 stops it after every
    /// build. No spares, and every latent worker substantiates on its own.
    BuildbotWait(Duration),
    /// GitLab Runner's taskscaler (`[[runners.autoscaler.policy]]`, with
    /// `capacity_per_instance = 1`): `idle_count` idle instances kept,
    /// `idle_time` before an instance above them goes, and `scale_factor`
    /// (capped by `scale_factor_limit`) spares per instance in use.
    Taskscaler {
        idle_count: u32,
        idle_time: Duration,
        scale_factor: f64,
        scale_factor_limit: Option<u32>,
    },
    /// terraform-aws-github-runner with `enable_ephemeral_runners`: one job
    /// per runner, then the instance goes; `idle_config` keeps `idleCount`
    /// runners waiting while its cron matches. A runner is not scaled down
    /// before `minimum_running_time_in_minutes`.
    Ephemeral {
        idle_count: u32,
        /// Five-field cron (the module's own cron has a seconds field).
        cron: &'static str,
        min_running: Duration,
    },
}

impl Policy {
    pub fn name(&self) -> String {
        match self {
            Policy::AsConfigured => "burst (config)".into(),
            Policy::BuildbotWait(d) => format!("buildbot build_wait_timeout={}", d.as_secs()),
            Policy::Taskscaler {
                idle_count,
                idle_time,
                scale_factor,
                ..
            } => format!(
                "gitlab idle_count={idle_count} idle_time={}m scale_factor={scale_factor}",
                idle_time.as_secs() / 60
            ),
            Policy::Ephemeral { idle_count, .. } => {
                format!("gh-runner ephemeral idle_config idleCount={idle_count}")
            }
        }
    }

    /// The pool settings that emulate the policy for `pool`.
    pub fn apply(&self, pool: &PoolConfig) -> PoolConfig {
        let mut p = pool.clone();
        if *self == Policy::AsConfigured {
            return p;
        }
        // What burst adds and the rivals lack: none of it carries over.
        p.min_idle = 0;
        p.schedule = Vec::new();
        p.idle_scale_factor = 0.0;
        p.idle_scale_limit = None;
        p.max_builds = 0;
        match *self {
            Policy::AsConfigured => {}
            Policy::BuildbotWait(wait) => {
                // Each latent worker substantiates independently.
                p.max_starting = p.max_workers;
                if wait.is_zero() {
                    p.max_builds = 1;
                } else {
                    p.idle_timeout = wait.into();
                }
            }
            Policy::Taskscaler {
                idle_count,
                idle_time,
                scale_factor,
                scale_factor_limit,
            } => {
                p.min_idle = idle_count;
                p.idle_timeout = idle_time.into();
                p.idle_scale_factor = scale_factor;
                p.idle_scale_limit = scale_factor_limit;
            }
            Policy::Ephemeral {
                idle_count,
                cron,
                min_running,
            } => {
                p.max_builds = 1;
                p.idle_timeout = min_running.into();
                p.schedule = vec![WarmPeriod {
                    periods: vec![Pattern::new(cron)],
                    timezone: Ok(chrono_tz::UTC),
                    min_idle: idle_count,
                    max_workers: None,
                    warmup: Duration::ZERO,
                }];
            }
        }
        p
    }
}

/// The set `--compare anchors` runs, the config's own policy first. The
/// rivals' values are their defaults or their documentation's examples.
pub fn anchors() -> Vec<Policy> {
    vec![
        Policy::AsConfigured,
        Policy::BuildbotWait(Duration::ZERO),
        Policy::BuildbotWait(Duration::from_secs(600)),
        Policy::Taskscaler {
            idle_count: 2,
            idle_time: Duration::from_secs(20 * 60),
            scale_factor: 0.0,
            scale_factor_limit: None,
        },
        Policy::Taskscaler {
            idle_count: 1,
            idle_time: Duration::from_secs(20 * 60),
            scale_factor: 0.5,
            scale_factor_limit: Some(10),
        },
        Policy::Ephemeral {
            idle_count: 2,
            cron: "* 9-17 * * mon-fri",
            min_running: Duration::from_secs(5 * 60),
        },
    ]
}

#[cfg(test)]
mod tests;
