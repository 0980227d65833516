//! `GET /` and `GET /builds`: the newest builds, filtered by the query
//! (`builder`, `state`, `label`, `submitter`; a plain GET form, so it works
//! without JavaScript), over the whole history, paged by id. Rows come from
//! `api::builds::recent`, the function behind `GET /api/v1/builds`.
//!
//! DOM, for tests and the script:
//! - `form#filter` with inputs `#f-builder`, `#f-state`, `#f-label`, `#f-submitter`;
//! - `table#builds` (`data-events`: the SSE URL for live rows), its
//!   `tbody#build-rows`, one `tr#build-<id>` per build with `data-id` and
//!   `data-state`; in it `td.state`, `td.reason` (why a queued build waits);
//! - `p#no-builds` when nothing matches;
//! - `a#older` (the next page, `?before=<last id>`) when the page is full,
//!   `a#newest` on an older page (which has no live rows).

use axum::extract::{Query, State};
use axum::response::Html;
use maud::{html, Markup};

use super::error::{OrPage, UiResult};
use super::format;
use super::layout::{page, Nav};
use crate::api::builds::{recent, BuildFilter};
use crate::api::{AppState, Caller};
use crate::model::{now_millis, Build, BuildState};

/// Rows the page shows.
pub const ROWS: u32 = 100;

const STATES: [BuildState; 7] = [
    BuildState::Queued,
    BuildState::Running,
    BuildState::Succeeded,
    BuildState::Failed,
    BuildState::TimedOut,
    BuildState::Cancelled,
    BuildState::WorkerLost,
];

pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(filter): Query<BuildFilter>,
) -> UiResult<Html<String>> {
    let builds = recent(&state, &filter, ROWS).await.ui(&caller)?;
    let body = body(&filter, &builds);
    Ok(Html(
        page("Builds", &caller, Nav::Builds, body).into_string(),
    ))
}

fn body(filter: &BuildFilter, builds: &[Build]) -> Markup {
    let val = |v: &Option<String>| v.clone().unwrap_or_default();
    let wanted = filter.state.as_deref().unwrap_or("");
    let now = now_millis();
    // Live rows follow the newest page; an older page is a snapshot.
    let live =
        (!filter.is_paged()).then(|| format!("/ui/events?{}", filter.newest().query_string()));
    let older = builds
        .last()
        .filter(|_| builds.len() == ROWS as usize)
        .map(|last| BuildFilter {
            before: Some(last.id.to_string()),
            ..filter.clone()
        });
    html! {
        h1 { "Builds" }
        form id="filter" method="get" action="/builds" {
            label { "Builder " input id="f-builder" name="builder" value=(val(&filter.builder)); }
            label { "State "
                select id="f-state" name="state" {
                    option value="" selected[wanted.is_empty()] { "any" }
                    @for s in STATES {
                        option value=(s.as_str()) selected[wanted == s.as_str()] { (s.as_str()) }
                    }
                }
            }
            label { "Label " input id="f-label" name="label" value=(val(&filter.label)); }
            label { "Submitter " input id="f-submitter" name="submitter" value=(val(&filter.submitter)); }
            button type="submit" { "Filter" }
            @if !filter.is_empty() { " " a href="/builds" { "clear" } }
        }
        table id="builds" data-events=[live] {
            thead { tr {
                th { "#" } th { "Builder" } th { "Cell" } th { "State" } th { "Why" }
                th { "By" } th { "Labels" } th { "Submitted" } th { "Took" }
            } }
            tbody id="build-rows" {
                @for b in builds { (row(b, now)) }
            }
        }
        @if builds.is_empty() { p id="no-builds" { "No builds." } }
        p.pages {
            @if filter.is_paged() {
                a id="newest" href=(format!("/builds?{}", filter.newest().query_string())) { "newest" }
                " "
            }
            @if let Some(older) = &older {
                a id="older" href=(format!("/builds?{}", older.query_string())) { "older" }
            }
        }
    }
}

/// One build's row; the live updates send the same markup.
pub fn row(b: &Build, now: i64) -> Markup {
    let cell = b
        .cell
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ");
    html! {
        tr id=(format!("build-{}", b.id)) data-id=(b.id) data-state=(b.state.as_str()) {
            td { a href=(format!("/builds/{}", b.id)) { (b.id) } }
            td.builder { (b.builder) }
            td.cell { (cell) }
            td.state { span class=(format!("state s-{}", b.state.as_str())) { (b.state.as_str()) } }
            td.reason { (b.reason.as_deref().unwrap_or("")) }
            td { (b.submitted_by.as_deref().unwrap_or("")) }
            td { (b.labels.join(", ")) }
            td { (format::time(b.created_at)) }
            td { (format::span(b.started_at, b.finished_at, now)) }
        }
    }
}
