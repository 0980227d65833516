//! What workers cost: prices and billing rules recorded in the ledger,
//! instance cost from launch to terminated, each build's fair share
//! (`attribution.rs`), the `burst cost` report and budget windows. Pure: the
//! scheduler, the API and the simulator all compute cost with these
//! functions, from ledger rows and attempts.

pub mod attribution;
pub mod billing;
pub mod budget;
#[cfg(test)]
pub(crate) mod fixtures;
pub mod report;

pub use attribution::{attribute, Attribution, BuildCost, PoolCost, WorkerAttempt};
pub use billing::{Billing, Priced};
