//! The master's own log: text for people (colours only on a terminal) or
//! JSON for collectors, one object per line, on stderr.

use std::io::IsTerminal;

use serde::Deserialize;
use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Installs the subscriber (`RUST_LOG` filters, default `info`). A second
/// call does nothing.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // Fails only if a subscriber is already set, which is fine.
    let _ = match format {
        LogFormat::Json => builder
            .json()
            // Fields at the top level: `{"level":…,"message":…,"build":3}`.
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        // A file or a pipe gets no escape codes (NO_COLOR is honoured too).
        LogFormat::Text => builder
            .with_ansi(ansi_wanted(std::io::stderr().is_terminal()))
            .try_init(),
    };
}

/// Colours only on a terminal, and never with NO_COLOR set (no-color.org).
fn ansi_wanted(terminal: bool) -> bool {
    terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_parse_from_config_and_flag() {
        #[derive(Deserialize)]
        struct T {
            f: LogFormat,
        }
        let t: T = toml::from_str("f = \"json\"").expect("json");
        assert_eq!(t.f, LogFormat::Json);
        assert!(toml::from_str::<T>("f = \"yaml\"").is_err());
        use clap::ValueEnum;
        assert_eq!(LogFormat::from_str("text", false), Ok(LogFormat::Text));
    }

    #[test]
    fn the_config_key_sets_the_format_and_a_bad_one_is_named() {
        const POOL: &str = "[pools.local]\nprovider = \"local\"\n";
        let load = |text: &str| {
            crate::config::load_str(
                &format!("{text}{POOL}"),
                std::path::Path::new("burst.toml"),
                &Default::default(),
            )
        };
        let config = load("[master]\nlog_format = \"json\"\n").expect("valid");
        assert_eq!(config.master.log_format, LogFormat::Json);
        let config = load("").expect("valid");
        assert_eq!(config.master.log_format, LogFormat::Text);
        assert!(!config.master.metrics_open);
        let err = load("[master]\nlog_format = \"xml\"\n").expect_err("invalid");
        let msg = burst_common::error_chain::Chain(&err).to_string();
        assert!(
            msg.contains("log_format") && msg.contains("burst.toml"),
            "{msg}"
        );
    }

    #[test]
    fn no_colours_off_a_terminal() {
        assert!(!ansi_wanted(false));
    }
}
