//! `GET /builds/{id}`: one build (through `api::builds::detail`, the
//! function behind `GET /api/v1/builds/{id}`: secrets masked, cost
//! estimated), and its Cancel and Rebuild forms, shown only when the
//! caller's role allows; the POST handlers check again (`cancel_build`,
//! the guard's role and CSRF checks).
//!
//! DOM, for tests:
//! - `section#build` with `data-id`, `data-state` and, while the build
//!   runs, `data-events` (`build_events.rs`: the script replaces this
//!   section and `section#attempts` in place as the build moves on, no
//!   reload); `#state`, `#reason`,
//!   `#cost` (when known), `table#params` (`tr` per param, `td.value`),
//!   `#cell`;
//! - `form#cancel-form` / `button#cancel` and `form#rebuild-form` /
//!   `button#rebuild`, present only when allowed;
//! - `section#attempts`, one `div.attempt` per attempt (`data-number`,
//!   `data-state`, `.worker`, `.pool`), its `table.steps` with one
//!   `tr.step` per step run (`data-index`, `data-state`), in it `td.exit`,
//!   `td.duration`, `td.error` and `a.log` (the step's log page);
//! - `section#reports` (`build_reports.rs`) for a triggered build;
//! - `section#artifacts` when the build has any: `table` with one
//!   `tr.artifact` per file (`data-path`), its `a.download`, `td.size`,
//!   `td.sha256` and `td.step`.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use maud::{html, Markup};

use super::error::{OrPage, UiError, UiResult};
use super::format;
use super::layout::{csrf_field, page as frame, Nav};
use crate::api::builds::{cancel_build, detail, may_cancel, submit_builds};
use crate::api::error::not_found;
use crate::api::{AppState, Caller};
use crate::artifacts::url_path;
use crate::logs::StepRunId;
use crate::model::{
    now_millis, ArtifactInfo, Attempt, Build, BuildDetail, BuildId, Command, Role, StepState,
    SubmitRequest,
};

pub async fn page(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<BuildId>,
) -> UiResult<Html<String>> {
    let d = detail(&state, id).await.ui(&caller)?;
    let title = format!("Build {id} · {}", d.build.builder);
    // Reports are extra: a store that cannot list them costs the section,
    // not the page.
    let reports = state.store.build_reports(id).await.unwrap_or_else(|e| {
        tracing::warn!(build = id, error = %burst_common::error_chain::Chain(&e), "failed to read a build's reports");
        Vec::new()
    });
    let artifacts = state.artifacts.list(id).await.unwrap_or_else(|e| {
        tracing::warn!(build = id, error = %burst_common::error_chain::Chain(&e), "failed to list a build's artifacts");
        Vec::new()
    });
    let notes = step_notes(&state, &d.build).await;
    let markup = html! {
        (body(&d, &caller, &notes))
        (super::build_reports::section(&reports, state.logs.mask()))
        (artifacts_section(&d.build, &artifacts))
    };
    Ok(Html(
        frame(&title, &caller, Nav::Builds, markup).into_string(),
    ))
}

