//! A pool as `GET /api/v1/pools` and the workers page show it: its caps,
//! what it runs now, and whether it backs off and why.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PoolView {
    pub pool: String,
    /// Provider kind: "local", "docker"...
    pub provider: String,
    pub labels: Vec<String>,
    /// In force now: a warm period (`schedule`) or idle scaling may move
    /// these from the pool's own values.
    pub max_workers: u32,
    pub min_idle: u32,
    /// The `schedule` entry in force (0-based), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warm_period: Option<usize>,
    pub max_starting: u32,
    /// Every worker the scheduler holds for the pool, in any state.
    pub workers: u32,
    /// Launched but not connected yet (launching or connecting).
    pub launching: u32,
    pub idle: u32,
    pub busy: u32,
    /// Queued builds this pool is the one to serve.
    pub queued: u32,
    /// Seconds until the next launch may be tried; absent when not backing off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff_secs: Option<f64>,
    /// Why the last launch failed; cleared when a worker connects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Set when that failure was permanent (builds only this pool serves fail).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permanent_error: Option<String>,
    /// Multi-host providers' hosts and their quarantines.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<HostView>,
    /// The hourly price of the pool's workers in flight now.
    #[serde(default)]
    pub spend_rate: f64,
    /// The budgets that hold this pool's launches: the master's and its own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub budgets: Vec<BudgetView>,
}

/// One budget against its spend, as the pools API and page show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BudgetView {
    /// `global`, or the pool's name.
    pub budget: String,
    /// `day` or `month`.
    pub period: String,
    pub spent: f64,
    pub limit: f64,
    /// `ok`, `warning` (at `warn_at` of the limit) or `reached`.
    pub level: String,
    /// What a waiting build would say, e.g. "budget reached: 40.12 of 40.00
    /// USD today".
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostView {
    pub host: String,
    /// Seconds launches still keep away from it; 0 when healthy.
    pub backoff_secs: f64,
}
