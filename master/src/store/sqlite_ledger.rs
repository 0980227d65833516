//! The instance ledger in SQLite: one row per worker ever launched.

use sqlx::sqlite::{SqlitePool, SqliteRow};

use crate::cost::WorkerAttempt;
use crate::model::{Instance, InstanceState, Millis};

use super::sqlite_rows::{query_err, Cols};
use super::{StoreError, StoreResult};

const INSTANCE_COLUMNS: &str = "worker_id, pool, provider, provider_id, state, details_json, \
     error, launched_at, connected_at, terminated_at, ended_by, resume_hash, resume_prev_hash";

/// States `InstanceState::is_live` rejects; the contract tests check that
/// both stores agree on every state.
const NOT_LIVE: [InstanceState; 2] = [InstanceState::Gone, InstanceState::Failed];

pub(super) async fn save_instance(pool: &SqlitePool, instance: &Instance) -> StoreResult<()> {
    let details = serde_json::to_string(&instance.details).map_err(|e| StoreError::Invalid {
        what: format!("instance {}", instance.worker_id),
        detail: format!("cannot encode details as JSON: {e}"),
    })?;
    // An upsert, not INSERT OR REPLACE: the row keeps its rowid, which
    // orders instances launched in the same millisecond.
    sqlx::query(
        "INSERT INTO instances (worker_id, pool, provider, provider_id, state, details_json, \
         error, launched_at, connected_at, terminated_at, ended_by, resume_hash, \
         resume_prev_hash) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
         ON CONFLICT (worker_id) DO UPDATE SET pool = excluded.pool, \
         provider = excluded.provider, provider_id = excluded.provider_id, \
         state = excluded.state, details_json = excluded.details_json, \
         error = excluded.error, launched_at = excluded.launched_at, \
         connected_at = excluded.connected_at, terminated_at = excluded.terminated_at, \
         ended_by = excluded.ended_by, resume_hash = excluded.resume_hash, \
         resume_prev_hash = excluded.resume_prev_hash",
    )
    .bind(&instance.worker_id)
    .bind(&instance.pool)
    .bind(&instance.provider)
    .bind(&instance.provider_id)
    .bind(instance.state.as_str())
    .bind(details)
    .bind(&instance.error)
    .bind(instance.launched_at)
    .bind(instance.connected_at)
    .bind(instance.terminated_at)
    .bind(&instance.ended_by)
    .bind(&instance.resume_hash)
    .bind(&instance.resume_prev_hash)
    .execute(pool)
    .await
    .map_err(query_err("save an instance"))?;
    Ok(())
}

pub(super) async fn get_instance(
    pool: &SqlitePool,
    worker_id: &str,
) -> StoreResult<Option<Instance>> {
    let sql = format!("SELECT {INSTANCE_COLUMNS} FROM instances WHERE worker_id = ?");
    let row = sqlx::query(&sql)
        .bind(worker_id)
        .fetch_optional(pool)
        .await
        .map_err(query_err("read an instance"))?;
    row.as_ref().map(decode_instance).transpose()
}

/// Oldest launch first.
pub(super) async fn live_instances(pool: &SqlitePool) -> StoreResult<Vec<Instance>> {
    let sql = format!(
        "SELECT {INSTANCE_COLUMNS} FROM instances WHERE state NOT IN (?, ?) \
         ORDER BY launched_at, rowid"
    );
    let [a, b] = NOT_LIVE;
    let rows = sqlx::query(&sql)
        .bind(a.as_str())
        .bind(b.as_str())
        .fetch_all(pool)
        .await
        .map_err(query_err("read live instances"))?;
    rows.iter().map(decode_instance).collect()
}

/// Newest launch first.
pub(super) async fn list_instances(pool: &SqlitePool, limit: u32) -> StoreResult<Vec<Instance>> {
    let sql = format!(
        "SELECT {INSTANCE_COLUMNS} FROM instances \
         ORDER BY launched_at DESC, rowid DESC LIMIT ?"
    );
    let rows = sqlx::query(&sql)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await
        .map_err(query_err("list instances"))?;
    rows.iter().map(decode_instance).collect()
}

/// Live rows, and rows terminated at or after `since`; oldest first.
pub(super) async fn instances_since(
    pool: &SqlitePool,
    since: Millis,
) -> StoreResult<Vec<Instance>> {
    let sql = format!(
        "SELECT {INSTANCE_COLUMNS} FROM instances \
         WHERE terminated_at IS NULL OR terminated_at >= ? ORDER BY launched_at, rowid"
    );
    let rows = sqlx::query(&sql)
        .bind(since)
        .fetch_all(pool)
        .await
        .map_err(query_err("read the instances of a cost window"))?;
    rows.iter().map(decode_instance).collect()
}

/// One index seek per worker (`attempts_by_worker`), then its build by id.
pub(crate) const ATTEMPTS_ON: &str =
    "SELECT a.build_id, b.builder, b.labels_json, a.worker_id, a.started_at, a.finished_at \
     FROM attempts a JOIN builds b ON b.id = a.build_id \
     WHERE a.worker_id IN (SELECT value FROM json_each(?)) ORDER BY a.started_at";

/// The attempts that ran on `workers`, through `attempts_by_worker`.
pub(super) async fn attempts_on(
    pool: &SqlitePool,
    workers: &[String],
) -> StoreResult<Vec<WorkerAttempt>> {
    let ids = serde_json::to_string(workers).map_err(|e| StoreError::Invalid {
        what: "worker ids".into(),
        detail: e.to_string(),
    })?;
    let rows = sqlx::query(ATTEMPTS_ON)
        .bind(ids)
        .fetch_all(pool)
        .await
        .map_err(query_err("read the attempts of a cost window"))?;
    rows.iter()
        .map(|row| {
            let cols = Cols::new(row, "attempt");
            Ok(WorkerAttempt {
                build: cols.get("build_id")?,
                builder: cols.get("builder")?,
                labels: cols.json("labels_json")?,
                worker_id: cols.get("worker_id")?,
                started_at: cols.get("started_at")?,
                finished_at: cols.get("finished_at")?,
            })
        })
        .collect()
}

fn decode_instance(row: &SqliteRow) -> StoreResult<Instance> {
    let cols = Cols::new(row, "instance");
    let worker_id: String = cols.get("worker_id")?;
    let cols = cols.keyed(format!("instance {worker_id}"));
    Ok(Instance {
        pool: cols.get("pool")?,
        provider: cols.get("provider")?,
        provider_id: cols.get("provider_id")?,
        state: cols.parsed("state", InstanceState::parse)?,
        details: cols.json("details_json")?,
        error: cols.get("error")?,
        launched_at: cols.get("launched_at")?,
        connected_at: cols.get("connected_at")?,
        terminated_at: cols.get("terminated_at")?,
        ended_by: cols.get("ended_by")?,
        resume_hash: cols.get("resume_hash")?,
        resume_prev_hash: cols.get("resume_prev_hash")?,
        worker_id,
    })
}
