//! The build page's `section#reports`: each status a reporter sent (or is
//! still trying to send) for a triggered build, from the outbox behind
//! `GET /api/v1/builds/{id}/reports`, so a failed delivery shows where the
//! build does.
//!
//! DOM: `section#reports` (only when the build has reports), a
//! `tr.report` per outbox row (`data-reporter`, `data-state`,
//! `data-result`: delivered, retrying, gave_up, waiting), `td.attempts`,
//! `td.error`.

use maud::{html, Markup};

use super::format;
use super::layout::empty;
use crate::logs::Mask;
use crate::model::Report;

/// What happened to one row.
fn result(r: &Report) -> &'static str {
    if r.delivered_at.is_some() {
        "delivered"
    } else if r.gave_up {
        "gave_up"
    } else if r.attempts > 0 {
        "retrying"
    } else {
        "waiting"
    }
}

pub fn section(reports: &[Report], mask: &Mask) -> Markup {
    if reports.is_empty() {
        return empty();
    }
    let failed = reports
        .iter()
        .filter(|r| r.gave_up || (r.attempts > 0 && r.delivered_at.is_none()))
        .count();
    html! {
        section id="reports" {
            h2 { "Reports" }
            @if failed > 0 {
                p id="reports-failing" class="error" { (failed) " delivery(ies) failed: see below." }
            }
            table {
                tr { th { "Reporter" } th { "State" } th { "Result" } th { "Tries" } th { "When" } th { "Last error" } }
                @for r in reports {
                    tr.report data-reporter=(r.reporter) data-state=(r.state.as_str()) data-result=(result(r)) {
                        td { (r.reporter) }
                        td { (r.state.as_str()) }
                        td { (result(r).replace('_', " ")) }
                        td.attempts { (r.attempts) }
                        td { (format::time(r.delivered_at.unwrap_or(r.next_at))) }
                        td.error { (r.last_error.as_deref().map(|e| mask.mask_str(e)).unwrap_or_default()) }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::BuildState;

    fn row(state: BuildState, attempts: u32, delivered: bool, gave_up: bool) -> Report {
        Report {
            id: 1,
            reporter: "github".into(),
            build_id: 1,
            state,
            created_at: 0,
            attempts,
            next_at: 0,
            delivered_at: delivered.then_some(5),
            last_error: (!delivered).then(|| "answered 502 <b>".into()),
            gave_up,
        }
    }

    #[test]
    fn failed_deliveries_are_marked_and_escaped() {
        let mask = Mask::new(std::iter::empty::<&str>()).unwrap();
        let html = section(
            &[
                row(BuildState::Queued, 1, true, false),
                row(BuildState::Running, 3, false, false),
                row(BuildState::Succeeded, 12, false, true),
            ],
            &mask,
        )
        .into_string();
        assert!(html.contains("data-result=\"delivered\""), "{html}");
        assert!(html.contains("data-result=\"retrying\""), "{html}");
        assert!(html.contains("data-result=\"gave_up\""), "{html}");
        assert!(html.contains("id=\"reports-failing\""), "{html}");
        assert!(html.contains("502 &lt;b&gt;"), "{html}");
        assert!(section(&[], &mask).into_string().is_empty());
    }
}