/// `section#artifacts`: each file with its download link.
fn artifacts_section(b: &Build, all: &[ArtifactInfo]) -> Markup {
    let step = |a: &ArtifactInfo| {
        let name = b
            .attempts
            .get((a.attempt as usize).saturating_sub(1))
            .and_then(|at| at.steps.get(a.step as usize))
            .map_or_else(|| format!("#{}", a.step + 1), |s| s.name.clone());
        format!("{name} (attempt {})", a.attempt)
    };
    html! {
        @if !all.is_empty() {
            section id="artifacts" {
                h2 { "Artifacts" }
                table {
                    thead { tr { th { "File" } th { "Size" } th { "sha256" } th { "Step" } } }
                    tbody {
                        @for a in all {
                            tr.artifact data-path=(a.path) {
                                td { a.download href=(format!("/api/v1/builds/{}/artifacts/{}", b.id, url_path(&a.path))) download { (a.path) } }
                                td.size { (format::bytes(a.size)) }
                                td.sha256 { code { (a.sha256) } }
                                td.step { (step(a)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The log page of one step run.
pub fn log_href(id: BuildId, attempt: u32, index: u32) -> String {
    format!("/builds/{id}/attempts/{attempt}/steps/{}/log", index + 1)
}

fn body(d: &BuildDetail, caller: &Caller, notes: &StepNotes) -> Markup {
    let now = now_millis();
    html! {
        (summary(d, caller, now))
        (attempts(&d.build, now, notes))
    }
}

/// A line per finished cache step, by (attempt, step index): its log's
/// `cache: …` line (the key, hit, partial or miss, bytes and time).
pub(super) type StepNotes = HashMap<(u32, u32), String>;

/// Reads the head of each finished cache step's log; a log that cannot be
/// read costs its note, not the page.
pub(super) async fn step_notes(state: &AppState, b: &Build) -> StepNotes {
    let mut notes = StepNotes::new();
    for a in &b.attempts {
        for s in &a.steps {
            let is_cache = b
                .steps
                .get(s.index as usize)
                .is_some_and(|spec| matches!(spec.command, Command::Cache(_)));
            if !is_cache || matches!(s.state, StepState::Pending | StepState::Running) {
                continue;
            }
            let id = StepRunId {
                build: b.id,
                attempt: a.number,
                index: s.index,
            };
            let Ok(head) = state.logs.read_from(id, 0, 4096).await else {
                continue;
            };
            let text = String::from_utf8_lossy(&head);
            if let Some(line) = text.lines().find(|l| l.starts_with("cache: ")) {
                notes.insert(
                    (a.number, s.index),
                    line.trim_start_matches("cache: ").to_owned(),
                );
            }
        }
    }
    notes
}

/// `section#build`: the build's state, facts and buttons. The live stream
/// sends it again, rendered here, when it changes.
pub(super) fn summary(d: &BuildDetail, caller: &Caller, now: i64) -> Markup {
    let b = &d.build;
    let cell = b
        .cell
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ");
    let can_cancel = !b.state.is_finished() && may_cancel(caller, b);
    let can_rebuild = caller.role >= Role::Submitter && caller.is_token();
    // While it runs, the script patches both sections from this stream.
    let live = (!b.state.is_finished()).then(|| events_href(b.id));
    html! {
        section id="build" data-id=(b.id) data-state=(b.state.as_str()) data-events=[live] {
            h1 { "Build " (b.id) ": " span.builder { (b.builder) } }
            dl.summary {
                dt { "State" } dd id="state" { span class=(format!("state s-{}", b.state.as_str())) { (b.state.as_str()) } }
                @if let Some(r) = &b.reason { dt { "Why" } dd id="reason" { (r) } }
                @if !cell.is_empty() { dt { "Matrix cell" } dd id="cell" { (cell) } }
                dt { "Submitted" } dd { (format::time(b.created_at))
                    @if let Some(by) = &b.submitted_by { " by " span id="submitter" { (by) } } }
                dt { "Took" } dd { (format::span(b.started_at, b.finished_at, now)) }
                @if !b.labels.is_empty() { dt { "Labels" } dd { (b.labels.join(", ")) } }
                dt { "Retries left" } dd { (b.retries) }
                @if let Some(cost) = d.estimated_cost { dt { "Cost (estimate)" } dd id="cost" { (format::money(cost))
                    @if let Some(c) = &d.cost { span.cost-split { " — run " (format::money(c.run)) ", boot " (format::money(c.boot)) ", idle " (format::money(c.idle)) } } } }
                @for j in &d.github_jobs {
                    dt { "GitHub job" }
                    dd.github-job data-job=(j.job_id) {
                        @match &j.html_url {
                            Some(url) if url.starts_with("https://") || url.starts_with("http://") => a href=(url) { (j.repo) " #" (j.job_id) },
                            _ => { (j.repo) " #" (j.job_id) },
                        }
                        " " (j.name) ": " (j.conclusion.as_deref().unwrap_or(&j.status))
                        @if j.ran_build == Some(b.id) { " (ran here)" } @else { " (launched for)" }
                    }
                }
                dt { "Log" } dd { a id="raw" href=(format!("/api/v1/builds/{}/log", b.id)) download=(format!("build-{}.log", b.id)) { "raw (all steps)" } }
            }
            div.actions {
                @if can_cancel {
                    form id="cancel-form" method="post" action=(format!("/builds/{}/cancel", b.id)) {
                        (csrf_field(caller))
                        button id="cancel" type="submit" { "Cancel" }
                    }
                }
                @if can_rebuild {
                    form id="rebuild-form" method="post" action=(format!("/builds/{}/rebuild", b.id)) {
                        (csrf_field(caller))
                        button id="rebuild" type="submit" { "Rebuild" }
                    }
                }
            }
            @if !b.params.is_empty() {
                h2 { "Parameters" }
                table id="params" {
                    @for (k, v) in &b.params { tr { th { (k) } td.value { (v) } } }
                }
            }
        }
    }
}

/// `section#attempts`, newest attempt first; sent by the stream too.
pub(super) fn attempts(b: &Build, now: i64, notes: &StepNotes) -> Markup {
    html! {
        section id="attempts" {
            h2 { "Attempts" }
            @if b.attempts.is_empty() { p id="no-attempts" { "None yet." } }
            @for a in b.attempts.iter().rev() { (attempt(b.id, a, now, notes)) }
        }
    }
}

/// The build page's live stream (`build_events.rs`).
pub fn events_href(id: BuildId) -> String {
    format!("/builds/{id}/events")
}

fn attempt(id: BuildId, a: &Attempt, now: i64, notes: &StepNotes) -> Markup {
    html! {
        div.attempt data-number=(a.number) data-state=(a.state.as_str()) {
            h3 { "Attempt " (a.number) " · " span class=(format!("state s-{}", a.state.as_str())) { (a.state.as_str()) } }
            p { "Worker " span.worker { (a.worker_id) } " in pool " span.pool { (a.pool) }
                ", " (format::time(a.started_at)) ", took " (format::span(Some(a.started_at), a.finished_at, now)) }
            @if let Some(r) = &a.reason { p.reason { (r) } }
            table.steps {
                thead { tr { th { "#" } th { "Step" } th { "State" } th { "Exit" } th { "Took" } th { "Error" } th { "Note" } th { "Log" } } }
                tbody {
                    @for s in &a.steps {
                        tr.step data-index=(s.index) data-state=(s.state.as_str()) {
                            td { (s.index + 1) }
                            td.name { (s.name) }
                            td { span class=(format!("state s-{}", s.state.as_str())) { (s.state.as_str()) } }
                            td.exit {
                                @if let Some(c) = s.exit_code { (c) }
                                @else if let Some(sig) = s.signal { "signal " (sig) }
                            }
                            td.duration {
                                @if let Some(ms) = s.duration_ms { (format::duration_ms(ms)) }
                                @else if let Some(st) = s.started_at { (format::span(Some(st), None, now)) }
                            }
                            td.error { (s.error.as_deref().unwrap_or("")) }
                            td.note { (notes.get(&(a.number, s.index)).map_or("", String::as_str)) }
                            td { a.log href=(log_href(id, a.number, s.index)) { "log" } }
                        }
                    }
                }
            }
        }
    }
}

pub async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<BuildId>,
) -> UiResult<Redirect> {
    cancel_build(&state, &caller, id).await.ui(&caller)?;
    Ok(Redirect::to(&format!("/builds/{id}")))
}

/// Submits the build's builder with its params again, for its matrix cell
/// only, through the API's submit path.
pub async fn rebuild(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<BuildId>,
) -> Response {
    match rebuild_inner(&state, &caller, id).await {
        Ok(new) => Redirect::to(&format!("/builds/{new}")).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn rebuild_inner(state: &AppState, caller: &Caller, id: BuildId) -> UiResult<BuildId> {
    // The stored build, unmasked: its params are what was submitted (config
    // refuses params named like a secret).
    let build = state
        .store
        .get_build(id)
        .await
        .map_err(crate::api::error::HttpError::from)
        .ui(caller)?
        .ok_or_else(|| UiError::from_api(not_found(id), caller))?;
    let req = SubmitRequest {
        builder: build.builder.clone(),
        params: build.params.clone(),
    };
    let body = crate::api::submit_body::SubmitBody::One(req);
    let (_, ids, _) = submit_builds(state, caller, &body, None, Some(&build.cell))
        .await
        .ui(caller)?;
    ids.first().copied().ok_or_else(|| {
        UiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the rebuild queued no build",
            caller,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detail_of(builder: &str, param: &str, submitted_by: Option<&str>) -> BuildDetail {
        let build: Build = serde_json::from_value(serde_json::json!({
            "id": 7, "submit_id": "s", "builder": builder, "cell": { "os": "<b>linux</b>" },
            "params": { "REF": param }, "labels": [], "state": "running", "retries": 0,
            "created_at": 0, "submitted_by": submitted_by, "steps": [],
            "attempts": [{ "number": 1, "worker_id": "w\"1", "pool": "p", "state": "running",
                "started_at": 0, "steps": [{ "index": 0, "name": "<i>compile</i>",
                "state": "failed", "exit_code": 3, "error": "<script>e()</script>", "log_bytes": 0 }] }],
        }))
        .expect("build");
        BuildDetail {
            build,
            estimated_cost: Some(0.5),
            cost: None,
            queue: None,
            github_jobs: Vec::new(),
        }
    }

    fn caller(name: &str, role: Role) -> Caller {
        Caller {
            name: name.to_owned(),
            role,
            csrf: None,
        }
    }

    #[test]
    fn attacker_text_is_escaped_everywhere() {
        let d = detail_of("<script>b()</script>", "\"><img src=x onerror=p()>", None);
        let html = body(&d, &caller("v", Role::Viewer), &StepNotes::new()).into_string();
        for raw in ["<script>", "<img", "<i>compile", "<b>linux", "w\"1"] {
            assert!(!html.contains(raw), "{raw} unescaped in {html}");
        }
        assert!(html.contains("&lt;script&gt;b()"), "{html}");
        assert!(html.contains("id=\"cost\""), "{html}");
        assert!(html.contains("<td class=\"exit\">3</td>"), "{html}");
        assert!(html.contains("/builds/7/attempts/1/steps/1/log"), "{html}");
    }

    #[test]
    fn every_fact_the_page_promises_is_drawn() {
        let mut d = detail_of("compile", "main", Some("alice"));
        d.build.cell = [("os".to_owned(), "linux".to_owned())].into();
        let step = &mut d.build.attempts[0].steps[0];
        step.duration_ms = Some(90_000);
        step.started_at = Some(0);
        let html = body(&d, &caller("v", Role::Viewer), &StepNotes::new()).into_string();
        for want in [
            r#"<dd id="cell">os=linux</dd>"#,
            r#"<td class="value">main</td>"#,
            r#"<td class="exit">3</td>"#,
            r#"<td class="duration">1m 30s</td>"#,
            r#"<span class="pool">p</span>"#,
            r#"<span class="worker">w&quot;1</span>"#,
            r#"class="attempt" data-number="1" data-state="running""#,
            r#"<dd id="cost">$0.50</dd>"#,
            r#"<span id="submitter">alice</span>"#,
            r#"data-events="/builds/7/events""#,
        ] {
            assert!(html.contains(want), "{want} missing from {html}");
        }
        // A finished build streams nothing.
        d.build.state = crate::model::BuildState::Succeeded;
        let html = body(&d, &caller("v", Role::Viewer), &StepNotes::new()).into_string();
        assert!(!html.contains("data-events"), "{html}");
    }

    #[test]
    fn buttons_follow_the_role() {
        let d = detail_of("b", "x", Some("alice"));
        let viewer = body(&d, &caller("v", Role::Viewer), &StepNotes::new()).into_string();
        assert!(!viewer.contains("id=\"cancel\"") && !viewer.contains("id=\"rebuild\""));
        let other = body(&d, &caller("bob", Role::Submitter), &StepNotes::new()).into_string();
        assert!(!other.contains("id=\"cancel\"") && other.contains("id=\"rebuild\""));
        let own = body(&d, &caller("alice", Role::Submitter), &StepNotes::new()).into_string();
        assert!(own.contains("id=\"cancel\""));
        let admin = body(&d, &caller("root", Role::Admin), &StepNotes::new()).into_string();
        assert!(admin.contains("id=\"cancel\"") && admin.contains("id=\"rebuild\""));
    }
}
