//! Idempotent submits in SQLite: the key row and the builds it created are
//! written in one transaction, so a key never names builds that were not
//! stored, nor builds stored without their key.

use sqlx::sqlite::SqlitePool;
use sqlx::Row;

use crate::model::{now_millis, BuildId, IdempotencyKey, NewBuild, SubmitOnce, KEY_TTL_MILLIS};

use super::sqlite_builds::{insert_rows, BEGIN_WRITE};
use super::sqlite_rows::query_err;
use super::{StoreError, StoreResult};

pub(super) async fn insert_builds_once(
    pool: &SqlitePool,
    builds: Vec<NewBuild>,
    key: &IdempotencyKey,
) -> StoreResult<SubmitOnce> {
    let now = now_millis();
    let mut tx = pool
        .begin_with(BEGIN_WRITE)
        .await
        .map_err(query_err("begin an idempotent submit"))?;
    sqlx::query("DELETE FROM idempotency_keys WHERE created_at <= ?")
        .bind(now - KEY_TTL_MILLIS)
        .execute(&mut *tx)
        .await
        .map_err(query_err("delete expired idempotency keys"))?;
    let found = sqlx::query(
        "SELECT request_hash, submit_id, build_ids_json FROM idempotency_keys \
         WHERE scope = ? AND key = ?",
    )
    .bind(&key.scope)
    .bind(&key.key)
    .fetch_optional(&mut *tx)
    .await
    .map_err(query_err("read an idempotency key"))?;
    if let Some(row) = found {
        let hash: String = row
            .try_get("request_hash")
            .map_err(query_err("read an idempotency key"))?;
        if hash != key.request_hash {
            return Ok(SubmitOnce::Conflict);
        }
        let submit_id: String = row
            .try_get("submit_id")
            .map_err(query_err("read an idempotency key"))?;
        let ids: String = row
            .try_get("build_ids_json")
            .map_err(query_err("read an idempotency key"))?;
        let builds: Vec<BuildId> = serde_json::from_str(&ids).map_err(|e| StoreError::Corrupt {
            what: "idempotency key",
            detail: format!("build ids {ids:?}: {e}"),
        })?;
        return Ok(SubmitOnce::Replayed { submit_id, builds });
    }
    let submit_id = builds
        .first()
        .map(|b| b.submit_id.clone())
        .unwrap_or_default();
    let inserted = insert_rows(&mut tx, builds).await?;
    let ids: Vec<BuildId> = inserted.iter().map(|b| b.id).collect();
    let ids_json = serde_json::to_string(&ids).map_err(|e| StoreError::Invalid {
        what: "idempotency key".to_owned(),
        detail: e.to_string(),
    })?;
    sqlx::query(
        "INSERT INTO idempotency_keys (scope, key, request_hash, submit_id, build_ids_json, \
         created_at) VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(&key.scope)
    .bind(&key.key)
    .bind(&key.request_hash)
    .bind(&submit_id)
    .bind(&ids_json)
    .bind(now)
    .execute(&mut *tx)
    .await
    .map_err(query_err("save an idempotency key"))?;
    tx.commit()
        .await
        .map_err(query_err("commit an idempotent submit"))?;
    Ok(SubmitOnce::Created(inserted))
}
