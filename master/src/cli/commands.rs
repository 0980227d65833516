//! The subcommands other than `submit`: read-only views, `logs`, `cancel`,
//! `config check` and `master`.

use std::io::Write;
use std::path::{Path, PathBuf};

use burst_common::error_chain::Chain;
use futures::StreamExt;
use serde::Serialize;

use super::client::Client;
use super::exit::{CliError, Exit};
use super::follow::{self, Timing};
use super::output::Output;
use super::render;
use crate::model::{now_millis, BuildId, BuildState};
use crate::{config, daemon};

pub async fn builds(client: &Client, json: bool, out: &Output) -> Result<Exit, CliError> {
    if json {
        return print_json(
            out,
            &client
                .get_json::<serde_json::Value>("/api/v1/builds")
                .await?,
        );
    }
    out.write(render::builds_table(&client.builds().await?, now_millis()).as_bytes())?;
    Ok(Exit::Success)
}

pub async fn build(
    client: &Client,
    id: BuildId,
    json: bool,
    out: &Output,
) -> Result<Exit, CliError> {
    if json {
        let path = format!("/api/v1/builds/{id}");
        return print_json(out, &client.get_json::<serde_json::Value>(&path).await?);
    }
    let detail = client.build_detail(id).await?;
    out.write(render::build_detail(&detail, now_millis()).as_bytes())?;
    Ok(Exit::Success)
}

/// `burst healthcheck`: `ok` and 0, or the reason on stderr and 1.
pub async fn healthcheck(
    client: &Client,
    out: &Output,
    err: &mut dyn Write,
) -> Result<Exit, CliError> {
    match client.healthz().await {
        Ok(body) => {
            out.line(&body)?;
            Ok(Exit::Success)
        }
        Err(e) => {
            let _ = writeln!(err, "burst: unhealthy: {}", Chain(&e));
            Ok(Exit::Unhealthy)
        }
    }
}

pub async fn workers(client: &Client, json: bool, out: &Output) -> Result<Exit, CliError> {
    if json {
        return print_json(
            out,
            &client
                .get_json::<serde_json::Value>("/api/v1/workers")
                .await?,
        );
    }
    out.write(render::workers_table(&client.workers().await?).as_bytes())?;
    Ok(Exit::Success)
}

/// Copies the log to `out` as it arrives.
pub async fn logs(
    client: &Client,
    id: BuildId,
    follow: bool,
    out: &Output,
    timing: &Timing,
) -> Result<Exit, CliError> {
    if follow {
        follow::follow_log(client, id, timing, &mut |chunk: &[u8]| out.write(chunk)).await?;
        return Ok(Exit::Success);
    }
    let mut stream = client.log_stream(id, false).await?;
    while let Some(chunk) = stream.next().await {
        out.write(&chunk?)?;
    }
    Ok(Exit::Success)
}

pub async fn cancel(client: &Client, id: BuildId, out: &Output) -> Result<Exit, CliError> {
    let answer = client.cancel(id).await?;
    // The answer should carry the state; ask for the build if it does not.
    let state = match answer
        .get("state")
        .and_then(|s| s.as_str())
        .and_then(BuildState::parse)
    {
        Some(state) => state,
        None => client.build(id).await?.state,
    };
    out.line(&format!("build {id}: {}", state.as_str()))?;
    Ok(Exit::Success)
}

/// Prints `FILE: ok (N pools, M builders)`, or the problems to `err` and
/// exits 1.
pub fn config_check(file: &Path, out: &Output, err: &mut dyn Write) -> Result<Exit, CliError> {
    match config::load_file(file) {
        Ok(c) => {
            let summary = format!(
                "{}: ok ({} pools, {} builders)",
                file.display(),
                c.pools.len(),
                c.builders.len()
            );
            out.line(&summary)?;
            Ok(Exit::Success)
        }
        Err(e) => {
            let _ = writeln!(err, "{}", Chain(&e));
            Ok(Exit::ConfigInvalid)
        }
    }
}

/// Runs the daemon in the foreground, logging to stderr (`RUST_LOG`
/// filters, default `info`) as text or JSON: `log_format`, else the config's.
pub async fn master(
    config_path: Option<PathBuf>,
    log_format: Option<crate::logging::LogFormat>,
) -> Result<Exit, CliError> {
    let loaded = match &config_path {
        Some(path) => config::load_file(path),
        // The embedded defaults take BURST__* overrides like a file does.
        None => config::load_str(
            config::EMBEDDED_TOML,
            std::path::Path::new(config::EMBEDDED_NAME),
            &config::env_overrides(),
        ),
    };
    let mut config = loaded.map_err(|e| CliError::Config(Chain(&e).to_string()))?;
    if let Some(format) = log_format {
        config.master.log_format = format;
    }
    crate::logging::init(config.master.log_format);
    daemon::run(config, config_path)
        .await
        .map_err(|e| CliError::Daemon(format!("{e:#}")))?;
    Ok(Exit::Success)
}

pub(super) fn print_json<T: Serialize>(out: &Output, value: &T) -> Result<Exit, CliError> {
    let text =
        serde_json::to_string_pretty(value).map_err(|e| CliError::Internal(e.to_string()))?;
    out.line(&text)?;
    Ok(Exit::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_check_reports_counts_or_errors() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let good = dir.path().join("good.toml");
        std::fs::write(
            &good,
            "[pools.local]\nprovider = \"local\"\n\n[[builders]]\nname = \"hello\"\n\
             [[builders.steps]]\nname = \"greet\"\nrun = \"echo hi\"\n",
        )?;
        let (out, buf) = Output::buffer();
        let mut err = Vec::new();
        assert_eq!(config_check(&good, &out, &mut err)?, Exit::Success);
        assert_eq!(
            buf.contents(),
            format!("{}: ok (1 pools, 1 builders)\n", good.display())
        );
        assert!(err.is_empty());

        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, "[master]\nnope = 1\n")?;
        let (out, buf) = Output::buffer();
        assert_eq!(config_check(&bad, &out, &mut err)?, Exit::ConfigInvalid);
        assert!(buf.contents().is_empty());
        assert!(String::from_utf8_lossy(&err).contains("bad.toml"));
        Ok(())
    }
}
