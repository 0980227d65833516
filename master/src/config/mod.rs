//! Loading and checking the master's configuration, and expanding a submit
//! into builds.

mod artifacts;
mod caches;
mod cost;
mod embedded;
mod error;
mod expand;
mod fixed;
mod github;
mod labels;
mod live;
mod load;
mod locate;
mod matrix;
mod params;
mod pool;
#[cfg(test)]
mod provider_tests;
mod reporters;
mod retention;
mod schedules;
mod schema;
mod secrets;
#[cfg(test)]
mod secrets_tests;
mod simulate;
mod sources;
mod tls;
mod validate;
mod warm;

pub use artifacts::{ArtifactsConfig, S3Config, StepArtifacts, DEFAULT_MAX_BUILD_BYTES};
pub use caches::{cache_volumes, volume_name, CacheConfig, CacheKind};
pub use cost::{BillingConfig, BudgetConfig, PoolBudget, Teardown};
pub use embedded::{embedded_default, EMBEDDED_NAME, EMBEDDED_TOML};
pub use error::{ConfigError, Origin, Problem, SubmitError};
pub use expand::expand_submit;
pub use fixed::fixed_changes;
pub use github::{
    is_repo_name, GithubConfig, RunnerEntry, DEFAULT_RUNNER_COMMAND,
    DEFAULT_RUNNER_COMMAND_WINDOWS, GITHUB_API_URL, RUNNER_BUILDER,
};
pub use labels::pool_for_labels;
pub use live::LiveConfig;
#[cfg(test)]
pub(crate) use load::load_str_with_secret_env;
pub use load::{env_overrides, load_file, load_file_with_env, load_str, ENV_PREFIX, ENV_SEPARATOR};
pub use pool::PoolConfig;
pub use reporters::{ReporterConfig, ReporterKind, GITHUB_API, GITLAB_API};
pub use retention::RetentionConfig;
pub use schedules::ScheduleConfig;
pub use schema::*;
pub use secrets::{SecretConfig, Secrets, MAX_SECRET_LEN, MIN_SECRET_LEN};
pub use simulate::{BootTime, Rfc3339, SimPoolConfig, SimulateConfig};
pub use sources::{EventFilter, RuleConfig, SourceConfig, SourceKind, DEFAULT_POLL_INTERVAL};
pub use tls::{TlsConfig, SELF_SIGNED};
pub use validate::{validate, SHELLS};
pub use warm::{Pattern, WarmPeriod};
