//! `TriggerStore` in SQLite: webhook deliveries, poller heads, watched
//! builds and the report outbox (migration 0006).

use std::collections::BTreeMap;

use async_trait::async_trait;
use sqlx::sqlite::SqliteRow;

use super::super::sqlite_rows::{query_err, Cols};
use super::super::{StoreError, StoreResult, TriggerStore, DELIVERY_TTL_MILLIS};
use super::SqliteStore;
use crate::model::{BuildId, BuildState, GithubJob, Millis, Report, ScheduleRun, WatchedBuild};

const REPORT_COLUMNS: &str =
    "id, reporter, build_id, state, created_at, attempts, next_at, delivered_at, last_error, gave_up";

#[async_trait]
impl TriggerStore for SqliteStore {
    async fn record_delivery(
        &self,
        source: &str,
        delivery: &str,
        now: Millis,
    ) -> StoreResult<bool> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(query_err("record a webhook delivery"))?;
        sqlx::query("DELETE FROM hook_deliveries WHERE received_at < ?")
            .bind(now.saturating_sub(DELIVERY_TTL_MILLIS))
            .execute(&mut *tx)
            .await
            .map_err(query_err("forget old webhook deliveries"))?;
        let done = sqlx::query(
            "INSERT OR IGNORE INTO hook_deliveries (source, delivery, received_at) VALUES (?, ?, ?)",
        )
        .bind(source)
        .bind(delivery)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(query_err("record a webhook delivery"))?;
        tx.commit()
            .await
            .map_err(query_err("record a webhook delivery"))?;
        Ok(done.rows_affected() == 1)
    }

    async fn source_heads(&self, source: &str) -> StoreResult<BTreeMap<String, String>> {
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT branch, revision FROM source_heads WHERE source = ?")
                .bind(source)
                .fetch_all(&self.pool)
                .await
                .map_err(query_err("read a source's heads"))?;
        Ok(rows.into_iter().collect())
    }

    async fn save_source_head(
        &self,
        source: &str,
        branch: &str,
        revision: &str,
        now: Millis,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO source_heads (source, branch, revision, seen_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (source, branch) DO UPDATE SET revision = excluded.revision, \
             seen_at = excluded.seen_at",
        )
        .bind(source)
        .bind(branch)
        .bind(revision)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(query_err("save a source's head"))?;
        Ok(())
    }

    async fn watch_builds(&self, source: &str, builds: &[BuildId]) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(query_err("watch builds"))?;
        for id in builds {
            sqlx::query("INSERT OR IGNORE INTO watched_builds (build_id, source) VALUES (?, ?)")
                .bind(id)
                .bind(source)
                .execute(&mut *tx)
                .await
                .map_err(query_err("watch builds"))?;
        }
        tx.commit().await.map_err(query_err("watch builds"))?;
        Ok(())
    }

    async fn watched_builds(&self) -> StoreResult<Vec<WatchedBuild>> {
        let rows: Vec<(BuildId, String, Option<String>)> = sqlx::query_as(
            "SELECT build_id, source, last_state FROM watched_builds \
             WHERE last_state IS NULL OR last_state IN ('queued', 'running') ORDER BY build_id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("list watched builds"))?;
        rows.into_iter()
            .map(|(build_id, source, last)| {
                let last_state = last
                    .map(|s| {
                        BuildState::parse(&s).ok_or_else(|| StoreError::Corrupt {
                            what: "watched build",
                            detail: format!("build {build_id}: unknown state {s:?}"),
                        })
                    })
                    .transpose()?;
                Ok(WatchedBuild {
                    build_id,
                    source,
                    last_state,
                })
            })
            .collect()
    }

    async fn enqueue_reports(
        &self,
        build: BuildId,
        state: BuildState,
        reporters: &[String],
        now: Millis,
    ) -> StoreResult<()> {
        let action = "queue build reports";
        let mut tx = self.pool.begin().await.map_err(query_err(action))?;
        sqlx::query("UPDATE watched_builds SET last_state = ? WHERE build_id = ?")
            .bind(state.as_str())
            .bind(build)
            .execute(&mut *tx)
            .await
            .map_err(query_err(action))?;
        insert_reports(&mut tx, reporters, build, state, now, action).await?;
        tx.commit().await.map_err(query_err(action))?;
        Ok(())
    }

    async fn watch_submit(
        &self,
        submit_id: &str,
        source: &str,
        reporters: &[String],
        now: Millis,
    ) -> StoreResult<()> {
        let action = "watch a submit";
        let names = serde_json::to_string(reporters).map_err(|e| StoreError::Invalid {
            what: "a watched submit's reporters".into(),
            detail: e.to_string(),
        })?;
        sqlx::query(
            "INSERT OR REPLACE INTO watched_submits (submit_id, source, reporters, created_at) \
             VALUES (?, ?, ?, ?)",
        )
        .bind(submit_id)
        .bind(source)
        .bind(names)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(query_err(action))?;
        Ok(())
    }

    async fn due_reports(&self, now: Millis, limit: u32) -> StoreResult<Vec<Report>> {
        let sql = format!(
            "SELECT {REPORT_COLUMNS} FROM report_outbox \
             WHERE delivered_at IS NULL AND gave_up = 0 AND next_at <= ? ORDER BY id LIMIT ?"
        );
        let rows = sqlx::query(&sql)
            .bind(now)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(query_err("list due reports"))?;
        rows.iter().map(decode_report).collect()
    }

    async fn save_report(&self, report: &Report) -> StoreResult<()> {
        sqlx::query(
            "UPDATE report_outbox SET attempts = ?, next_at = ?, delivered_at = ?, \
             last_error = ?, gave_up = ? WHERE id = ?",
        )
        .bind(i64::from(report.attempts))
        .bind(report.next_at)
        .bind(report.delivered_at)
        .bind(&report.last_error)
        .bind(i64::from(report.gave_up))
        .bind(report.id)
        .execute(&self.pool)
        .await
        .map_err(query_err("save a report"))?;
        Ok(())
    }

    async fn build_reports(&self, build: BuildId) -> StoreResult<Vec<Report>> {
        let sql =
            format!("SELECT {REPORT_COLUMNS} FROM report_outbox WHERE build_id = ? ORDER BY id");
        let rows = sqlx::query(&sql)
            .bind(build)
            .fetch_all(&self.pool)
            .await
            .map_err(query_err("list a build's reports"))?;
        rows.iter().map(decode_report).collect()
    }

    async fn schedule_run(&self, name: &str) -> StoreResult<Option<ScheduleRun>> {
        let row: Option<(Millis, Option<String>)> =
            sqlx::query_as("SELECT ran_at, revision FROM schedule_runs WHERE name = ?")
                .bind(name)
                .fetch_optional(&self.pool)
                .await
                .map_err(query_err("read a schedule's last run"))?;
        Ok(row.map(|(at, revision)| ScheduleRun { at, revision }))
    }

    async fn save_schedule_run(&self, name: &str, run: &ScheduleRun) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO schedule_runs (name, ran_at, revision) VALUES (?, ?, ?) \
             ON CONFLICT (name) DO UPDATE SET ran_at = excluded.ran_at, revision = excluded.revision",
        )
        .bind(name)
        .bind(run.at)
        .bind(&run.revision)
        .execute(&self.pool)
        .await
        .map_err(query_err("save a schedule's last run"))?;
        Ok(())
    }

    async fn save_github_job(&self, job: &GithubJob) -> StoreResult<()> {
        sqlx::query(
            "INSERT OR REPLACE INTO github_jobs (job_id, repo, run_id, name, status, conclusion, \
             launched_build, ran_build, runner_name, html_url, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(job.job_id)
        .bind(&job.repo)
        .bind(job.run_id)
        .bind(&job.name)
        .bind(&job.status)
        .bind(&job.conclusion)
        .bind(job.launched_build)
        .bind(job.ran_build)
        .bind(&job.runner_name)
        .bind(&job.html_url)
        .bind(job.updated_at)
        .execute(&self.pool)
        .await
        .map_err(query_err("save a GitHub job"))?;
        Ok(())
    }

    async fn github_job(&self, job_id: i64) -> StoreResult<Option<GithubJob>> {
        let row = sqlx::query(&format!("{GITHUB_JOB_SELECT} WHERE job_id = ?"))
            .bind(job_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(query_err("read a GitHub job"))?;
        row.as_ref().map(decode_github_job).transpose()
    }

    async fn github_jobs_of_build(&self, build: BuildId) -> StoreResult<Vec<GithubJob>> {
        let rows = sqlx::query(&format!(
            "{GITHUB_JOB_SELECT} WHERE launched_build = ? OR ran_build = ? ORDER BY job_id"
        ))
        .bind(build)
        .bind(build)
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("read a build's GitHub jobs"))?;
        rows.iter().map(decode_github_job).collect()
    }
}

