//! What builds cost, for the API: a build's share (`GET /api/v1/builds/{id}`,
//! the build page, `burst build ID`) and the spend report (`GET
//! /api/v1/cost`, `burst cost`). Both come from `crate::cost`'s
//! attribution over ledger rows and attempts read from the store.

use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;

use super::error::HttpError;
use super::AppState;
use crate::cost::report::{report, CostReport, GroupBy};
use crate::cost::{attribute, BuildCost};
use crate::model::{now_millis, Build, Millis};
use crate::store::{Store, StoreResult};

/// The longest window a report may ask for: what a year of a busy ledger
/// costs to read is still a bounded query.
const MAX_SINCE: Duration = Duration::from_secs(366 * 24 * 3600);

/// A build's share of what its workers cost: its run time, the boot of a
/// worker launched for it, its part of their idle time. None when no
/// attempt ran on a priced worker.
pub async fn of_build(
    store: &dyn Store,
    build: &Build,
    now: Millis,
) -> StoreResult<Option<BuildCost>> {
    let mut workers: Vec<String> = build.attempts.iter().map(|a| a.worker_id.clone()).collect();
    workers.sort();
    workers.dedup();
    let mut instances = Vec::with_capacity(workers.len());
    for w in &workers {
        if let Some(row) = store.get_instance(w).await? {
            instances.push(row);
        }
    }
    if instances
        .iter()
        .all(|i| crate::cost::Priced::of(i).is_none())
    {
        return Ok(None);
    }
    let attempts = store.attempts_on(&workers).await?;
    Ok(attribute(&instances, &attempts, now)
        .builds
        .get(&build.id)
        .copied())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CostQuery {
    /// How far back, e.g. "7d", "24h"; default 7 days.
    #[serde(default)]
    pub since: Option<String>,
    #[serde(default)]
    pub by: GroupBy,
}

fn bad_request(text: String) -> HttpError {
    HttpError(StatusCode::BAD_REQUEST, text)
}

/// The window a query asks for, checked.
pub fn window(q: &CostQuery, now: Millis) -> Result<(Millis, Millis), HttpError> {
    let since = match &q.since {
        None => Duration::from_secs(7 * 24 * 3600),
        Some(text) => humantime::parse_duration(text).map_err(|e| {
            bad_request(format!(
                "since: {text:?} is not a duration such as \"7d\" or \"24h\": {e}"
            ))
        })?,
    };
    if since.is_zero() || since > MAX_SINCE {
        return Err(bad_request(format!(
            "since: must be more than 0 and at most 366d (got {})",
            humantime::format_duration(since)
        )));
    }
    Ok((now - since.as_millis() as Millis, now))
}

/// `GET /api/v1/cost?since=7d&by=builder|pool|label`: what workers that ran
/// in the window were billed, whole, split over the builds they served.
pub async fn cost(
    State(state): State<AppState>,
    Query(q): Query<CostQuery>,
) -> Result<Json<CostReport>, HttpError> {
    let (since, until) = window(&q, now_millis())?;
    let instances = state.store.instances_since(since).await?;
    let workers: Vec<String> = instances.iter().map(|i| i.worker_id.clone()).collect();
    let attempts = state.store.attempts_on(&workers).await?;
    let currency = state.config.get().budget.currency.clone();
    Ok(Json(report(
        &instances,
        &attempts,
        q.by,
        (since, until),
        &currency,
    )))
}

#[cfg(test)]
mod tests;
