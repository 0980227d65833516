//! Building blocks that master, worker and providers must agree on, kept in
//! one small crate with no async runtime and no heavy dependencies so that
//! `burst-worker` can link it.

pub mod backoff;
pub mod cert_pin;
pub mod env_policy;
pub mod error_chain;
pub mod host_slots;
pub mod launch_env;
pub mod windows_quote;
