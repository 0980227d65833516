//! The real store: one SQLite file in the state dir, WAL mode, versioned
//! migrations embedded in the binary.

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::model::{Build, BuildId, Instance, NewBuild, TokenRecord};

use super::ids::new_master_id;
use super::sqlite_rows::query_err;
use super::{
    sqlite_builds, sqlite_builds_read, sqlite_ledger, sqlite_tokens, Store, StoreError, StoreResult,
};

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
        MIGRATOR.run(&pool).await.map_err(StoreError::Migrate)?;
        Ok(SqliteStore { pool })
    }

    /// Waits for every connection to close, checkpointing the WAL.
    pub async fn close(&self) {
        self.pool.close().await;
    }
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

    async fn insert_builds(&self, builds: Vec<NewBuild>) -> StoreResult<Vec<Build>> {
        sqlite_builds::insert_builds(&self.pool, builds).await
    }

    async fn save_build(&self, build: &Build) -> StoreResult<()> {
        sqlite_builds::save_build(&self.pool, build).await
    }

    async fn get_build(&self, id: BuildId) -> StoreResult<Option<Build>> {
        sqlite_builds_read::get_build(&self.pool, id).await
    }

    async fn list_builds(&self, limit: u32) -> StoreResult<Vec<Build>> {
        sqlite_builds_read::list_builds(&self.pool, limit).await
    }

    async fn unfinished_builds(&self) -> StoreResult<Vec<Build>> {
        sqlite_builds_read::unfinished_builds(&self.pool).await
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
