//! A provider for benchmarks and their smoke tests (cargo feature `sim`):
//! its workers are sessions of one fleet-simulator process
//! (`burst-e2e`'s `fleet_sim`), reached over a Unix socket, so one machine
//! can show the master thousands of workers speaking the real protocol.
//! Nothing is started here; the simulator dials the master with each
//! worker's launch token.

mod config;
mod provider;
pub mod wire;

pub use config::SimPoolConfig;
pub use provider::SimProvider;
