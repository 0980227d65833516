//! `/grid`: builders × their recent submits, a square per matrix cell, like
//! Buildbot's grid. The data is `GET /api/v1/grid`'s ([`api::grid::load`]:
//! one store call, grouped in memory); this only draws it.
//!
//! DOM: `table#grid`, a `tr[data-builder]` per builder; in it a
//! `span.submit[data-submit][data-state]` per submit, newest first, holding
//! an `a.cell[data-cell][data-state]` per matrix cell (`data-cell` is
//! `axis=value …`, or `-` without a matrix), linking to the build.

use axum::extract::{Query, State};
use axum::response::Html;
use maud::{html, Markup, PreEscaped};

use super::error::{OrPage, UiResult};
use super::format;
use super::layout::{self, Nav};
use crate::api::grid::{load, GridQuery};
use crate::api::{AppState, Caller};
use crate::model::{Grid, GridRow, GridSubmit, GRID_MAX_SUBMITS};

/// The grid's own rules: a square per cell, coloured by the shared `s-*`
/// state classes through `currentColor`. A constant, never input.
const STYLE: &str = "\
#grid td.submits { white-space: nowrap; }
#grid .submit { display: inline-flex; gap: 1px; margin: 0 4px 2px 0; padding: 1px;
  border: 1px solid var(--line, #ddd); border-radius: 2px; }
#grid .cell { display: inline-block; width: 14px; height: 18px; background: currentColor;
  border-radius: 1px; }
#grid .axes .axis { display: block; color: var(--muted, #666); font-size: 12px; }
#grid .none { color: var(--muted, #666); }
";

/// Submit counts the page offers.
const CHOICES: [u32; 4] = [10, 20, 50, 100];

pub async fn page(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<GridQuery>,
) -> UiResult<Html<String>> {
    let grid = load(&state, q.submits).await.ui(&caller)?;
    let body = render(&grid, q.submits.min(GRID_MAX_SUBMITS));
    Ok(Html(
        layout::page("Grid", &caller, Nav::Grid, body).into_string(),
    ))
}

/// The page's body. Separate from the handler so the bench and the tests
/// can time and check it without a master.
pub fn render(grid: &Grid, asked: u32) -> Markup {
    html! {
        style { (PreEscaped(STYLE)) }
        h1 { "Grid" }
        form.filters method="get" action="/grid" {
            label {
                "Submits per builder "
                select name="submits" {
                    @for n in CHOICES {
                        option value=(n) selected[n == asked] { (n) }
                    }
                }
            }
            button type="submit" { "Show" }
        }
        p.hint {
            "Each row is a builder, its submits newest first; a submit is a group with a square per \
             matrix cell. Hover a square for its cell, click it for the build."
        }
        @if grid.rows.is_empty() {
            p id="grid-empty" { "No builders are configured." }
        }
        table id="grid" {
            thead {
                tr {
                    th { "Builder" }
                    th { "Matrix cells" }
                    th { "Submits, newest first" }
                }
            }
            tbody {
                @for row in &grid.rows {
                    (render_row(row))
                }
            }
        }
    }
}

fn render_row(row: &GridRow) -> Markup {
    html! {
        tr data-builder=(row.builder) {
            th.builder scope="row" {
                a href={ "/builds?builder=" (urlencode(&row.builder)) } { (row.builder) }
            }
            td.axes {
                // The newest submit's cells name the sub-columns.
                @if let Some(newest) = row.submits.first() {
                    @for c in &newest.cells {
                        span.axis { (cell_label(&c.cell)) }
                    }
                }
            }
            td.submits {
                @if row.submits.is_empty() {
                    span.none { "no builds yet" }
                }
                @for s in &row.submits {
                    (render_submit(s))
                }
            }
        }
    }
}

fn render_submit(s: &GridSubmit) -> Markup {
    html! {
        span.submit data-submit=(s.submit_id) data-state=(s.state.as_str())
            title={ "submit " (s.submit_id) ", " (format::time(s.created_at)) ": " (s.state.as_str()) } {
            @for c in &s.cells {
                @let label = cell_label(&c.cell);
                @let title = match &c.reason {
                    Some(r) => format!("#{} {label}: {} ({r})", c.build, c.state.as_str()),
                    None => format!("#{} {label}: {}", c.build, c.state.as_str()),
                };
                // `title` names the empty link for screen readers too
                // (its accessible name's last fallback): 10 000 cells of a
                // big grid need no second copy in `aria-label`.
                a class={ "cell s-" (c.state.as_str()) } data-state=(c.state.as_str())
                    data-cell=(label) href={ "/builds/" (c.build) } title=(title) {}
            }
        }
    }
}

/// `arch=arm os=linux`, or `-` for a builder without a matrix.
fn cell_label(cell: &std::collections::BTreeMap<String, String>) -> String {
    if cell.is_empty() {
        return "-".to_owned();
    }
    cell.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A builder name as a query value (they are config names, but escape
/// anyway).
fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{BuildState, BuildSummary};

    fn summary(id: i64, submit: &str, builder: &str, os: &str) -> BuildSummary {
        BuildSummary {
            id,
            submit_id: submit.to_owned(),
            builder: builder.to_owned(),
            cell: [("os".to_owned(), os.to_owned())].into(),
            state: BuildState::Succeeded,
            reason: Some("<b>ok</b>".to_owned()),
            created_at: 0,
            finished_at: None,
        }
    }

    #[test]
    fn a_two_cell_submit_is_two_squares_and_input_is_escaped() {
        let grid = Grid::build(
            ["<script>".to_owned()],
            vec![summary(1, "s1", "m", "linux"), summary(2, "s1", "m", "mac")],
            10,
        );
        let html = render(&grid, 10).into_string();
        assert!(html.contains(r#"data-builder="m""#), "{html}");
        assert_eq!(html.matches(r#"class="cell s-succeeded""#).count(), 2);
        assert!(html.contains(r#"data-cell="os=mac""#), "{html}");
        assert!(!html.contains("<script>"), "{html}");
        assert!(!html.contains("<b>ok"), "{html}");
    }
}
