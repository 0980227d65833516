//! A build's estimated cost: each attempt's duration times the hourly price
//! the provider recorded for its worker in the ledger.

use std::collections::HashMap;

use crate::model::{Build, Millis};
use crate::store::{Store, StoreResult};

const MILLIS_PER_HOUR: f64 = 3_600_000.0;

/// Sums priced attempts; an unfinished attempt counts up to `now`. None
/// when no attempt ran on a priced worker.
pub fn estimate(build: &Build, price_per_hour: &HashMap<String, f64>, now: Millis) -> Option<f64> {
    let mut total = None;
    for a in &build.attempts {
        let Some(price) = price_per_hour.get(&a.worker_id) else {
            continue;
        };
        let millis = (a.finished_at.unwrap_or(now) - a.started_at).max(0);
        *total.get_or_insert(0.0) += price * millis as f64 / MILLIS_PER_HOUR;
    }
    total
}

/// Reads the prices of the build's workers from the ledger.
pub async fn prices(store: &dyn Store, build: &Build) -> StoreResult<HashMap<String, f64>> {
    let mut prices = HashMap::new();
    for a in &build.attempts {
        if prices.contains_key(&a.worker_id) {
            continue;
        }
        let price = store
            .get_instance(&a.worker_id)
            .await?
            .and_then(|i| i.details.get("price_per_hour")?.as_f64());
        if let Some(price) = price {
            prices.insert(a.worker_id.clone(), price);
        }
    }
    Ok(prices)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Attempt, AttemptState, BuildState};

    fn attempt(worker: &str, started: Millis, finished: Option<Millis>) -> Attempt {
        Attempt {
            number: 1,
            worker_id: worker.to_owned(),
            pool: "ec2".to_owned(),
            state: AttemptState::Succeeded,
            reason: None,
            started_at: started,
            finished_at: finished,
            steps: vec![],
        }
    }

    fn build(attempts: Vec<Attempt>) -> Build {
        Build {
            id: 1,
            submit_id: "s".to_owned(),
            builder: "b".to_owned(),
            cell: Default::default(),
            params: Default::default(),
            labels: vec![],
            steps: vec![],
            state: BuildState::Succeeded,
            reason: None,
            retries: 1,
            created_at: 0,
            started_at: None,
            finished_at: None,
            attempts,
            submitted_by: None,
        }
    }

    #[test]
    fn price_times_hours_over_priced_attempts() {
        // Half an hour at 0.10 (lost to an interruption), then a quarter hour
        // at 0.20 still running at `now`; an unpriced worker adds nothing.
        let b = build(vec![
            attempt("spot-1", 0, Some(1_800_000)),
            attempt("local-1", 1_800_000, Some(1_900_000)),
            attempt("od-1", 1_900_000, None),
        ]);
        let prices = HashMap::from([("spot-1".to_owned(), 0.10), ("od-1".to_owned(), 0.20)]);
        let cost = estimate(&b, &prices, 1_900_000 + 900_000).expect("priced");
        assert!((cost - 0.10).abs() < 1e-12, "{cost}");
    }

    #[test]
    fn no_price_no_estimate() {
        let b = build(vec![attempt("local-1", 0, Some(1000))]);
        assert_eq!(estimate(&b, &HashMap::new(), 5000), None);
        assert_eq!(estimate(&build(vec![]), &HashMap::new(), 5000), None);
    }
}