const GITHUB_JOB_SELECT: &str = "SELECT job_id, repo, run_id, name, status, conclusion, \
     launched_build, ran_build, runner_name, html_url, updated_at FROM github_jobs";

fn decode_github_job(row: &SqliteRow) -> StoreResult<GithubJob> {
    use sqlx::Row;
    fn read_job(source: sqlx::Error) -> StoreError {
        StoreError::Query {
            action: "read a GitHub job",
            source,
        }
    }
    Ok(GithubJob {
        job_id: row.try_get("job_id").map_err(read_job)?,
        repo: row.try_get("repo").map_err(read_job)?,
        run_id: row.try_get("run_id").map_err(read_job)?,
        name: row.try_get("name").map_err(read_job)?,
        status: row.try_get("status").map_err(read_job)?,
        conclusion: row.try_get("conclusion").map_err(read_job)?,
        launched_build: row.try_get("launched_build").map_err(read_job)?,
        ran_build: row.try_get("ran_build").map_err(read_job)?,
        runner_name: row.try_get("runner_name").map_err(read_job)?,
        html_url: row.try_get("html_url").map_err(read_job)?,
        updated_at: row.try_get("updated_at").map_err(read_job)?,
    })
}

fn decode_report(row: &SqliteRow) -> StoreResult<Report> {
    let cols = Cols::new(row, "report");
    let id: i64 = cols.get("id")?;
    let cols = cols.keyed(format!("report {id}"));
    let gave_up: i64 = cols.get("gave_up")?;
    Ok(Report {
        id,
        reporter: cols.get("reporter")?,
        build_id: cols.get("build_id")?,
        state: cols.parsed("state", BuildState::parse)?,
        created_at: cols.get("created_at")?,
        attempts: cols.u32("attempts")?,
        next_at: cols.get("next_at")?,
        delivered_at: cols.get("delivered_at")?,
        last_error: cols.get("last_error")?,
        gave_up: gave_up != 0,
    })
}

