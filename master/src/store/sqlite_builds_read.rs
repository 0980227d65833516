//! Reading builds back from SQLite with their attempts and steps: one
//! query per table, whatever the number of builds.

use std::collections::HashMap;

use sqlx::sqlite::{SqliteConnection, SqlitePool, SqliteRow};

use crate::model::{
    Attempt, AttemptState, Build, BuildId, BuildQuery, BuildState, StepRun, StepState,
};

use super::sqlite_rows::{query_err, Cols};
use super::{StoreError, StoreResult};

const BUILD_COLUMNS: &str = "id, submit_id, builder, cell_json, params_json, labels_json, \
     steps_json, state, reason, retries, created_at, started_at, finished_at, submitted_by";

pub(super) async fn get_build(pool: &SqlitePool, id: BuildId) -> StoreResult<Option<Build>> {
    let sql = format!("SELECT {BUILD_COLUMNS} FROM builds WHERE id = ?");
    let builds = load_builds(pool, sqlx::query(&sql).bind(id)).await?;
    Ok(builds.into_iter().next())
}

pub(super) async fn list_builds(pool: &SqlitePool, limit: u32) -> StoreResult<Vec<Build>> {
    let sql = format!("SELECT {BUILD_COLUMNS} FROM builds ORDER BY id DESC LIMIT ?");
    load_builds(pool, sqlx::query(&sql).bind(i64::from(limit))).await
}

/// The filters as SQL: only the clauses asked for, so SQLite can walk the
/// index that fits (`builds_by_builder`, `builds_by_state`,
/// `builds_by_submitter`, or the id itself) downwards from `before` and
/// stop at `limit`. Labels live in a JSON array, checked per row.
pub(super) async fn query_builds(pool: &SqlitePool, q: &BuildQuery) -> StoreResult<Vec<Build>> {
    let sql = query_sql(q);
    let mut query = sqlx::query(&sql).bind(q.before.unwrap_or(BuildId::MAX));
    if let Some(builder) = &q.builder {
        query = query.bind(builder);
    }
    if let Some(state) = q.state {
        query = query.bind(state.as_str());
    }
    if let Some(submitter) = &q.submitter {
        query = query.bind(submitter);
    }
    if let Some(label) = &q.label {
        query = query.bind(label);
    }
    load_builds(pool, query.bind(i64::from(q.limit))).await
}

/// `query_builds`' statement; its binds follow in this order: `before`,
/// builder, state, submitter, label, limit.
pub(super) fn query_sql(q: &BuildQuery) -> String {
    let mut sql = format!("SELECT {BUILD_COLUMNS} FROM builds WHERE id < ?");
    for (given, clause) in [
        (q.builder.is_some(), " AND builder = ?"),
        (q.state.is_some(), " AND state = ?"),
        (q.submitter.is_some(), " AND submitted_by = ?"),
        (
            q.label.is_some(),
            " AND EXISTS (SELECT 1 FROM json_each(labels_json) WHERE value = ?)",
        ),
    ] {
        if given {
            sql.push_str(clause);
        }
    }
    sql.push_str(" ORDER BY id DESC LIMIT ?");
    sql
}

pub(super) async fn unfinished_builds(pool: &SqlitePool) -> StoreResult<Vec<Build>> {
    let sql = format!("SELECT {BUILD_COLUMNS} FROM builds WHERE state IN (?, ?) ORDER BY id");
    let query = sqlx::query(&sql)
        .bind(BuildState::Queued.as_str())
        .bind(BuildState::Running.as_str());
    load_builds(pool, query).await
}

type SqliteQuery<'q> = sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>;

/// Runs a query over `builds` and fills in the attempts and steps of what it
/// returned, all in one read transaction so the three agree.
async fn load_builds(pool: &SqlitePool, query: SqliteQuery<'_>) -> StoreResult<Vec<Build>> {
    let mut tx = pool
        .begin()
        .await
        .map_err(query_err("begin reading builds"))?;
    let rows = query
        .fetch_all(&mut *tx)
        .await
        .map_err(query_err("read builds"))?;
    let mut builds = rows
        .iter()
        .map(decode_build)
        .collect::<StoreResult<Vec<_>>>()?;
    load_attempts(&mut tx, &mut builds).await?;
    tx.commit()
        .await
        .map_err(query_err("finish reading builds"))?;
    Ok(builds)
}

