//! `burst cost [--since 7d] [--by builder|pool|label] [--json]`: what the
//! workers cost over a window, over `GET /api/v1/cost`.

use super::client::Client;
use super::exit::{CliError, Exit};
use super::output::Output;
use super::render::table;
use crate::cost::report::{CostReport, CostRow, GroupBy};

pub async fn run(
    client: &Client,
    since: &str,
    by: GroupBy,
    json: bool,
    out: &Output,
) -> Result<Exit, CliError> {
    let by_name = match by {
        GroupBy::Builder => "builder",
        GroupBy::Pool => "pool",
        GroupBy::Label => "label",
    };
    // Both values are checked (clap's enum, the master's duration parser);
    // encoding keeps any text from changing the query.
    let query: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("since", since)
        .append_pair("by", by_name)
        .finish();
    let path = format!("/api/v1/cost?{query}");
    if json {
        let value: serde_json::Value = client.get_json(&path).await?;
        out.line(&serde_json::to_string_pretty(&value).unwrap_or_default())?;
        return Ok(Exit::Success);
    }
    let report: CostReport = client.get_json(&path).await?;
    out.write(render(&report, since, by_name).as_bytes())?;
    Ok(Exit::Success)
}

fn money(v: f64) -> String {
    format!("{v:.4}")
}

fn row(r: &CostRow) -> Vec<String> {
    vec![
        r.key.clone(),
        money(r.spend),
        r.instance_hours
            .map(|h| format!("{h:.2}"))
            .unwrap_or_default(),
        format!("{:.0}%", r.idle_share * 100.0),
        r.builds.to_string(),
        r.cost_per_build_p50.map(money).unwrap_or_default(),
        r.cost_per_build_p95.map(money).unwrap_or_default(),
    ]
}

/// The report as a table, its total last.
pub fn render(report: &CostReport, since: &str, by: &str) -> String {
    let spend = format!("SPEND ({})", report.currency);
    let headers = [
        by.to_uppercase(),
        spend,
        "INSTANCE-HOURS".into(),
        "IDLE".into(),
        "BUILDS".into(),
        "PER BUILD P50".into(),
        "P95".into(),
    ];
    let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
    let mut rows: Vec<Vec<String>> = report.rows.iter().map(row).collect();
    rows.push(row(&report.total));
    let mut s = format!("cost over the last {since}\n");
    if report.rows.is_empty() {
        s.push_str("no priced worker ran in this window (set price_per_hour on a pool)\n");
        return s;
    }
    s.push_str(&table(&headers, &rows));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_lists_each_group_then_the_total() {
        let row = CostRow {
            key: "linux".into(),
            spend: 1.5,
            instance_hours: Some(3.0),
            idle_share: 0.25,
            builds: 4,
            cost_per_build_p50: Some(0.3),
            cost_per_build_p95: Some(0.5),
        };
        let report = CostReport {
            since: 0,
            until: 1,
            by: GroupBy::Pool,
            currency: "USD".into(),
            rows: vec![row.clone()],
            total: CostRow {
                key: "total".into(),
                ..row
            },
        };
        let text = render(&report, "7d", "pool");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "cost over the last 7d");
        assert!(
            lines[1].starts_with("POOL   SPEND (USD)  INSTANCE-HOURS  IDLE"),
            "{text}"
        );
        assert!(
            lines[2].starts_with("linux  1.5000       3.00            25%   4"),
            "{text}"
        );
        assert!(lines[3].starts_with("total  1.5000"), "{text}");
        let empty = CostReport {
            rows: vec![],
            ..report
        };
        assert!(render(&empty, "1d", "pool").contains("no priced worker ran"));
    }
}
