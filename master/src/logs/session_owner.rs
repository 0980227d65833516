//! Who may append to a step's log: the worker session the step was sent on.
//! Another worker, or the same worker on a later session, may not.

/// The log store's owner key for `worker_id`'s session `session`. (Unique:
/// the text after the last " session " is the number.)
pub fn session_owner(worker_id: &str, session: u64) -> String {
    format!("{worker_id} session {session}")
}
