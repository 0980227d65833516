//! Persistence: builds, steps, the log index and the instance ledger.

mod check;
mod contract;
mod health;
mod ids;
mod memory;
mod sqlite;
mod sqlite_builds;
mod sqlite_builds_read;
mod sqlite_grid;
mod sqlite_idempotency;
mod sqlite_ledger;
mod sqlite_retention;
mod sqlite_rows;
mod sqlite_tokens;
#[cfg(test)]
mod tests;
mod trigger_contract;

pub use contract::{Store, StoreError, StoreResult};
pub use health::StoreHealth;
pub use memory::MemoryStore;
pub use sqlite::SqliteStore;
pub use trigger_contract::{TriggerStore, DELIVERY_TTL_MILLIS};
