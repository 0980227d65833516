//! Ledger rows for the cost tests, written once.

use crate::model::{Instance, InstanceState, Millis};

/// A worker of `pool` that ran from `launched` to `ended` (None: still
/// running), connected at `connected`, priced at `price` an hour (None: no
/// price recorded).
pub fn row(
    worker: &str,
    pool: &str,
    price: Option<f64>,
    (launched, connected, ended): (Millis, Option<Millis>, Option<Millis>),
) -> Instance {
    Instance {
        worker_id: worker.into(),
        pool: pool.into(),
        provider: "docker".into(),
        provider_id: None,
        state: if ended.is_some() {
            InstanceState::Gone
        } else {
            InstanceState::Connected
        },
        details: price.map_or(
            serde_json::Value::Null,
            |p| serde_json::json!({ "price_per_hour": p }),
        ),
        error: None,
        launched_at: launched,
        connected_at: connected,
        terminated_at: ended,
        ended_by: None,
        resume_hash: None,
        resume_prev_hash: None,
    }
}
