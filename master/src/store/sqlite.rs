//! The real store: one SQLite file in the state dir, WAL mode, versioned
//! migrations embedded in the binary.

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use burst_common::error_chain::Chain;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::cost::WorkerAttempt;
use crate::model::{
    now_millis, Build, BuildId, BuildQuery, BuildSummary, ExpiredBuild, IdempotencyKey, Instance,
    Millis, NewBuild, RetentionRule, SubmitOnce, TokenRecord,
};

use super::ids::new_master_id;
use super::sqlite_rows::query_err;
use super::{
    sqlite_builds, sqlite_builds_read, sqlite_grid, sqlite_idempotency, sqlite_ledger,
    sqlite_retention, sqlite_tokens, Store, StoreError, StoreResult,
};

pub(super) mod triggers;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Readers run beside the one writer WAL allows; a few are plenty.
const MAX_CONNECTIONS: u32 = 4;

/// How long a statement waits for another connection's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// The database's file name inside the state dir.
    pub const DB_FILE: &'static str = "burst.db";

    /// Opens (creating if needed) `<state_dir>/burst.db` and brings its
    /// schema up to date.
    pub async fn open(state_dir: &Path) -> StoreResult<Self> {
        let path = state_dir.join(Self::DB_FILE);
        let open_err = |source| StoreError::Open {
            path: path.display().to_string(),
            source,
        };
        tokio::fs::create_dir_all(state_dir)
            .await
            .map_err(|e| open_err(sqlx::Error::Io(e)))?;
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL under WAL loses at most the last commits on power loss,
            // never consistency; FULL would fsync every step update.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .connect_with(options)
            .await
            .map_err(open_err)?;
        let display = path.display().to_string();
        check_integrity(&pool, &display).await?;
        MIGRATOR.run(&pool).await.map_err(|source| match source {
            sqlx::migrate::MigrateError::VersionMissing(found) => StoreError::NewerSchema {
                path: display.clone(),
                found,
                known: MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0),
            },
            source => StoreError::Migrate {
                path: display.clone(),
                source,
            },
        })?;
        let store = SqliteStore { pool };
        // A read-only file or filesystem opens fine and fails at the first
        // write: find out now, not when a build finishes.
        store.probe().await.map_err(|e| match e {
            StoreError::Query { source, .. } => open_err(source),
            e => e,
        })?;
        Ok(store)
    }

    /// Checkpoints the WAL into the database, then waits for every
    /// connection to close: a clean stop leaves one self-contained file.
    pub async fn close(&self) {
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&self.pool)
            .await
        {
            tracing::warn!(error = %Chain(&e), "failed to checkpoint the database's WAL");
        }
        self.pool.close().await;
    }
}

/// `PRAGMA quick_check`: a truncated or overwritten file is refused at
/// start instead of failing reads later (it reads every page once).
async fn check_integrity(pool: &SqlitePool, path: &str) -> StoreResult<()> {
    let damaged = |detail: String| StoreError::Damaged {
        path: path.to_owned(),
        detail,
    };
    let rows: Vec<String> = sqlx::query_scalar("PRAGMA quick_check")
        .fetch_all(pool)
        .await
        .map_err(|e| damaged(e.to_string()))?;
    if rows.len() == 1 && rows[0] == "ok" {
        return Ok(());
    }
    Err(damaged(rows.join("; ")))
}

const MASTER_ID_KEY: &str = "master_id";

async fn read_master_id(pool: &SqlitePool) -> StoreResult<Option<String>> {
    sqlx::query_scalar("SELECT value FROM meta WHERE key = ?")
        .bind(MASTER_ID_KEY)
        .fetch_optional(pool)
        .await
        .map_err(query_err("read the master id"))
}

#[async_trait]
impl Store for SqliteStore {
    async fn master_id(&self) -> StoreResult<String> {
        if let Some(id) = read_master_id(&self.pool).await? {
            return Ok(id);
        }
        // A concurrent caller (or another process) may insert first; OR
        // IGNORE keeps its id and the re-read returns the winner.
        sqlx::query("INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)")
            .bind(MASTER_ID_KEY)
            .bind(new_master_id())
            .execute(&self.pool)
            .await
            .map_err(query_err("create the master id"))?;
        read_master_id(&self.pool)
            .await?
            .ok_or(StoreError::Corrupt {
                what: "master id",
                detail: "the row vanished right after it was written".to_string(),
            })
    }

