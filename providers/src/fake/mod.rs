//! A provider for tests (cargo feature `fake`): its workers are whatever the
//! test attaches as a [`FakeWorld`]. Registered like every other provider,
//! so it is also the worked example of docs/adding-a-provider.md.

mod config;
mod provider;

pub use config::FakePoolConfig;
pub use provider::{Behaviour, FakeProvider, FakeWorker, FakeWorld};
