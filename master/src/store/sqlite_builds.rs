//! Writing builds to SQLite. A build is one `builds` row plus its
//! `attempts` and `steps` rows, and it is always written whole, in one
//! transaction. `sqlite_builds_read` reads them back.

use serde::Serialize;
use sqlx::sqlite::{SqliteConnection, SqlitePool};

use crate::model::{now_millis, Attempt, Build, NewBuild};

use super::check::{check_build, db_int};
use super::sqlite_rows::query_err;
use super::{StoreError, StoreResult};

/// Write transactions take the write lock up front, so they wait on the busy
/// timeout instead of failing when another writer got there first.
pub(super) const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";

/// The JSON columns of a build, encoded before any statement runs.
struct BuildJson {
    cell: String,
    params: String,
    labels: String,
    steps: String,
}

impl BuildJson {
    fn encode(build: &Build) -> StoreResult<Self> {
        Ok(BuildJson {
            cell: to_json(build, "cell", &build.cell)?,
            params: to_json(build, "params", &build.params)?,
            labels: to_json(build, "labels", &build.labels)?,
            steps: to_json(build, "steps", &build.steps)?,
        })
    }
}

fn to_json<T: Serialize>(build: &Build, field: &str, value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Invalid {
        what: format!("build {}", build.id),
        detail: format!("cannot encode {field} as JSON: {e}"),
    })
}

pub(super) async fn insert_builds(
    pool: &SqlitePool,
    builds: Vec<NewBuild>,
) -> StoreResult<Vec<Build>> {
    if builds.is_empty() {
        return Ok(Vec::new());
    }
    let mut tx = pool
        .begin_with(BEGIN_WRITE)
        .await
        .map_err(query_err("begin inserting builds"))?;
    let inserted = insert_rows(&mut tx, builds).await?;
    tx.commit()
        .await
        .map_err(query_err("commit inserted builds"))?;
    Ok(inserted)
}

/// Inserts builds inside the caller's write transaction.
pub(super) async fn insert_rows(
    conn: &mut SqliteConnection,
    builds: Vec<NewBuild>,
) -> StoreResult<Vec<Build>> {
    let created_at = now_millis();
    let mut watched = super::sqlite::triggers::WatchedSubmits::default();
    let mut inserted = Vec::with_capacity(builds.len());
    for new in builds {
        // Id 0 is a placeholder until SQLite assigns the real one.
        let mut build = new.into_build(0, created_at);
        let json = BuildJson::encode(&build)?;
        let result = sqlx::query(
            "INSERT INTO builds (submit_id, builder, cell_json, params_json, labels_json, \
             steps_json, state, reason, retries, created_at, started_at, finished_at, \
             submitted_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&build.submit_id)
        .bind(&build.builder)
        .bind(&json.cell)
        .bind(&json.params)
        .bind(&json.labels)
        .bind(&json.steps)
        .bind(build.state.as_str())
        .bind(&build.reason)
        .bind(i64::from(build.retries))
        .bind(build.created_at)
        .bind(build.started_at)
        .bind(build.finished_at)
        .bind(&build.submitted_by)
        .execute(&mut *conn)
        .await
        .map_err(query_err("insert a build"))?;
        build.id = result.last_insert_rowid();
        super::sqlite::triggers::watch_inserted(&mut *conn, &build, &mut watched, created_at)
            .await?;
        inserted.push(build);
    }
    Ok(inserted)
}

pub(super) async fn save_build(pool: &SqlitePool, build: &Build) -> StoreResult<()> {
    save_builds(pool, &[build]).await
}

/// Saves every build in one transaction: checked and encoded before it
/// begins, rolled back whole if any statement fails.
pub(super) async fn save_builds(pool: &SqlitePool, builds: &[&Build]) -> StoreResult<()> {
    if builds.is_empty() {
        return Ok(());
    }
    let mut encoded = Vec::with_capacity(builds.len());
    for build in builds {
        check_build(build)?;
        encoded.push((*build, BuildJson::encode(build)?));
    }
    let mut tx = pool
        .begin_with(BEGIN_WRITE)
        .await
        .map_err(query_err("begin saving a build"))?;
    let now = now_millis();
    for (build, json) in &encoded {
        save_in(&mut tx, build, json, now).await?;
    }
    tx.commit().await.map_err(query_err("commit a saved build"))
}

/// One build's rows, inside the caller's write transaction.
async fn save_in(
    conn: &mut SqliteConnection,
    build: &Build,
    json: &BuildJson,
    now: crate::model::Millis,
) -> StoreResult<()> {
    let updated = sqlx::query(
        "UPDATE builds SET submit_id = ?, builder = ?, cell_json = ?, params_json = ?, \
         labels_json = ?, steps_json = ?, state = ?, reason = ?, retries = ?, created_at = ?, \
         started_at = ?, finished_at = ?, submitted_by = ? WHERE id = ?",
    )
    .bind(&build.submit_id)
    .bind(&build.builder)
    .bind(&json.cell)
    .bind(&json.params)
    .bind(&json.labels)
    .bind(&json.steps)
    .bind(build.state.as_str())
    .bind(&build.reason)
    .bind(i64::from(build.retries))
    .bind(build.created_at)
    .bind(build.started_at)
    .bind(build.finished_at)
    .bind(&build.submitted_by)
    .bind(build.id)
    .execute(&mut *conn)
    .await
    .map_err(query_err("update a build"))?;
    if updated.rows_affected() == 0 {
        // The caller drops the transaction, which rolls back.
        return Err(StoreError::UnknownBuild(build.id));
    }
    // Replacing is simpler than diffing; steps go with their attempts.
    sqlx::query("DELETE FROM attempts WHERE build_id = ?")
        .bind(build.id)
        .execute(&mut *conn)
        .await
        .map_err(query_err("delete a build's attempts"))?;
    for attempt in &build.attempts {
        insert_attempt(&mut *conn, build, attempt).await?;
    }
    super::sqlite::triggers::queue_transition(&mut *conn, build.id, build.state, now).await
}

async fn insert_attempt(
    conn: &mut SqliteConnection,
    build: &Build,
    attempt: &Attempt,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO attempts (build_id, number, worker_id, pool, state, reason, started_at, \
         finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(build.id)
    .bind(i64::from(attempt.number))
    .bind(&attempt.worker_id)
    .bind(&attempt.pool)
    .bind(attempt.state.as_str())
    .bind(&attempt.reason)
    .bind(attempt.started_at)
    .bind(attempt.finished_at)
    .execute(&mut *conn)
    .await
    .map_err(query_err("insert an attempt"))?;
    for step in &attempt.steps {
        let duration_ms = step
            .duration_ms
            .map(|d| db_int(build, "duration_ms", d))
            .transpose()?;
        sqlx::query(
            "INSERT INTO steps (build_id, attempt, idx, name, state, exit_code, signal, error, \
             started_at, duration_ms, log_bytes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(build.id)
        .bind(i64::from(attempt.number))
        .bind(i64::from(step.index))
        .bind(&step.name)
        .bind(step.state.as_str())
        .bind(step.exit_code)
        .bind(step.signal)
        .bind(&step.error)
        .bind(step.started_at)
        .bind(duration_ms)
        .bind(db_int(build, "log_bytes", step.log_bytes)?)
        .execute(&mut *conn)
        .await
        .map_err(query_err("insert a step"))?;
    }
    Ok(())
}
