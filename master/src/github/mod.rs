//! Ephemeral GitHub Actions runners on burst's pools (`[github]`): the
//! webhook's `workflow_job` events and a periodic reconcile become runner
//! builds; each runner build's one step runs a just-in-time runner on a
//! fresh worker. See docs/github-actions.md.

mod api;
mod app_key;
mod jit;
mod job;
mod manager;
mod rate;
mod reconcile;

pub use api::{ApiError, Credentials, GithubApi, Scope};
pub use app_key::{app_jwt, read_app_key};
pub use job::{Job, JobEvent};
pub use manager::{parse_runner_name, runner_name, JobOutcome, RunnerManager, RUNNER_STEP};
pub use reconcile::Pass;
