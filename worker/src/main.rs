//! `burst-worker`: parse flags, set up logging, run the worker.

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Context;
use burst_worker::Args;
use clap::Parser;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        // clap would exit 2 on a usage error, but 2 means "refused by the
        // master" to whoever launched us.
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    // Before the runtime starts any thread: changing the environment is only
    // sound while nothing else reads it.
    let legacy_token = burst_worker::launch_token::scrub_environment();
    // Colours only on a terminal: a local worker's log is a file.
    let ansi = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let result = args.into_config(legacy_token).and_then(|config| {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("failed to start the async runtime")?
            .block_on(burst_worker::run_until(
                config,
                burst_worker::shutdown_signal(),
            ))
    });
    match result {
        Ok(exit) => {
            tracing::info!(code = exit.code(), "burst-worker exiting: {exit:?}");
            ExitCode::from(exit.code())
        }
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}
