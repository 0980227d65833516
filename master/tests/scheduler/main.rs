//! Pool and scheduler behaviour on virtual time (`start_paused`): every
//! test is deterministic and takes no real time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness;

mod backoff;
mod budgets;
mod builds;
mod caps;
mod commit;
mod dispatch;
mod handshake;
mod idle;
mod lost;
mod metrics;
mod reload;
mod results;
mod runner_jit;
mod shutdown;
mod simulate;
mod startup;
mod store_faults;
mod warm;
