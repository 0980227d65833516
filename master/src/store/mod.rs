//! Persistence: builds, steps, the log index and the instance ledger.

mod check;
mod contract;
mod ids;
mod memory;
mod sqlite;
mod sqlite_builds;
mod sqlite_builds_read;
mod sqlite_ledger;
mod sqlite_rows;
mod sqlite_tokens;
#[cfg(test)]
mod tests;

pub use contract::{Store, StoreError, StoreResult};
pub use memory::MemoryStore;
pub use sqlite::SqliteStore;
