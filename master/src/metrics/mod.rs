//! `GET /metrics`: what the master counts and how it is exposed. Recording
//! happens here only: decorators around the provider and the store, one
//! call per event from the scheduler, and the fleet's gauges computed from
//! the scheduler's state at scrape time (so they cannot drift).

mod families;
mod fleet;
mod github;
mod labels;
mod provider;
mod store;
#[cfg(test)]
mod tests;
mod triggers;

pub use families::{accrued_cost, Metrics, CONTENT_TYPE};
pub use fleet::{BudgetFleet, Fleet, HostFleet, PoolFleet};
pub use labels::{BuildResult, LaunchFailure, Operation};
pub use provider::MeteredProvider;
pub use store::MeteredStore;
