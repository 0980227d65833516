//! Reading columns out of SQLite rows: every decode failure becomes
//! `StoreError::Corrupt` naming the row and the column, never a panic.

use std::fmt::Display;

use serde::de::DeserializeOwned;
use sqlx::sqlite::SqliteRow;
use sqlx::{Decode, Row, Sqlite, Type};

use super::StoreError;
use super::StoreResult;

/// Maps a failed statement to `StoreError::Query`.
pub(super) fn query_err(action: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Query { action, source }
}

/// One row being decoded; `key` names it in error messages ("build 7").
pub(super) struct Cols<'r> {
    row: &'r SqliteRow,
    what: &'static str,
    key: String,
}

impl<'r> Cols<'r> {
    pub(super) fn new(row: &'r SqliteRow, what: &'static str) -> Self {
        Cols {
            row,
            what,
            key: format!("a {what} row"),
        }
    }

    /// Names the row by its key once that key has been read.
    pub(super) fn keyed(mut self, key: impl Display) -> Self {
        self.key = key.to_string();
        self
    }

    pub(super) fn get<T>(&self, name: &str) -> StoreResult<T>
    where
        T: Decode<'r, Sqlite> + Type<Sqlite>,
    {
        self.row.try_get(name).map_err(|e| self.corrupt(name, e))
    }

    pub(super) fn u32(&self, name: &str) -> StoreResult<u32> {
        let value: i64 = self.get(name)?;
        u32::try_from(value).map_err(|_| self.corrupt(name, format!("{value} is not a u32")))
    }

    pub(super) fn u64(&self, name: &str) -> StoreResult<u64> {
        let value: i64 = self.get(name)?;
        self.to_u64(name, value)
    }

    pub(super) fn opt_u64(&self, name: &str) -> StoreResult<Option<u64>> {
        let value: Option<i64> = self.get(name)?;
        value.map(|v| self.to_u64(name, v)).transpose()
    }

    pub(super) fn opt_i32(&self, name: &str) -> StoreResult<Option<i32>> {
        let value: Option<i64> = self.get(name)?;
        value
            .map(|v| i32::try_from(v).map_err(|_| self.corrupt(name, format!("{v} is not an i32"))))
            .transpose()
    }

    /// A text column holding an enum's `as_str()` form.
    pub(super) fn parsed<T>(&self, name: &str, parse: fn(&str) -> Option<T>) -> StoreResult<T> {
        let text: String = self.get(name)?;
        parse(&text).ok_or_else(|| self.corrupt(name, format!("unknown value {text:?}")))
    }

    /// A text column holding JSON.
    pub(super) fn json<T: DeserializeOwned>(&self, name: &str) -> StoreResult<T> {
        let text: String = self.get(name)?;
        serde_json::from_str(&text).map_err(|e| self.corrupt(name, e))
    }

    fn to_u64(&self, name: &str, value: i64) -> StoreResult<u64> {
        u64::try_from(value).map_err(|_| self.corrupt(name, format!("{value} is negative")))
    }

    fn corrupt(&self, name: &str, why: impl Display) -> StoreError {
        StoreError::Corrupt {
            what: self.what,
            detail: format!("{}, column {name}: {why}", self.key),
        }
    }
}