    async fn probe(&self) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO meta (key, value) VALUES ('probed_at', ?) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(now_millis().to_string())
        .execute(&self.pool)
        .await
        .map_err(query_err("write to the database"))?;
        Ok(())
    }

    async fn insert_builds(&self, builds: Vec<NewBuild>) -> StoreResult<Vec<Build>> {
        sqlite_builds::insert_builds(&self.pool, builds).await
    }

    async fn insert_builds_once(
        &self,
        builds: Vec<NewBuild>,
        key: &IdempotencyKey,
    ) -> StoreResult<SubmitOnce> {
        sqlite_idempotency::insert_builds_once(&self.pool, builds, key).await
    }

    async fn save_build(&self, build: &Build) -> StoreResult<()> {
        sqlite_builds::save_build(&self.pool, build).await
    }

    async fn save_builds(&self, builds: &[&Build]) -> StoreResult<()> {
        sqlite_builds::save_builds(&self.pool, builds).await
    }

    async fn get_build(&self, id: BuildId) -> StoreResult<Option<Build>> {
        sqlite_builds_read::get_build(&self.pool, id).await
    }

    async fn list_builds(&self, limit: u32) -> StoreResult<Vec<Build>> {
        sqlite_builds_read::list_builds(&self.pool, limit).await
    }

    async fn query_builds(&self, query: &BuildQuery) -> StoreResult<Vec<Build>> {
        sqlite_builds_read::query_builds(&self.pool, query).await
    }

    async fn unfinished_builds(&self) -> StoreResult<Vec<Build>> {
        sqlite_builds_read::unfinished_builds(&self.pool).await
    }

    async fn recent_submits(&self, per_builder: u32) -> StoreResult<Vec<BuildSummary>> {
        sqlite_grid::recent_submits(&self.pool, per_builder).await
    }

    async fn expired_builds(
        &self,
        rule: &RetentionRule,
        limit: u32,
    ) -> StoreResult<Vec<ExpiredBuild>> {
        sqlite_retention::expired_builds(&self.pool, rule, limit).await
    }

    async fn delete_builds(&self, ids: &[BuildId]) -> StoreResult<u64> {
        sqlite_retention::delete_builds(&self.pool, ids).await
    }

    async fn save_instance(&self, instance: &Instance) -> StoreResult<()> {
        sqlite_ledger::save_instance(&self.pool, instance).await
    }

    async fn get_instance(&self, worker_id: &str) -> StoreResult<Option<Instance>> {
        sqlite_ledger::get_instance(&self.pool, worker_id).await
    }

    async fn live_instances(&self) -> StoreResult<Vec<Instance>> {
        sqlite_ledger::live_instances(&self.pool).await
    }

    async fn list_instances(&self, limit: u32) -> StoreResult<Vec<Instance>> {
        sqlite_ledger::list_instances(&self.pool, limit).await
    }

    async fn instances_since(&self, since: Millis) -> StoreResult<Vec<Instance>> {
        sqlite_ledger::instances_since(&self.pool, since).await
    }

    async fn attempts_on(&self, workers: &[String]) -> StoreResult<Vec<WorkerAttempt>> {
        sqlite_ledger::attempts_on(&self.pool, workers).await
    }

    async fn insert_token(&self, token: &TokenRecord) -> StoreResult<bool> {
        sqlite_tokens::insert_token(&self.pool, token).await
    }

    async fn token_by_hash(&self, hash: &str) -> StoreResult<Option<TokenRecord>> {
        sqlite_tokens::token_by_hash(&self.pool, hash).await
    }

    async fn list_tokens(&self) -> StoreResult<Vec<TokenRecord>> {
        sqlite_tokens::list_tokens(&self.pool).await
    }

    async fn revoke_token(&self, name: &str) -> StoreResult<bool> {
        sqlite_tokens::revoke_token(&self.pool, name).await
    }
}
