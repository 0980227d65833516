//! Persistence: builds, steps, the log index and the instance ledger.

mod contract;

pub use contract::{Store, StoreError, StoreResult};
