use async_trait::async_trait;

use crate::cost::WorkerAttempt;
use crate::model::{
    Build, BuildId, BuildQuery, BuildSummary, ExpiredBuild, IdempotencyKey, Instance, Millis,
    NewBuild, RetentionRule, SubmitOnce, TokenRecord,
};

/// Errors from the store, written as "failed to …" fragments.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("failed to open the database at {path}")]
    Open {
        path: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("failed to apply database migrations to {path}")]
    Migrate {
        path: String,
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    #[error(
        "failed to open the database at {path}: it has schema version {found}, newer than the \
         {known} this burst knows (written by a newer burst?); upgrade burst or restore a backup"
    )]
    NewerSchema {
        path: String,
        found: i64,
        known: i64,
    },
    #[error("failed to open the database at {path}: it is corrupt ({detail}); restore a backup or move it away")]
    Damaged { path: String, detail: String },
    #[error("failed to {action}")]
    Query {
        action: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("failed to decode {what} from the database: {detail}")]
    Corrupt { what: &'static str, detail: String },
    /// A record the schema cannot hold, e.g. an attempt listed twice or a
    /// byte count past `i64::MAX`. Checked the same way by every store.
    #[error("failed to save {what}: {detail}")]
    Invalid { what: String, detail: String },
    /// `save_build` on an id `insert_builds` never gave out.
    #[error("failed to save build {0}: no such build")]
    UnknownBuild(BuildId),
}

impl StoreError {
    /// A fault of the database or its filesystem (full, read-only, corrupt,
    /// gone), which may pass: worth retrying. `Invalid` and `UnknownBuild`
    /// are refusals that no retry changes.
    pub fn is_fault(&self) -> bool {
        !matches!(
            self,
            StoreError::Invalid { .. } | StoreError::UnknownBuild(_)
        )
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// What the master persists. `SqliteStore` is the real one; `MemoryStore`
/// backs the scheduler's virtual-time tests, where a database thread would
/// let tokio's paused clock jump.
#[async_trait]
pub trait Store: super::TriggerStore + Send + Sync + 'static {
    /// This master's stable id, created on first use. Tags every resource.
    async fn master_id(&self) -> StoreResult<String>;

    /// A small write that proves the store takes writes again.
    async fn probe(&self) -> StoreResult<()>;

    /// Gives each build an id and stores it queued; ids grow.
    async fn insert_builds(&self, builds: Vec<NewBuild>) -> StoreResult<Vec<Build>>;

    /// `insert_builds` at most once per key within `KEY_TTL_MILLIS`: a
    /// repeat of the same request returns what the first one created, a
    /// repeat with another request is a conflict; neither stores anything.
    async fn insert_builds_once(
        &self,
        builds: Vec<NewBuild>,
        key: &IdempotencyKey,
    ) -> StoreResult<SubmitOnce>;

    /// Writes a build with its attempts and steps, replacing what was stored.
    async fn save_build(&self, build: &Build) -> StoreResult<()>;

    /// `save_build` for several builds in one transaction: all are saved or
    /// none (the scheduler's group commit of one turn).
    async fn save_builds(&self, builds: &[&Build]) -> StoreResult<()>;

    async fn get_build(&self, id: BuildId) -> StoreResult<Option<Build>>;

    /// The newest builds first, at most `limit`.
    async fn list_builds(&self, limit: u32) -> StoreResult<Vec<Build>>;

    /// The newest builds that pass `query`'s filters, below its `before`
    /// id, at most its `limit`: the builds list of the API and the UI, over
    /// the whole history.
    async fn query_builds(&self, query: &BuildQuery) -> StoreResult<Vec<Build>>;

    /// Builds still queued or running, oldest first: the work to resume at
    /// startup.
    async fn unfinished_builds(&self) -> StoreResult<Vec<Build>>;

    /// Every build of each builder's `per_builder` newest submits (a
    /// submit's builds are inserted together, so its first id orders it),
    /// as summaries, newest build first: the grid, reading about what it shows whatever the history.
    async fn recent_submits(&self, per_builder: u32) -> StoreResult<Vec<BuildSummary>>;

    /// Finished builds that `rule` lets go, oldest first, at most `limit`:
    /// never a queued or running one; none when the rule keeps everything.
    async fn expired_builds(
        &self,
        rule: &RetentionRule,
        limit: u32,
    ) -> StoreResult<Vec<ExpiredBuild>>;

    /// Deletes these builds with their attempts, steps and what hangs off
    /// them (watches, reports). A queued or running build among them is
    /// left alone, whatever the caller thought. Returns how many went.
    async fn delete_builds(&self, ids: &[BuildId]) -> StoreResult<u64>;

    /// Inserts or replaces one ledger row.
    async fn save_instance(&self, instance: &Instance) -> StoreResult<()>;

    /// One worker's ledger row.
    async fn get_instance(&self, worker_id: &str) -> StoreResult<Option<Instance>>;

    /// Ledger rows that may still exist at a provider.
    async fn live_instances(&self) -> StoreResult<Vec<Instance>>;

    /// The newest ledger rows first, at most `limit`.
    async fn list_instances(&self, limit: u32) -> StoreResult<Vec<Instance>>;

    /// Ledger rows that ran at or after `since`: still live, or terminated
    /// then or later (what budgets and cost reports count), oldest first.
    async fn instances_since(&self, since: Millis) -> StoreResult<Vec<Instance>>;

    /// Every attempt that ran on one of `workers`, with its build's builder
    /// and labels (what cost attribution splits a worker's bill over).
    async fn attempts_on(&self, workers: &[String]) -> StoreResult<Vec<WorkerAttempt>>;

    /// Stores a new API token; false (and nothing stored) when its name is
    /// taken.
    async fn insert_token(&self, token: &TokenRecord) -> StoreResult<bool>;

    /// The token whose value hashes to `hash`.
    async fn token_by_hash(&self, hash: &str) -> StoreResult<Option<TokenRecord>>;

    /// Every token, by name.
    async fn list_tokens(&self) -> StoreResult<Vec<TokenRecord>>;

    /// Deletes a token; false when there was none of that name.
    async fn revoke_token(&self, name: &str) -> StoreResult<bool>;
}