/// `watched_submits` rows read once per submit id within one insert: a
/// batch of 1,000 builds shares one submit id, so one lookup.
#[derive(Default)]
pub(in crate::store) struct WatchedSubmits {
    seen: std::collections::HashMap<String, Option<(String, String)>>,
}

impl WatchedSubmits {
    async fn of(
        &mut self,
        conn: &mut sqlx::SqliteConnection,
        submit_id: &str,
    ) -> StoreResult<Option<(String, String)>> {
        if let Some(hit) = self.seen.get(submit_id) {
            return Ok(hit.clone());
        }
        let row: Option<(String, String)> =
            sqlx::query_as("SELECT source, reporters FROM watched_submits WHERE submit_id = ?")
                .bind(submit_id)
                .fetch_optional(&mut *conn)
                .await
                .map_err(query_err("watch an inserted build"))?;
        self.seen.insert(submit_id.to_owned(), row.clone());
        Ok(row)
    }
}

/// In the insert's transaction: a build of a watched submit is watched
/// from now on, and its first state queued.
pub(in crate::store) async fn watch_inserted(
    conn: &mut sqlx::SqliteConnection,
    build: &crate::model::Build,
    watched: &mut WatchedSubmits,
    now: Millis,
) -> StoreResult<()> {
    let action = "watch an inserted build";
    let Some((source, reporters)) = watched.of(conn, &build.submit_id).await? else {
        return Ok(());
    };
    sqlx::query(
        "INSERT OR IGNORE INTO watched_builds (build_id, source, reporters) VALUES (?, ?, ?)",
    )
    .bind(build.id)
    .bind(source)
    .bind(reporters)
    .execute(&mut *conn)
    .await
    .map_err(query_err(action))?;
    queue_transition(conn, build.id, build.state, now).await
}

/// In the save's transaction: a watched build whose state is not the one
/// last queued gets a row per reporter, so each transition is in the
/// outbox exactly once, in order.
pub(in crate::store) async fn queue_transition(
    conn: &mut sqlx::SqliteConnection,
    build: BuildId,
    state: BuildState,
    now: Millis,
) -> StoreResult<()> {
    let action = "queue a build's state for its reporters";
    let moved: Option<(String,)> = sqlx::query_as(
        "UPDATE watched_builds SET last_state = ?1 \
         WHERE build_id = ?2 AND last_state IS NOT ?1 RETURNING reporters",
    )
    .bind(state.as_str())
    .bind(build)
    .fetch_optional(&mut *conn)
    .await
    .map_err(query_err(action))?;
    let Some((reporters,)) = moved else {
        return Ok(());
    };
    let reporters: Vec<String> =
        serde_json::from_str(&reporters).map_err(|e| StoreError::Corrupt {
            what: "a watched build's reporters",
            detail: format!("build {build}: {e}"),
        })?;
    insert_reports(conn, &reporters, build, state, now, action).await
}

/// One outbox row per reporter for `build` in `state`, due now; a row
/// already queued for that state stays as it is.
async fn insert_reports(
    conn: &mut sqlx::SqliteConnection,
    reporters: &[String],
    build: BuildId,
    state: BuildState,
    now: Millis,
    action: &'static str,
) -> StoreResult<()> {
    for reporter in reporters {
        sqlx::query(
            "INSERT OR IGNORE INTO report_outbox (reporter, build_id, state, created_at, next_at) \
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(reporter)
        .bind(build)
        .bind(state.as_str())
        .bind(now)
        .bind(now)
        .execute(&mut *conn)
        .await
        .map_err(query_err(action))?;
    }
    Ok(())
}
