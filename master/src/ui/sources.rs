//! `/sources`: where builds come from (the config's `[[sources]]`) and how
//! each git poller is doing: its last good poll, failures in a row, the
//! last error (secrets masked by the poller) and the backoff before the
//! next try. The same state as `GET /api/v1/sources`.
//!
//! DOM: `table#sources`, a `tr#source-NAME` per source (`data-kind`,
//! `data-failing` when its polls fail), in it `td.failures`, `td.error`,
//! `td.next`.

use axum::response::Html;
use axum::Extension;
use maud::{html, Markup};

use super::format;
use super::layout::{self, Nav};
use crate::api::Caller;
use crate::model::now_millis;
use crate::triggers::Hooks;

pub async fn page(caller: Caller, hooks: Option<Extension<Hooks>>) -> Html<String> {
    let body = match hooks {
        Some(Extension(hooks)) => render(&hooks),
        None => html! { h1 { "Sources" } p id="no-sources" { "No sources configured." } },
    };
    Html(layout::page("Sources", &caller, Nav::Sources, body).into_string())
}

fn render(hooks: &Hooks) -> Markup {
    let polls = hooks.status.polls();
    let now = now_millis();
    let config = hooks.config.get();
    html! {
        h1 { "Sources" }
        @if config.sources.is_empty() { p id="no-sources" { "No sources configured." } }
        table id="sources" {
            tr { th { "Source" } th { "Kind" } th { "Repository" } th { "Last good poll" }
                 th { "Failures" } th { "Last error" } th { "Next poll" } }
            @for s in &config.sources {
                @let poll = polls.get(&s.name);
                @let failing = poll.is_some_and(|p| p.failures > 0);
                tr id=(format!("source-{}", s.name)) data-kind=(s.kind.as_str())
                    data-failing=[failing.then_some("true")] {
                    td { (s.name) }
                    td { (s.kind.as_str()) }
                    td { (s.url.as_deref().or(s.repo.as_deref()).unwrap_or("")) }
                    td { (poll.and_then(|p| p.last_ok_at).map(format::time).unwrap_or_default()) }
                    td.failures { (poll.map_or(0, |p| p.failures)) }
                    td.error { (poll.and_then(|p| p.last_error.as_deref()).unwrap_or("")) }
                    td.next {
                        @if let Some(at) = poll.and_then(|p| p.next_poll_at) {
                            (format::time(at))
                            @if let Some(ms) = poll.and_then(|p| p.retry_in_ms) {
                                " (" (if failing { "backing off " } else { "every " })
                                (format::duration_ms(ms)) ")"
                            }
                            @if at < now { " — due" }
                        }
                    }
                }
            }
        }
    }
}
