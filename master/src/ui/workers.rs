//! `/workers`: every worker, every pool with its caps and backoff, and the
//! instance ledger with the orphans startup reaped. The data comes from
//! the loaders behind `/api/v1/workers`, `/api/v1/pools` and
//! `/api/v1/instances`; this only draws it.
//!
//! DOM: `ul#budget-alerts` (`li[data-level]`, one per budget at or over its
//! warning share), `table#pools` (`tr[data-pool][data-backoff]`, `td.workers`
//! (of max), `td.min-idle`, `td.launching`, `td.backoff`, `td.error`,
//! `td.spend` (hourly price in flight, then `span.budget[data-level]` per
//! budget)),
//! `table#workers` (`tr[data-worker][data-state]`, the scheduler's state:
//! launching, connecting, idle, busy, reconnecting, terminating; `td.age`,
//! `td.pool`, `td.provider`, `td.host`, `td.os`, `td.done`, `td.cost`),
//! `p#orphans` and `table#ledger` (`tr[data-worker][data-state][data-orphan]`).

use axum::extract::State;
use axum::response::Html;
use maud::{html, Markup, PreEscaped};

use super::error::{OrPage, UiResult};
use super::format;
use super::layout::{self, Nav};
use crate::api::workers::{load_instances, load_pools, load_workers, LedgerQuery};
use crate::api::{AppState, Caller};
use crate::model::{now_millis, Instance, Millis, PoolView, WorkerView};

/// The page's own rules (a constant, never input).
const STYLE: &str = "\
#pools td.num, #workers td.num { text-align: right; }
#workers td.id, #ledger td.id { font: 12.5px ui-monospace, monospace; }
#ledger tr.orphan td { background: #fff4e5; }
#pools td.error, #ledger td.error { color: var(--bad, #c62828); }
#budget-alerts li[data-level=warning], #pools span.budget[data-level=warning] { color: #8a5a00; }
#budget-alerts li[data-level=reached], #pools span.budget[data-level=reached] { color: var(--bad, #c62828); font-weight: 600; }
section { margin-bottom: 1.5em; }
";

/// Ledger rows the page shows, newest first.
const LEDGER_ROWS: u32 = 100;

pub async fn page(State(state): State<AppState>, caller: Caller) -> UiResult<Html<String>> {
    let pools = load_pools(&state).await.ui(&caller)?;
    let workers = load_workers(&state).await.ui(&caller)?;
    let ledger = LedgerQuery {
        live: false,
        limit: LEDGER_ROWS,
    };
    let ledger = load_instances(&state, &ledger).await.ui(&caller)?;
    let body = render(&pools, &workers, &ledger, now_millis());
    Ok(Html(
        layout::page("Workers and pools", &caller, Nav::Workers, body).into_string(),
    ))
}

pub fn render(
    pools: &[PoolView],
    workers: &[WorkerView],
    ledger: &[Instance],
    now: Millis,
) -> Markup {
    html! {
        style { (PreEscaped(STYLE)) }
        h1 { "Workers and pools" }
        (budget_alerts(pools))
        section {
            h2 { "Pools" }
            (pools_table(pools))
        }
        section {
            h2 { "Workers" }
            @if workers.is_empty() {
                p id="workers-empty" { "No workers: they are launched when builds need them." }
            }
            (workers_table(workers, now))
        }
        section {
            h2 { "Instance ledger" }
            (ledger_table(ledger))
        }
    }
}

