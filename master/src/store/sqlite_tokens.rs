//! API tokens in SQLite, looked up by the SHA-256 of their value.

use sqlx::sqlite::{SqlitePool, SqliteRow};

use crate::model::{Role, TokenRecord};

use super::sqlite_rows::{query_err, Cols};
use super::StoreResult;

const TOKEN_COLUMNS: &str = "name, hash, role, created_at, created_by";

pub(super) async fn insert_token(pool: &SqlitePool, token: &TokenRecord) -> StoreResult<bool> {
    // OR IGNORE: a taken name (or, astronomically unlikely, hash) is an
    // answer for the caller, not an error.
    let done = sqlx::query(
        "INSERT OR IGNORE INTO api_tokens (name, hash, role, created_at, created_by) \
         VALUES (?, ?, ?, ?, ?)",
    )
    .bind(&token.name)
    .bind(&token.hash)
    .bind(token.role.as_str())
    .bind(token.created_at)
    .bind(&token.created_by)
    .execute(pool)
    .await
    .map_err(query_err("insert an API token"))?;
    Ok(done.rows_affected() == 1)
}

pub(super) async fn token_by_hash(
    pool: &SqlitePool,
    hash: &str,
) -> StoreResult<Option<TokenRecord>> {
    let sql = format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE hash = ?");
    let row = sqlx::query(&sql)
        .bind(hash)
        .fetch_optional(pool)
        .await
        .map_err(query_err("look up an API token"))?;
    row.as_ref().map(decode_token).transpose()
}

pub(super) async fn list_tokens(pool: &SqlitePool) -> StoreResult<Vec<TokenRecord>> {
    let sql = format!("SELECT {TOKEN_COLUMNS} FROM api_tokens ORDER BY name");
    let rows = sqlx::query(&sql)
        .fetch_all(pool)
        .await
        .map_err(query_err("list API tokens"))?;
    rows.iter().map(decode_token).collect()
}

pub(super) async fn revoke_token(pool: &SqlitePool, name: &str) -> StoreResult<bool> {
    let done = sqlx::query("DELETE FROM api_tokens WHERE name = ?")
        .bind(name)
        .execute(pool)
        .await
        .map_err(query_err("revoke an API token"))?;
    Ok(done.rows_affected() == 1)
}

fn decode_token(row: &SqliteRow) -> StoreResult<TokenRecord> {
    let cols = Cols::new(row, "API token");
    let name: String = cols.get("name")?;
    let cols = cols.keyed(format!("API token {name}"));
    Ok(TokenRecord {
        hash: cols.get("hash")?,
        role: cols.parsed("role", Role::parse)?,
        created_at: cols.get("created_at")?,
        created_by: cols.get("created_by")?,
        name,
    })
}
