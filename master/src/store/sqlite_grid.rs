//! The grid's read: the builds of each builder's newest submits, as
//! summaries (no attempts or steps). One short statement per builder, each
//! a range read off the `(builder, id)` index, so the rows read follow what
//! the grid shows (at most about twice it, plus one per builder), never the
//! length of the history. `store/tests/plans.rs` checks the statements'
//! plans; `bench_ui` times it. (A single recursive statement doing the same
//! walk measured slower: its per-step overhead outweighs 50 statements.)

use sqlx::sqlite::{SqlitePool, SqliteRow};

use crate::model::{BuildState, BuildSummary};

use super::sqlite_rows::{query_err, Cols};
use super::StoreResult;

/// The builders that have builds, skipping down the `builds_by_builder`
/// index: one seek per builder (`SELECT DISTINCT` would read every entry).
pub(super) const BUILDERS: &str = "\
    WITH RECURSIVE names(builder) AS ( \
      SELECT MIN(builder) FROM builds \
      UNION ALL \
      SELECT (SELECT MIN(builder) FROM builds WHERE builder > names.builder) \
      FROM names WHERE names.builder IS NOT NULL) \
    SELECT builder FROM names WHERE builder IS NOT NULL";

/// One page of a builder's builds, newest first, below an id. A submit's
/// builds are inserted in one transaction, so its ids are consecutive and a
/// walk down the ids meets each submit whole, newest submit first.
pub(super) const BUILDER_PAGE: &str = "\
    SELECT id, submit_id, builder, cell_json, state, reason, created_at, finished_at \
    FROM builds WHERE builder = ? AND id < ? ORDER BY id DESC LIMIT ?";

/// The first page of a builder's walk: two cells per submit, plus one row
/// to see the next submit begin; later pages double.
fn first_page(per_builder: u32) -> i64 {
    (i64::from(per_builder) * 2 + 1).clamp(16, 4096)
}

/// Walks each builder's builds down the `(builder, id)` index until it has
/// seen `per_builder` submits: the cost follows what the grid shows, not
/// the length of the history.
pub(super) async fn recent_submits(
    pool: &SqlitePool,
    per_builder: u32,
) -> StoreResult<Vec<BuildSummary>> {
    let mut out = Vec::new();
    if per_builder == 0 {
        return Ok(out);
    }
    let builders: Vec<String> = sqlx::query_scalar(BUILDERS)
        .fetch_all(pool)
        .await
        .map_err(query_err("read the builders of the grid"))?;
    for builder in builders {
        let mut below = i64::MAX;
        let mut submits: Vec<String> = Vec::new();
        let mut page = first_page(per_builder);
        'walk: loop {
            let rows = sqlx::query(BUILDER_PAGE)
                .bind(&builder)
                .bind(below)
                .bind(page)
                .fetch_all(pool)
                .await
                .map_err(query_err("read the recent submits"))?;
            let last_page = (rows.len() as i64) < page;
            page = (page * 2).min(4096);
            for row in &rows {
                let summary = decode(row)?;
                below = summary.id;
                if !submits.contains(&summary.submit_id) {
                    if submits.len() >= per_builder as usize {
                        break 'walk;
                    }
                    submits.push(summary.submit_id.clone());
                }
                out.push(summary);
            }
            if last_page {
                break;
            }
        }
    }
    out.sort_by_key(|s| std::cmp::Reverse(s.id));
    Ok(out)
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
