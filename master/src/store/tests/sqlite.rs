//! What only the SQLite store can show: persistence across reopen, the
//! migrations, the pragmas, and corrupt rows read back as errors.

use std::path::Path;

use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqlitePool};
use sqlx::Connection;

use crate::model::{BuildState, InstanceState};
use crate::store::{SqliteStore, Store, StoreError};

use super::fixtures::{instance, new_build, with_two_attempts};

/// A second, independent connection to the store's file.
async fn raw_pool(dir: &Path) -> SqlitePool {
    let options = SqliteConnectOptions::new().filename(dir.join(SqliteStore::DB_FILE));
    SqlitePool::connect_with(options).await.unwrap()
}

#[tokio::test]
async fn master_id_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    let id = store.master_id().await.unwrap();
    store.close().await;
    drop(store);

    let store = SqliteStore::open(dir.path()).await.unwrap();
    assert_eq!(store.master_id().await.unwrap(), id);
}

#[tokio::test]
async fn concurrent_callers_agree_on_the_master_id() {
    let dir = tempfile::tempdir().unwrap();
    let a = SqliteStore::open(dir.path()).await.unwrap();
    let b = SqliteStore::open(dir.path()).await.unwrap();
    let calls = (0..8).map(|i| {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        tokio::spawn(async move { store.master_id().await.unwrap() })
    });
    let ids = futures::future::join_all(calls).await;
    let ids: Vec<String> = ids.into_iter().map(Result::unwrap).collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
}

#[tokio::test]
async fn queued_builds_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    let inserted = store
        .insert_builds(vec![new_build("a"), new_build("b"), new_build("c")])
        .await
        .unwrap();
    let done = with_two_attempts(inserted[1].clone());
    store.save_build(&done).await.unwrap();
    store
        .save_instance(&instance("w-1", InstanceState::Launching, 5))
        .await
        .unwrap();
    // No close: a crash leaves the WAL behind, and it must be enough.
    drop(store);

    let store = SqliteStore::open(dir.path()).await.unwrap();
    let unfinished = store.unfinished_builds().await.unwrap();
    assert_eq!(unfinished, vec![inserted[0].clone(), inserted[2].clone()]);
    assert_eq!(store.get_build(done.id).await.unwrap(), Some(done));
    assert_eq!(store.live_instances().await.unwrap().len(), 1);
    // Ids keep growing past what the first process gave out.
    let next = store.insert_builds(vec![new_build("d")]).await.unwrap();
    assert_eq!(next[0].id, 4);
}

#[tokio::test]
async fn migrations_are_recorded_once() {
    let dir = tempfile::tempdir().unwrap();
    SqliteStore::open(dir.path()).await.unwrap().close().await;
    SqliteStore::open(dir.path()).await.unwrap().close().await;

    let raw = raw_pool(dir.path()).await;
    let applied: Vec<(i64, bool)> =
        sqlx::query_as("SELECT version, success FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&raw)
            .await
            .unwrap();
    assert_eq!(
        applied,
        [
            (1, true),
            (2, true),
            (3, true),
            (4, true),
            (5, true),
            (6, true),
            (7, true),
            (8, true),
            (9, true),
            (10, true),
            (11, true)
        ]
    );
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&raw)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
}

#[tokio::test]
async fn open_creates_the_state_dir() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("a/b/state");
    let store = SqliteStore::open(&nested).await.unwrap();
    store.master_id().await.unwrap();
    assert!(nested.join(SqliteStore::DB_FILE).is_file());
}

#[tokio::test]
async fn open_reports_an_unusable_dir() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let err = SqliteStore::open(&file).await.unwrap_err();
    assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("failed to open the database at"),
        "{err}"
    );
}

/// A database with some history, all of it in the file (no WAL left).
async fn closed_db_with_builds(dir: &Path) -> std::path::PathBuf {
    let store = SqliteStore::open(dir).await.unwrap();
    let builds = (0..200).map(|i| new_build(&format!("b{i}"))).collect();
    store.insert_builds(builds).await.unwrap();
    store.close().await;
    let options = SqliteConnectOptions::new()
        .filename(dir.join(SqliteStore::DB_FILE))
        .busy_timeout(std::time::Duration::from_secs(10));
    let mut raw = SqliteConnection::connect_with(&options).await.unwrap();
    // Leaving WAL needs every other connection gone, and a closed pool's
    // connection threads let go of the file a moment after `close` returns
    // (SQLite answers SQLITE_BUSY at once here, whatever the busy timeout):
    // wait for that, within a generous bound.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        match sqlx::query("PRAGMA journal_mode = DELETE")
            .execute(&mut raw)
            .await
        {
            Ok(_) => break,
            Err(e)
                if tokio::time::Instant::now() < deadline && e.to_string().contains("locked") =>
            {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err(e) => panic!("failed to leave WAL mode: {e}"),
        }
    }
    raw.close().await.unwrap();
    dir.join(SqliteStore::DB_FILE)
}

