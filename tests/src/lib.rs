//! End-to-end helpers: real `burst` and `burst-worker` processes, found and
//! cleaned up through `/proc`, driven over the HTTP API and the CLI.

pub mod api;
pub mod bins;
pub mod chromium;
pub mod cmd;
pub mod db_faults;
pub mod docker_support;
pub mod ec2_harness;
pub mod fake_forge;
pub mod fake_github;
pub mod fake_imds;
pub mod fake_worker;
pub mod fault_proxy;
pub mod fleet_sim;
pub mod git_repo;
pub mod grid_bench;
pub mod master;
pub mod moto;
pub mod procs;
pub mod prometheus;
pub mod sshd;
pub mod toml_text;
pub mod wait;
pub mod wine;

pub use bins::Bins;
pub use burst_master::model::BuildId;
pub use master::{Master, MasterBuilder};
