//! Fresh identifiers the stores hand out.

/// A new master id: "m-" and 12 random hex digits.
pub(super) fn new_master_id() -> String {
    // The first 12 hex digits of a v4 UUID are all random (the version
    // nibble comes right after them).
    let hex: String = uuid::Uuid::new_v4()
        .simple()
        .to_string()
        .chars()
        .take(12)
        .collect();
    format!("m-{hex}")
}
