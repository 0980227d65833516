//! `burst config reload` and `burst gc`: the operator's commands over
//! `POST /api/v1/config/reload` and `POST /api/v1/gc`.

use std::io::Write;

use super::client::{Client, ClientError};
use super::exit::{CliError, Exit};
use super::output::Output;
use crate::daemon::reload::ReloadReport;
use crate::janitor::GcReport;

/// Prints what the reload changed; a refused reload prints each problem
/// (`file:line: key: message`) to `err` and exits 1, like `config check`.
pub async fn reload(
    client: &Client,
    json: bool,
    out: &Output,
    err: &mut dyn Write,
) -> Result<Exit, CliError> {
    let report: ReloadReport = match client.post_json("/api/v1/config/reload").await {
        Ok(report) => report,
        Err(ClientError::Api {
            status: 422,
            message,
        }) => {
            writeln!(err, "{message}")?;
            return Ok(Exit::ConfigInvalid);
        }
        Err(e) => return Err(e.into()),
    };
    if json {
        out.line(&serde_json::to_string_pretty(&report).unwrap_or_default())?;
        return Ok(Exit::Success);
    }
    let p = &report.pools;
    let mut parts = Vec::new();
    for (what, names) in [
        ("added", &p.added),
        ("removed (draining)", &p.removed),
        ("changed", &p.changed),
    ] {
        if !names.is_empty() {
            parts.push(format!("pools {what}: {}", names.join(", ")));
        }
    }
    if parts.is_empty() {
        parts.push("no pool changed".to_owned());
    }
    out.line(&format!(
        "reloaded {}: {}; builders: {}",
        report.config,
        parts.join("; "),
        if report.builders.is_empty() {
            "none".to_owned()
        } else {
            report.builders.join(", ")
        }
    ))?;
    Ok(Exit::Success)
}

/// Runs a retention pass now, or (`dry_run`) lists what it would delete.
pub async fn gc(
    client: &Client,
    dry_run: bool,
    json: bool,
    out: &Output,
) -> Result<Exit, CliError> {
    let path = if dry_run {
        "/api/v1/gc?dry_run=true"
    } else {
        "/api/v1/gc"
    };
    let report: GcReport = client.post_json(path).await?;
    if json {
        out.line(&serde_json::to_string_pretty(&report).unwrap_or_default())?;
        return Ok(Exit::Success);
    }
    // Cache volumes go whatever `[retention]` says.
    for v in &report.volumes {
        out.line(&format!("removed cache volume {v}"))?;
    }
    for c in &report.caches {
        out.line(&format!(
            "removed cache {c}: unused for [artifacts] cache_max_age"
        ))?;
    }
    if !report.enabled {
        out.line("nothing to delete: [retention] sets neither max_age nor keep_last, so every build is kept")?;
        return Ok(Exit::Success);
    }
    for b in &report.builds {
        let finished = chrono::DateTime::from_timestamp_millis(b.finished_at)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default();
        out.line(&format!(
            "build {}\t{}\t{}\tfinished {finished}",
            b.id,
            b.builder,
            b.state.as_str()
        ))?;
    }
    let size = bytesize::ByteSize::b(report.bytes).display().si();
    let n = report.builds.len();
    let builds = if n == 1 { "build" } else { "builds" };
    let more = if report.truncated {
        " (and more: the list stops at 10000)"
    } else {
        ""
    };
    if dry_run {
        out.line(&format!(
            "would delete {n} {builds}{more} and {size} of their logs; nothing was deleted (run `burst gc` to delete them now)"
        ))?;
    } else {
        out.line(&format!("deleted {n} {builds} and {size} of their logs"))?;
    }
    Ok(Exit::Success)
}
