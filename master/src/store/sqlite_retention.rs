//! Retention in SQLite: which finished builds a pass may delete (one
//! query, ranked per builder with a window function over the
//! `builds_by_builder` index), and deleting them (attempts, steps, watches
//! and reports go by `ON DELETE CASCADE`).

use sqlx::sqlite::SqlitePool;

use crate::model::{BuildId, BuildState, ExpiredBuild, RetentionRule};

use super::sqlite_builds::BEGIN_WRITE;
use super::sqlite_rows::{query_err, Cols};
use super::StoreResult;

/// `?1`: finished before (NULL: no age limit); `?2`: builds kept per
/// builder (NULL: no count limit); `?3`: at most this many rows. A build
/// goes only when each limit that is set lets it go.
const EXPIRED: &str = "\
    SELECT id, builder, state, finished FROM ( \
        SELECT id, builder, state, COALESCE(finished_at, created_at) AS finished, \
               ROW_NUMBER() OVER (PARTITION BY builder ORDER BY id DESC) AS newer \
        FROM builds WHERE state NOT IN ('queued', 'running') \
    ) \
    WHERE (?1 IS NULL OR finished < ?1) AND (?2 IS NULL OR newer > ?2) \
    ORDER BY id LIMIT ?3";

/// The state is checked again here: a build that is queued or running now
/// is never deleted, whatever the caller read before.
const DELETE: &str = "DELETE FROM builds WHERE id = ? AND state NOT IN ('queued', 'running')";

pub(super) async fn expired_builds(
    pool: &SqlitePool,
    rule: &RetentionRule,
    limit: u32,
) -> StoreResult<Vec<ExpiredBuild>> {
    if rule.keeps_everything() || limit == 0 {
        return Ok(Vec::new());
    }
    let rows = sqlx::query(EXPIRED)
        .bind(rule.finished_before)
        .bind(rule.keep_last.map(i64::from))
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await
        .map_err(query_err("list the builds retention lets go"))?;
    rows.iter()
        .map(|row| {
            let cols = Cols::new(row, "build");
            let id: BuildId = cols.get("id")?;
            let cols = cols.keyed(format!("build {id}"));
            Ok(ExpiredBuild {
                id,
                builder: cols.get("builder")?,
                state: cols.parsed("state", BuildState::parse)?,
                finished_at: cols.get("finished")?,
            })
        })
        .collect()
}

pub(super) async fn delete_builds(pool: &SqlitePool, ids: &[BuildId]) -> StoreResult<u64> {
    if ids.is_empty() {
        return Ok(0);
    }
    let mut tx = pool
        .begin_with(BEGIN_WRITE)
        .await
        .map_err(query_err("begin deleting builds"))?;
    let mut deleted = 0;
    for id in ids {
        deleted += sqlx::query(DELETE)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(query_err("delete a build"))?
            .rows_affected();
    }
    tx.commit()
        .await
        .map_err(query_err("commit deleted builds"))?;
    Ok(deleted)
}
