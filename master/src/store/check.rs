//! Checks both stores run before writing a build, so they refuse the same
//! records and `MemoryStore` cannot accept what `SqliteStore` would reject.

use std::collections::HashSet;

use crate::model::Build;

use super::{StoreError, StoreResult};

/// Refuses a build whose attempts or steps collide on their keys, or whose
/// counters do not fit SQLite's signed 64-bit integers.
pub(super) fn check_build(build: &Build) -> StoreResult<()> {
    let mut numbers = HashSet::new();
    for attempt in &build.attempts {
        if !numbers.insert(attempt.number) {
            return Err(invalid(
                build,
                format!("attempt {} is listed twice", attempt.number),
            ));
        }
        let mut indices = HashSet::new();
        for step in &attempt.steps {
            if !indices.insert(step.index) {
                return Err(invalid(
                    build,
                    format!("attempt {} lists step {} twice", attempt.number, step.index),
                ));
            }
            if let Some(duration) = step.duration_ms {
                db_int(build, "duration_ms", duration)?;
            }
            db_int(build, "log_bytes", step.log_bytes)?;
        }
    }
    Ok(())
}

/// An unsigned counter as SQLite stores it.
pub(super) fn db_int(build: &Build, field: &str, value: u64) -> StoreResult<i64> {
    i64::try_from(value).map_err(|_| {
        invalid(
            build,
            format!("{field} {value} is larger than {}", i64::MAX),
        )
    })
}

fn invalid(build: &Build, detail: String) -> StoreError {
    StoreError::Invalid {
        what: format!("build {}", build.id),
        detail,
    }
}