/// The error opening `dir` gives, as the master prints it.
async fn open_error(dir: &Path) -> String {
    let err = SqliteStore::open(dir).await.unwrap_err();
    burst_common::error_chain::Chain(&err).to_string()
}

#[tokio::test]
async fn a_truncated_database_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = closed_db_with_builds(dir.path()).await;
    let len = std::fs::metadata(&path).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len / 3)
        .unwrap();
    let err = open_error(dir.path()).await;
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(
        err.contains("malformed") || err.contains("corrupt"),
        "{err}"
    );
}

#[tokio::test]
async fn a_garbage_database_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(SqliteStore::DB_FILE);
    std::fs::write(&path, vec![0x5a; 64 * 1024]).unwrap();
    let err = open_error(dir.path()).await;
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(err.contains("not a database"), "{err}");
}

#[tokio::test]
async fn a_database_from_a_newer_burst_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = closed_db_with_builds(dir.path()).await;
    let raw = raw_pool(dir.path()).await;
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (999, 'from the future', 1, x'00', 0)",
    )
    .execute(&raw)
    .await
    .unwrap();
    raw.close().await;
    let err = SqliteStore::open(dir.path()).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::NewerSchema {
                found: 999,
                known: 11,
                ..
            }
        ),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert!(text.contains("schema version 999"), "{text}");
}

/// Breaks one column with raw SQL and expects `Corrupt` naming it.
async fn expect_corrupt(
    corruption: &str,
    read: impl AsyncFnOnce(&SqliteStore) -> Result<(), StoreError>,
    what: &str,
    mentions: &[&str],
) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    let inserted = store.insert_builds(vec![new_build("a")]).await.unwrap();
    store
        .save_build(&with_two_attempts(inserted[0].clone()))
        .await
        .unwrap();
    store
        .save_instance(&instance("w-1", InstanceState::Connected, 5))
        .await
        .unwrap();

    let raw = raw_pool(dir.path()).await;
    sqlx::query(corruption).execute(&raw).await.unwrap();

    let err = read(&store).await.unwrap_err();
    let StoreError::Corrupt { what: got, detail } = &err else {
        panic!("{corruption}: expected Corrupt, got {err:?}");
    };
    assert_eq!(*got, what, "{err}");
    for needle in mentions {
        assert!(
            detail.contains(needle),
            "{corruption}: {err} lacks {needle:?}"
        );
    }
}

async fn read_build(store: &SqliteStore) -> Result<(), StoreError> {
    store.get_build(1).await.map(|_| ())
}

async fn read_listed(store: &SqliteStore) -> Result<(), StoreError> {
    store.list_builds(10).await.map(|_| ())
}

async fn read_unfinished(store: &SqliteStore) -> Result<(), StoreError> {
    store.unfinished_builds().await.map(|_| ())
}

async fn read_ledger(store: &SqliteStore) -> Result<(), StoreError> {
    store.list_instances(10).await.map(|_| ())
}

async fn read_live(store: &SqliteStore) -> Result<(), StoreError> {
    store.live_instances().await.map(|_| ())
}

#[tokio::test]
async fn corrupt_rows_are_errors_not_panics() {
    let queued = BuildState::Queued.as_str();
    expect_corrupt(
        "UPDATE builds SET state = 'bogus'",
        read_build,
        "build",
        &["build 1", "state"],
    )
    .await;
    expect_corrupt(
        "UPDATE builds SET cell_json = '{not json'",
        read_listed,
        "build",
        &["build 1", "cell_json"],
    )
    .await;
    expect_corrupt(
        &format!("UPDATE builds SET state = '{queued}', retries = -1"),
        read_unfinished,
        "build",
        &["retries", "-1"],
    )
    .await;
    expect_corrupt(
        "UPDATE attempts SET state = 'sleeping' WHERE number = 2",
        read_build,
        "attempt",
        &["build 1 attempt 2", "sleeping"],
    )
    .await;
    expect_corrupt(
        "UPDATE steps SET log_bytes = -5 WHERE attempt = 1 AND idx = 0",
        read_build,
        "step",
        &["build 1 attempt 1 step 0", "log_bytes"],
    )
    .await;
    expect_corrupt(
        "UPDATE steps SET exit_code = 4294967296 WHERE attempt = 2 AND idx = 3",
        read_listed,
        "step",
        &["exit_code"],
    )
    .await;
    expect_corrupt(
        "UPDATE instances SET details_json = '['",
        read_ledger,
        "instance",
        &["instance w-1", "details_json"],
    )
    .await;
    expect_corrupt(
        "UPDATE instances SET state = 'zombie'",
        read_live,
        "instance",
        &["zombie"],
    )
    .await;
}