fn pools_table(pools: &[PoolView]) -> Markup {
    html! {
        table id="pools" {
            thead {
                tr {
                    th { "Pool" } th { "Provider" } th { "Labels" } th { "Workers / max" }
                    th { "min_idle" } th { "Launching / max" } th { "Idle" } th { "Busy" }
                    th { "Queued" } th { "Backoff" } th { "Last error" } th { "Spend" }
                }
            }
            tbody {
                @for p in pools {
                    tr data-pool=(p.pool) data-backoff=(yes_no(p.backoff_secs.is_some())) {
                        td { (p.pool) }
                        td { (p.provider) }
                        td { (p.labels.join(", ")) }
                        td.num.workers { (p.workers) " / " (p.max_workers) }
                        td.num.min-idle {
                            (p.min_idle)
                            @if let Some(i) = p.warm_period {
                                " " span.period title="set by this [[schedule]] entry (0-based)" { "(schedule " (i) ")" }
                            }
                        }
                        td.num.launching { (p.launching) " / " (p.max_starting) }
                        td.num { (p.idle) }
                        td.num { (p.busy) }
                        td.num { (p.queued) }
                        td.backoff {
                            @match p.backoff_secs {
                                Some(s) => { "retry in " (format::duration_ms(secs_to_ms(s))) },
                                None => { "-" },
                            }
                            @for h in p.hosts.iter().filter(|h| h.backoff_secs > 0.0) {
                                br;
                                span.host { (h.host) ": " (format::duration_ms(secs_to_ms(h.backoff_secs))) }
                            }
                        }
                        td.error {
                            @if let Some(e) = &p.permanent_error {
                                strong { "permanent: " } (e)
                            } @else if let Some(e) = &p.last_error {
                                (e)
                            } @else {
                                "-"
                            }
                        }
                        td.spend {
                            (format::money(p.spend_rate)) "/h"
                            @for b in &p.budgets {
                                br;
                                span.budget data-level=(b.level) data-budget=(b.budget) { (b.message) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Budgets at or over their warning share, once each (the master's shows
/// on every pool's row, but is one alert).
fn budget_alerts(pools: &[PoolView]) -> Markup {
    let mut seen = Vec::new();
    for b in pools.iter().flat_map(|p| &p.budgets) {
        if b.level != "ok"
            && !seen
                .iter()
                .any(|s: &&crate::model::BudgetView| s.budget == b.budget && s.period == b.period)
        {
            seen.push(b);
        }
    }
    html! {
        @if !seen.is_empty() {
            ul id="budget-alerts" {
                @for b in seen {
                    li data-level=(b.level) {
                        (b.message)
                        @if b.level == "reached" { ": no new workers are launched until it resets or is raised" }
                    }
                }
            }
        }
    }
}

fn workers_table(workers: &[WorkerView], now: Millis) -> Markup {
    html! {
        table id="workers" {
            thead {
                tr {
                    th { "Worker" } th { "State" } th { "For" } th { "Pool" } th { "Provider" }
                    th { "Host or instance" } th { "OS" } th { "Builds done" } th { "Build" }
                    th { "Up" } th { "Cost so far" }
                }
            }
            tbody {
                @for w in workers {
                    tr data-worker=(w.worker_id) data-state=(w.state) {
                        td.id { (w.worker_id) }
                        td { span class={ "state s-" (w.state) } { (w.state) } }
                        td.age { (age(w.state_age_secs)) }
                        td.pool { (w.pool) }
                        td.provider { (w.provider) }
                        td.id.host {
                            @match (&w.host, &w.provider_id) {
                                (Some(h), Some(id)) => { (h) " · " (id) },
                                (Some(h), None) => { (h) },
                                (None, Some(id)) => { (id) },
                                (None, None) => { "-" },
                            }
                        }
                        td.os { (w.os.as_deref().unwrap_or("-")) }
                        td.num.done { (w.builds_done) }
                        td {
                            @if let Some(b) = w.build {
                                a href={ "/builds/" (b) } { "#" (b) }
                            } @else { "-" }
                        }
                        td { (format::span(Some(w.launched_at), None, now)) }
                        td.num.cost {
                            @match w.cost_dollars {
                                Some(c) => { (format::money(c)) },
                                None => { "-" },
                            }
                        }
                    }
                }
            }
        }
    }
}

fn ledger_table(rows: &[Instance]) -> Markup {
    let orphans = rows.iter().filter(|r| r.reaped_orphan()).count();
    html! {
        p id="orphans" {
            "Orphans found and terminated at startup: " strong { (orphans) }
            " (in the newest " (rows.len()) " rows)"
        }
        table id="ledger" {
            thead {
                tr {
                    th { "Worker" } th { "Pool" } th { "Provider" } th { "Provider id" }
                    th { "State" } th { "Launched" } th { "Connected" } th { "Ended" }
                    th { "Ended by" } th { "Error" }
                }
            }
            tbody {
                @for r in rows {
                    tr data-worker=(r.worker_id) data-state=(r.state.as_str())
                        data-orphan=(yes_no(r.reaped_orphan())) class=[r.reaped_orphan().then_some("orphan")] {
                        td.id { (r.worker_id) }
                        td { (r.pool) }
                        td { (r.provider) }
                        td.id { (r.provider_id.as_deref().unwrap_or("-")) }
                        td { span class={ "state s-" (r.state.as_str()) } { (r.state.as_str()) } }
                        td { (format::time(r.launched_at)) }
                        td { (r.connected_at.map_or_else(|| "-".to_owned(), format::time)) }
                        td { (r.terminated_at.map_or_else(|| "-".to_owned(), format::time)) }
                        td { (r.ended_by.as_deref().unwrap_or("-")) }
                        td.error { (r.error.as_deref().unwrap_or("")) }
                    }
                }
            }
        }
    }
}

/// Time in state, to the second.
fn age(secs: u64) -> String {
    if secs == 0 {
        "<1s".to_owned()
    } else {
        format::duration_ms(secs.saturating_mul(1000))
    }
}

/// `data-*` flags read `true` / `false`.
fn yes_no(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}

fn secs_to_ms(secs: f64) -> u64 {
    // Seconds of backoff, never negative or huge; `as` saturates.
    (secs.max(0.0) * 1000.0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{InstanceState, REAPED_AT_START};

    #[test]
    fn orphans_are_marked_and_errors_escaped() {
        let row = |id: &str, ended_by: Option<String>| Instance {
            worker_id: id.to_owned(),
            pool: "docker".to_owned(),
            provider: "docker".to_owned(),
            provider_id: Some("c1".to_owned()),
            state: InstanceState::Gone,
            details: serde_json::Value::Null,
            error: Some("<script>alert(1)</script>".to_owned()),
            launched_at: 0,
            connected_at: None,
            terminated_at: Some(10),
            ended_by,
            resume_hash: None,
            resume_prev_hash: None,
        };
        let ledger = [
            row("w-1", Some(format!("{REAPED_AT_START} m-1"))),
            row("w-2", None),
        ];
        let html = render(&[], &[], &ledger, 0).into_string();
        assert!(
            html.contains(r#"data-worker="w-1" data-state="gone" data-orphan="true""#),
            "{html}"
        );
        assert!(
            html.contains(r#"data-worker="w-2" data-state="gone" data-orphan="false""#),
            "{html}"
        );
        assert!(!html.contains("<script>alert"), "{html}");
    }

    /// The cell of `class` in the first row holding `row` (maud writes
    /// `class="a b"` for `td.a.b`).
    fn cell(html: &str, row: &str, class: &str) -> String {
        let at = html
            .find(row)
            .unwrap_or_else(|| panic!("no {row} in {html}"));
        let rest = &html[at..];
        let open = format!("class=\"{class}\">");
        let start = rest
            .find(&open)
            .unwrap_or_else(|| panic!("no td.{class} after {row}"))
            + open.len();
        let end = start + rest[start..].find("</td>").unwrap_or(0);
        rest[start..end].to_owned()
    }

    #[test]
    fn every_worker_and_pool_fact_is_drawn() {
        let pool = PoolView {
            pool: "ec2".to_owned(),
            provider: "ec2".to_owned(),
            labels: vec!["linux".to_owned()],
            max_workers: 8,
            min_idle: 2,
            warm_period: Some(1),
            max_starting: 3,
            workers: 5,
            launching: 1,
            idle: 2,
            busy: 2,
            queued: 4,
            backoff_secs: Some(30.0),
            last_error: Some("InsufficientInstanceCapacity".to_owned()),
            permanent_error: None,
            hosts: Vec::new(),
            spend_rate: 0.75,
            budgets: vec![
                crate::model::BudgetView {
                    budget: "global".into(),
                    period: "day".into(),
                    spent: 41.0,
                    limit: 40.0,
                    level: "reached".into(),
                    message: "budget reached: 41.00 of 40.00 USD today".into(),
                },
                crate::model::BudgetView {
                    budget: "pool ec2".into(),
                    period: "month".into(),
                    spent: 10.0,
                    limit: 100.0,
                    level: "ok".into(),
                    message: "budget: 10.00 of 100.00 USD this month (pool ec2)".into(),
                },
            ],
        };
        let worker = WorkerView {
            worker_id: "ec2-7".to_owned(),
            pool: "ec2".to_owned(),
            state: "busy".to_owned(),
            build: Some(42),
            builds_done: 17,
            os: Some("linux".to_owned()),
            labels: vec!["linux".to_owned()],
            state_age_secs: 90,
            provider: "ec2".to_owned(),
            provider_id: Some("i-0abc".to_owned()),
            host: None,
            launched_at: 0,
            cost_dollars: Some(1.25),
        };
        let html = render(&[pool], &[worker], &[], 3_600_000).into_string();
        let p = r#"data-pool="ec2""#;
        assert_eq!(cell(&html, p, "num workers"), "5 / 8");
        assert!(
            cell(&html, p, "num min-idle").starts_with("2 <span class=\"period\""),
            "{html}"
        );
        assert!(
            cell(&html, p, "num min-idle").contains("(schedule 1)"),
            "{html}"
        );
        assert_eq!(cell(&html, p, "num launching"), "1 / 3");
        assert!(cell(&html, p, "backoff").contains("retry in 30"), "{html}");
        assert_eq!(cell(&html, p, "error"), "InsufficientInstanceCapacity");
        let spend = cell(&html, p, "spend");
        assert!(spend.starts_with("$0.75/h"), "{spend}");
        assert!(
            spend.contains(r#"data-level="reached" data-budget="global">budget reached: 41.00 of 40.00 USD today<"#),
            "{spend}"
        );
        assert!(html.contains(r#"<ul id="budget-alerts"><li data-level="reached">budget reached: 41.00 of 40.00 USD today: no new workers"#), "{html}");
        assert!(
            !html.contains(r#"<li data-level="ok""#),
            "only budgets over their warning share alert: {html}"
        );
        assert!(html.contains(r#"data-backoff="true""#), "{html}");
        let w = r#"data-worker="ec2-7""#;
        assert!(
            html.contains(r#"data-worker="ec2-7" data-state="busy""#),
            "{html}"
        );
        assert_eq!(cell(&html, w, "age"), "1m 30s");
        assert_eq!(cell(&html, w, "pool"), "ec2");
        assert_eq!(cell(&html, w, "provider"), "ec2");
        assert_eq!(cell(&html, w, "id host"), "i-0abc");
        assert_eq!(cell(&html, w, "os"), "linux");
        assert_eq!(cell(&html, w, "num done"), "17");
        assert_eq!(cell(&html, w, "num cost"), format::money(1.25));
        assert!(html.contains(r#"href="/builds/42""#), "{html}");
    }
}
