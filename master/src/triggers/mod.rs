//! Builds that start from code: webhooks (`hooks.rs` and a parser per
//! forge), git pollers (`poller.rs`), and the rules that turn a change into
//! builds (`rules.rs`, `stable.rs`, run by the one `hub.rs` actor).

mod change;
mod changed_paths;
mod github;
mod gitlab;
mod glob;
mod hooks;
mod hub;
#[cfg(test)]
mod hub_tests;
mod ls_remote;
#[cfg(test)]
mod parse_tests;
mod poller;
mod rules;
mod schedule;
#[cfg(test)]
mod schedule_tests;
mod signature;
pub(crate) mod source_params;
mod stable;
mod status;

pub use change::{Change, Event};
pub use glob::glob_problem;
pub use hooks::{routes, Hooks};
pub use hub::{Hub, HubHandle, Outcome, Submitter};
pub use poller::spawn_pollers;
pub use schedule::{spawn_schedules, SystemClock, WallClock};
pub use signature::github_signature;
pub use source_params::{BRANCH, EVENT, PR, REPO, REPO_URL, REVISION, SOURCE_PARAMS};
pub use status::SourceStatus;
