//! The work the list and grid statements do, bounded without timing: their
//! SQLite query plans reach `builds` only through an index (a `SEARCH`),
//! never by reading the whole table (a `SCAN`), so their cost follows what
//! they return, not the length of the history.

use sqlx::SqlitePool;

use crate::model::{BuildQuery, BuildState};
use crate::store::sqlite_builds_read::query_sql;
use crate::store::sqlite_grid::{BUILDERS, BUILDER_PAGE};
use crate::store::sqlite_ledger::ATTEMPTS_ON;
use crate::store::SqliteStore;

/// `EXPLAIN QUERY PLAN` of `sql` with `binds` placeholders, one line per
/// step (`SEARCH builds USING INDEX …`, `SCAN names`, …).
async fn plan(pool: &SqlitePool, sql: &str, binds: usize) -> Vec<String> {
    let explain = format!("EXPLAIN QUERY PLAN {sql}");
    let mut query = sqlx::query_as::<_, (i64, i64, i64, String)>(&explain);
    for _ in 0..binds {
        query = query.bind(1_i64);
    }
    query
        .fetch_all(pool)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, _, _, detail)| detail)
        .collect()
}

/// Steps that read `builds` whole (its table or a whole index of it).
fn scans_of_builds(plan: &[String]) -> Vec<&String> {
    plan.iter()
        .filter(|l| l.starts_with("SCAN builds"))
        .collect()
}

async fn open() -> (tempfile::TempDir, SqliteStore, SqlitePool) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    let pool = SqlitePool::connect(&format!(
        "sqlite://{}",
        dir.path().join(SqliteStore::DB_FILE).display()
    ))
    .await
    .unwrap();
    (dir, store, pool)
}

#[tokio::test]
async fn grid_plan_walks_indexes() {
    let (_dir, store, pool) = open().await;
    let builders = plan(&pool, BUILDERS, 0).await;
    assert!(scans_of_builds(&builders).is_empty(), "{builders:#?}");
    assert!(
        builders
            .iter()
            .any(|l| l.contains("USING COVERING INDEX builds_by_builder (builder>?)")),
        "the builders are found by seeking the index, one each: {builders:#?}"
    );
    let page = plan(&pool, BUILDER_PAGE, 3).await;
    assert_eq!(
        page.len(),
        1,
        "one index range, no sort or temp table: {page:#?}"
    );
    assert!(
        page[0].starts_with("SEARCH builds USING INDEX builds_by_builder (builder=? AND")
            && page[0].contains("id<?"),
        "a builder's page is a range of the (builder, id) index: {page:#?}"
    );
    pool.close().await;
    store.close().await;
}

#[tokio::test]
async fn filtered_lists_walk_an_index() {
    let (_dir, store, pool) = open().await;
    let q = |f: fn(&mut BuildQuery)| {
        let mut q = BuildQuery::default();
        f(&mut q);
        q
    };
    for (query, index) in [
        (q(|q| q.builder = Some("b".into())), "builds_by_builder"),
        (q(|q| q.state = Some(BuildState::Failed)), "builds_by_state"),
        (q(|q| q.submitter = Some("s".into())), "builds_by_submitter"),
    ] {
        let sql = query_sql(&query);
        let plan = plan(&pool, &sql, sql.matches('?').count()).await;
        assert!(scans_of_builds(&plan).is_empty(), "{query:?}: {plan:#?}");
        assert!(
            plan.iter().any(|l| l.contains(index)),
            "{query:?} should use {index}: {plan:#?}"
        );
        assert!(
            !plan.iter().any(|l| l.contains("TEMP B-TREE")),
            "{query:?} sorts instead of walking the index in order: {plan:#?}"
        );
    }
    pool.close().await;
    store.close().await;
}

#[tokio::test]
async fn a_workers_attempts_are_found_by_index_not_by_reading_every_attempt() {
    let (_dir, store, pool) = open().await;
    let explain = format!("EXPLAIN QUERY PLAN {ATTEMPTS_ON}");
    let plan: Vec<String> = sqlx::query_as::<_, (i64, i64, i64, String)>(&explain)
        .bind("[\"w-1\"]")
        .fetch_all(&pool)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, _, _, detail)| detail)
        .collect();
    assert!(
        plan.iter()
            .any(|l| l.starts_with("SEARCH a USING INDEX attempts_by_worker (worker_id=?)")),
        "{plan:#?}"
    );
    assert!(!plan.iter().any(|l| l.starts_with("SCAN a")), "{plan:#?}");
    assert!(scans_of_builds(&plan).is_empty(), "{plan:#?}");
    pool.close().await;
    store.close().await;
}