/// Loads the attempts and steps of `builds` with one query each.
async fn load_attempts(conn: &mut SqliteConnection, builds: &mut [Build]) -> StoreResult<()> {
    if builds.is_empty() {
        return Ok(());
    }
    // The ids travel as one JSON array bind, so no statement grows with the
    // number of builds and SQLite's limit on binds never applies.
    let ids = builds
        .iter()
        .map(|b| b.id.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let ids = format!("[{ids}]");
    let position: HashMap<BuildId, usize> =
        builds.iter().enumerate().map(|(i, b)| (b.id, i)).collect();

    let rows = sqlx::query(
        "SELECT build_id, number, worker_id, pool, state, reason, started_at, finished_at \
         FROM attempts WHERE build_id IN (SELECT value FROM json_each(?)) \
         ORDER BY build_id, number",
    )
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await
    .map_err(query_err("read attempts"))?;
    for row in &rows {
        let (build_id, attempt) = decode_attempt(row)?;
        let build = position.get(&build_id).and_then(|&i| builds.get_mut(i));
        let build = build.ok_or_else(|| stray("attempt", build_id, attempt.number))?;
        build.attempts.push(attempt);
    }

    let rows = sqlx::query(
        "SELECT build_id, attempt, idx, name, state, exit_code, signal, error, started_at, \
         duration_ms, log_bytes FROM steps WHERE build_id IN (SELECT value FROM json_each(?)) \
         ORDER BY build_id, attempt, idx",
    )
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await
    .map_err(query_err("read steps"))?;
    for row in &rows {
        let (build_id, number, step) = decode_step(row)?;
        let attempt = position
            .get(&build_id)
            .and_then(|&i| builds.get_mut(i))
            .and_then(|b| b.attempts.iter_mut().find(|a| a.number == number));
        let attempt = attempt.ok_or_else(|| stray("step", build_id, number))?;
        attempt.steps.push(step);
    }
    Ok(())
}

/// A child row whose parent was not loaded: the foreign keys should make
/// this impossible.
fn stray(what: &'static str, build_id: BuildId, attempt: u32) -> StoreError {
    StoreError::Corrupt {
        what,
        detail: format!("build {build_id} attempt {attempt} has no parent row"),
    }
}

fn decode_build(row: &SqliteRow) -> StoreResult<Build> {
    let cols = Cols::new(row, "build");
    let id: BuildId = cols.get("id")?;
    let cols = cols.keyed(format!("build {id}"));
    Ok(Build {
        id,
        submit_id: cols.get("submit_id")?,
        builder: cols.get("builder")?,
        cell: cols.json("cell_json")?,
        params: cols.json("params_json")?,
        labels: cols.json("labels_json")?,
        steps: cols.json("steps_json")?,
        state: cols.parsed("state", BuildState::parse)?,
        reason: cols.get("reason")?,
        retries: cols.u32("retries")?,
        created_at: cols.get("created_at")?,
        started_at: cols.get("started_at")?,
        finished_at: cols.get("finished_at")?,
        attempts: Vec::new(),
        submitted_by: cols.get("submitted_by")?,
    })
}

fn decode_attempt(row: &SqliteRow) -> StoreResult<(BuildId, Attempt)> {
    let cols = Cols::new(row, "attempt");
    let build_id: BuildId = cols.get("build_id")?;
    let number = cols.u32("number")?;
    let cols = cols.keyed(format!("build {build_id} attempt {number}"));
    let attempt = Attempt {
        number,
        worker_id: cols.get("worker_id")?,
        pool: cols.get("pool")?,
        state: cols.parsed("state", AttemptState::parse)?,
        reason: cols.get("reason")?,
        started_at: cols.get("started_at")?,
        finished_at: cols.get("finished_at")?,
        steps: Vec::new(),
    };
    Ok((build_id, attempt))
}

fn decode_step(row: &SqliteRow) -> StoreResult<(BuildId, u32, StepRun)> {
    let cols = Cols::new(row, "step");
    let build_id: BuildId = cols.get("build_id")?;
    let attempt = cols.u32("attempt")?;
    let index = cols.u32("idx")?;
    let cols = cols.keyed(format!("build {build_id} attempt {attempt} step {index}"));
    let step = StepRun {
        index,
        name: cols.get("name")?,
        state: cols.parsed("state", StepState::parse)?,
        exit_code: cols.opt_i32("exit_code")?,
        signal: cols.opt_i32("signal")?,
        error: cols.get("error")?,
        started_at: cols.get("started_at")?,
        duration_ms: cols.opt_u64("duration_ms")?,
        log_bytes: cols.u64("log_bytes")?,
    };
    Ok((build_id, attempt, step))
}
