//! End-to-end tests: real `burst` and `burst-worker` processes on loopback.
//! Build the binaries first: `cargo build --workspace --bins` (scripts/test
//! does it). One module per topic.

mod artifacts;
mod auth;
mod batch;
mod bench_smoke;
mod caches;
mod cancel;
mod checkout;
mod config;
mod cost;
mod docker;
mod ec2;
mod github_runners;
mod idempotency;
mod launch_token;
mod limits;
mod logs;
mod master_crash;
mod matrix;
mod metrics;
mod packaging;
mod params;
mod quickstart;
mod reload;
mod retention;
mod secrets;
mod shutdown;
mod simulate;
mod ssh;
mod store_faults;
mod storm;
mod submit;
mod timeout;
mod tls;
mod triggers;
mod ui;
mod ui_browser;
mod windows;
mod worker_lost;
mod workspace;
