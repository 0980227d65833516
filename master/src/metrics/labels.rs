//! Label sets. Every value is bounded: pool and builder names come from the
//! config, the rest are enums. No build or worker id is ever a label.

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};

use crate::model::BuildState;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct BuilderLabels {
    pub builder: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct CacheLabels {
    pub builder: String,
    /// `hit` (the key itself), `partial` (a restore key's prefix), `miss`.
    pub result: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct FinishedLabels {
    pub builder: String,
    pub result: BuildResult,
}

/// A budget: `global` or a pool's name, and its window (`day`, `month`).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct BudgetLabels {
    pub budget: String,
    pub period: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct PoolLabels {
    pub pool: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct PoolProviderLabels {
    pub pool: String,
    pub provider: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct LaunchFailureLabels {
    pub pool: String,
    pub provider: String,
    pub reason: LaunchFailure,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct ProviderCallLabels {
    pub pool: String,
    pub provider: String,
    pub operation: Operation,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct ProviderErrorLabels {
    pub pool: String,
    pub provider: String,
    pub operation: Operation,
    pub reason: LaunchFailure,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct StoreLabels {
    pub operation: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct WorkerStateLabels {
    pub pool: String,
    pub state: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct HostLabels {
    pub pool: String,
    pub host: String,
}

/// How a build ended: its final state.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum BuildResult {
    succeeded,
    failed,
    timed_out,
    cancelled,
    worker_lost,
}

impl BuildResult {
    /// None for a build that has not finished.
    pub fn of(state: BuildState) -> Option<Self> {
        Some(match state {
            BuildState::Queued | BuildState::Running => return None,
            BuildState::Succeeded => Self::succeeded,
            BuildState::Failed => Self::failed,
            BuildState::TimedOut => Self::timed_out,
            BuildState::Cancelled => Self::cancelled,
            BuildState::WorkerLost => Self::worker_lost,
        })
    }
}

/// Why a provider call failed: retrying helps, or it does not.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum LaunchFailure {
    transient,
    permanent,
}

impl From<burst_providers::ErrorKind> for LaunchFailure {
    fn from(kind: burst_providers::ErrorKind) -> Self {
        match kind {
            burst_providers::ErrorKind::Transient => Self::transient,
            burst_providers::ErrorKind::Permanent => Self::permanent,
        }
    }
}

/// A `Provider` trait method.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum Operation {
    launch,
    terminate,
    list,
    health,
}
