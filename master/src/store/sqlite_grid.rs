//! The grid's one query: the builds of each builder's newest submits, as
//! summaries (no attempts or steps), however many builders and cells.

use sqlx::sqlite::{SqlitePool, SqliteRow};

use crate::model::{BuildState, BuildSummary};

use super::sqlite_rows::{query_err, Cols};
use super::StoreResult;

/// A submit's builds are inserted in one transaction, so its first id
/// orders submits; `ROW_NUMBER` per builder keeps the newest
/// `per_builder` of each.
const RECENT_SUBMITS: &str = "\
    WITH submits AS ( \
        SELECT builder, submit_id, MIN(id) AS first_id FROM builds GROUP BY builder, submit_id \
    ), ranked AS ( \
        SELECT submit_id, \
               ROW_NUMBER() OVER (PARTITION BY builder ORDER BY first_id DESC) AS n \
        FROM submits \
    ) \
    SELECT id, submit_id, builder, cell_json, state, reason, created_at, finished_at \
    FROM builds WHERE submit_id IN (SELECT submit_id FROM ranked WHERE n <= ?) \
    ORDER BY id DESC";

pub(super) async fn recent_submits(
    pool: &SqlitePool,
    per_builder: u32,
) -> StoreResult<Vec<BuildSummary>> {
    let rows = sqlx::query(RECENT_SUBMITS)
        .bind(i64::from(per_builder))
        .fetch_all(pool)
        .await
        .map_err(query_err("read the recent submits"))?;
    rows.iter().map(decode).collect()
}

fn decode(row: &SqliteRow) -> StoreResult<BuildSummary> {
    let cols = Cols::new(row, "build");
    let id = cols.get("id")?;
    let cols = cols.keyed(format!("build {id}"));
    Ok(BuildSummary {
        id,
        submit_id: cols.get("submit_id")?,
        builder: cols.get("builder")?,
        cell: cols.json("cell_json")?,
        state: cols.parsed("state", BuildState::parse)?,
        reason: cols.get("reason")?,
        created_at: cols.get("created_at")?,
        finished_at: cols.get("finished_at")?,
    })
}
