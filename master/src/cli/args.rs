//! Command-line arguments (clap derive). Parsing errors exit with 2.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::model::{BuildId, Role};

pub const DEFAULT_URL: &str = "http://127.0.0.1:8480";

/// burst: a CI master that launches workers on demand.
#[derive(Debug, Parser)]
#[command(name = "burst", version, propagate_version = true)]
#[command(
    after_help = "Exit codes: 0 success; 1 a followed build did not succeed, or \
`config check` found the config invalid; 2 usage, connection or API error; 3 the \
master's TLS certificate failed verification."
)]
pub struct Cli {
    /// URL of the master's HTTP API.
    #[arg(long, global = true, env = "BURST_URL", default_value = DEFAULT_URL)]
    pub url: String,

    /// File holding the API token. Without it the token comes from
    /// BURST_TOKEN, else from a master on this machine started in this
    /// directory (its `.burst/admin.token`).
    #[arg(long, global = true, value_name = "FILE")]
    pub token_file: Option<PathBuf>,

    /// CA certificate(s) (PEM) to check an https:// master against. Without
    /// it: the self-signed CA of a master on this machine (found like the
    /// admin token), else the system's roots.
    #[arg(long, global = true, env = "BURST_CA_FILE", value_name = "FILE")]
    pub ca_file: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Replay a job trace on virtual time through the scheduler, with
    /// simulated providers: queue waits, instance time, launches and cost
    /// (docs/simulate.md). Talks to no master.
    Simulate {
        /// Config file: its pools, and `[simulate]` for their simulated
        /// providers.
        #[arg(long, value_name = "FILE", required_unless_present = "generate")]
        config: Option<PathBuf>,
        /// The trace, CSV or JSON Lines: submit time, labels, duration,
        /// optional matrix size.
        #[arg(long, value_name = "TRACE", required_unless_present = "generate")]
        trace: Option<PathBuf>,
        /// Also replay under emulations of other systems' policies, one
        /// table.
        #[arg(long, value_enum, value_name = "SET")]
        compare: Option<super::simulate::CompareSet>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Write an SVG chart: workers and queue over time (the config's
        /// own policy); with --compare, each policy's wait p95 against its
        /// idle instance-hours (the trade-off).
        #[arg(long, value_name = "FILE.svg")]
        chart: Option<PathBuf>,
        /// Seed of the simulated boot times, failures and worker ids (and
        /// of --generate).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Replay at least this long, e.g. "7d" (default: to the end of
        /// the trace's last day).
        #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
        horizon: Option<std::time::Duration>,
        /// Print a generated week-long trace of KIND (CSV) instead.
        #[arg(long, value_enum, value_name = "KIND", conflicts_with_all = ["config", "trace", "compare", "chart"])]
        generate: Option<crate::simulate::Kind>,
        #[command(flatten)]
        flags: super::simulate::SimFlags,
    },
    /// Run the master until SIGTERM/Ctrl-C.
    Master {
        /// Config file; the embedded default config when absent.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Log as text (colours only on a terminal) or JSON, one object per
        /// line; overrides `master.log_format`.
        #[arg(long, value_enum, value_name = "FORMAT")]
        log_format: Option<crate::logging::LogFormat>,
    },
    /// Submit a build of BUILDER (one build per matrix cell), or many
    /// submits at once with --from.
    Submit {
        /// The builder's name in the master's config.
        #[arg(required_unless_present = "from")]
        builder: Option<String>,
        /// A build parameter; repeatable, a later KEY wins.
        #[arg(long = "param", value_name = "KEY=VALUE", value_parser = parse_param)]
        params: Vec<(String, String)>,
        /// Read many submits from FILE (`-`: stdin) and send them as one
        /// batch, queued whole or not at all: one `{"builder": "NAME",
        /// "params": {"K": "V"}}` per line (JSON lines), or one JSON array of
        /// them.
        #[arg(long, value_name = "FILE|-", conflicts_with_all = ["builder", "params"])]
        from: Option<String>,
        /// Stream the builds' logs and wait for their results; exit 1 if
        /// any build did not succeed.
        #[arg(long)]
        follow: bool,
    },
    /// List builds.
    Builds {
        /// Print the API's JSON answer.
        #[arg(long)]
        json: bool,
    },
    /// Show one build with its attempts and steps.
    Build {
        /// Build id.
        id: BuildId,
        /// Print the API's JSON answer.
        #[arg(long)]
        json: bool,
    },
    /// Print a build's log.
    Logs {
        /// Build id.
        build: BuildId,
        /// Keep printing until the build finishes.
        #[arg(long)]
        follow: bool,
    },
    /// List a build's artifacts, or download them.
    Artifacts {
        /// Build id.
        build: BuildId,
        /// Download this artifact (its path as listed) into `-o DIR`.
        #[arg(long, value_name = "PATH")]
        get: Option<String>,
        /// Where downloads go; without --get, every artifact is downloaded
        /// here under its own path.
        #[arg(short = 'o', long = "output", value_name = "DIR")]
        output: Option<std::path::PathBuf>,
        /// Print the API's JSON answer.
        #[arg(long)]
        json: bool,
    },
    /// List the workers the master knows.
    Workers {
        /// Print the API's JSON answer.
        #[arg(long)]
        json: bool,
    },
    /// What the workers cost: spend, instance-hours, idle share and cost per
    /// build (p50/p95), grouped by builder, pool or label.
    Cost {
        /// How far back, e.g. 24h, 7d, 30d.
        #[arg(long, default_value = "7d")]
        since: String,
        /// How to group the spend.
        #[arg(long, value_enum, default_value = "pool")]
        by: CostBy,
        /// Print the API's JSON answer.
        #[arg(long)]
        json: bool,
    },
    /// Cancel a build.
    Cancel {
        /// Build id.
        build: BuildId,
    },
    /// Work with config files.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Delete the finished builds `[retention]` no longer keeps, with their
    /// logs, now (admin role); the master also does it in the background.
    Gc {
        /// Only list what would be deleted.
        #[arg(long)]
        dry_run: bool,
        /// Print the API's JSON answer.
        #[arg(long)]
        json: bool,
    },
    /// Manage API tokens (admin role).
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Write a commented starter config for a provider, check what this
    /// machine lacks to run it, and print the next steps.
    Init {
        /// Which kind of workers the config starts with.
        #[arg(long, value_enum, default_value = "local")]
        provider: super::init::Provider,
        /// Overwrite an existing burst.toml.
        #[arg(long)]
        force: bool,
        /// Directory to write burst.toml into (created if missing).
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Print a shell completion script (e.g. `burst completions bash >
    /// /etc/bash_completion.d/burst`).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Exit 0 when the master answers GET /healthz, 1 when it does not: a
    /// container HEALTHCHECK (the master image has no curl). Needs no token.
    Healthcheck,
    /// Write man pages (burst.1 and one per subcommand) into DIR.
    Manpages {
        /// Created if missing.
        dir: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token and print its value (shown only this once).
    Create {
        /// A name for the token: letters, digits, '.', '_' or '-'.
        name: String,
        /// metrics (read /metrics only), viewer (read), submitter (submit,
        /// cancel own builds) or admin.
        #[arg(long, value_parser = parse_role)]
        role: Role,
    },
    /// List tokens (names and roles, never values).
    List {
        /// Print the API's JSON answer.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token: requests with it are refused from now on.
    Revoke {
        /// The token's name.
        name: String,
    },
}

pub fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s)
        .ok_or_else(|| format!("unknown role `{s}`; expected metrics, viewer, submitter or admin"))
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check a config file; exit 1 when it is invalid.
    Check {
        /// The config file.
        file: PathBuf,
    },
    /// Make the running master read its config file again (admin role;
    /// SIGHUP does the same). Pools and builders change, running builds go
    /// on; an invalid file is refused with its problems (exit 1) and the old
    /// config stays in force.
    Reload {
        /// Print the API's JSON answer.
        #[arg(long)]
        json: bool,
    },
}

/// `KEY=VALUE`, split at the first `=`; the value may be empty.
pub fn parse_param(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some(("", _)) => Err(format!("empty key in `{s}`; expected KEY=VALUE")),
        Some((key, value)) => Ok((key.to_owned(), value.to_owned())),
        None => Err(format!("missing `=` in `{s}`; expected KEY=VALUE")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("burst").chain(args.iter().copied()))
    }

    #[test]
    fn submit_takes_a_builder_or_from() {
        let from = parse(&["submit", "--from", "-"]).ok().map(|c| c.command);
        assert!(
            matches!(&from, Some(Command::Submit { builder: None, from: Some(f), .. }) if f == "-"),
            "{from:?}"
        );
        assert!(parse(&["submit"]).is_err(), "neither");
        assert!(parse(&["submit", "hello", "--from", "f"]).is_err(), "both");
        assert!(parse(&["submit", "--from", "f", "--param", "K=v"]).is_err());
    }

    #[test]
    fn param_without_equals_is_an_error() {
        let err = parse(&["submit", "hello", "--param", "novalue"]).err();
        let err = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("missing `=`"), "{err}");
        assert!(parse(&["submit", "hello", "--param", "=v"]).is_err());
    }

    #[test]
    fn params_split_at_first_equals() {
        let cli = parse(&[
            "submit", "hello", "--param", "a=1", "--param", "b=x=y", "--param", "c=",
        ]);
        match cli.map(|c| c.command) {
            Ok(Command::Submit {
                builder,
                params,
                follow,
                from,
            }) => {
                assert_eq!(builder.as_deref(), Some("hello"));
                assert_eq!(from, None);
                assert!(!follow);
                let want = [("a", "1"), ("b", "x=y"), ("c", "")]
                    .map(|(k, v)| (k.to_owned(), v.to_owned()));
                assert_eq!(params, want);
            }
            other => panic!("unexpected: {other:?}"),
        }
    }

    // The only test that touches BURST_URL, so parallel tests do not race on it.
    #[test]
    fn url_from_flag_env_and_default() {
        std::env::remove_var("BURST_URL");
        assert_eq!(
            parse(&["builds"]).map(|c| c.url).ok().as_deref(),
            Some(DEFAULT_URL)
        );
        std::env::set_var("BURST_URL", "http://env:1");
        assert_eq!(
            parse(&["builds"]).map(|c| c.url).ok().as_deref(),
            Some("http://env:1")
        );
        let flag = parse(&["builds", "--url", "http://flag:2"]).map(|c| c.url);
        assert_eq!(flag.ok().as_deref(), Some("http://flag:2"));
        std::env::remove_var("BURST_URL");
        let before = parse(&["--url", "http://x:3", "workers"]).map(|c| c.url);
        assert_eq!(before.ok().as_deref(), Some("http://x:3"));
    }

    #[test]
    fn every_subcommand_parses() {
        let ok: &[&[&str]] = &[
            &["master"],
            &["master", "--config", "burst.toml"],
            &["master", "--log-format", "json"],
            &["submit", "hello"],
            &["submit", "hello", "--param", "k=v", "--follow"],
            &["builds"],
            &["builds", "--json"],
            &["build", "12"],
            &["build", "12", "--json"],
            &["logs", "12"],
            &["logs", "12", "--follow"],
            &["workers"],
            &["workers", "--json"],
            &["cancel", "12"],
            &["config", "check", "burst.toml"],
            &["token", "create", "ci", "--role", "submitter"],
            &["token", "create", "prom", "--role", "metrics"],
            &["token", "list", "--json"],
            &["token", "revoke", "ci"],
            &["--token-file", "t", "builds"],
            &["init"],
            &["init", "--provider", "docker", "--force", "dir"],
            &["completions", "bash"],
            &["completions", "zsh"],
            &["completions", "fish"],
            &["manpages", "out"],
            &["healthcheck"],
            &["simulate", "--config", "c.toml", "--trace", "t.csv"],
            &[
                "simulate",
                "--config",
                "c.toml",
                "--trace",
                "t.csv",
                "--compare",
                "anchors",
                "--json",
            ],
            &[
                "simulate", "--config", "c.toml", "--trace", "t.csv", "--boot", "30s..90s",
                "--seed", "3",
            ],
            &["simulate", "--generate", "bursty", "--seed", "1"],
            &["--url", "https://127.0.0.1:8480", "healthcheck"],
        ];
        for args in ok {
            assert!(parse(args).is_ok(), "{args:?}");
        }
        let bad: &[&[&str]] = &[
            &[],
            &["build", "twelve"],
            &["logs"],
            &["config", "check"],
            &["bench"],
            &["master", "--log-format", "xml"],
            &["submit"],
            &["token", "create", "ci", "--role", "root"],
            &["token", "create", "ci"],
            &["init", "--provider", "kubernetes"],
            &["completions"],
            &["completions", "tcsh"],
            &["manpages"],
            &["simulate", "--config", "c.toml"],
            &["simulate", "--generate", "weekly"],
            &[
                "simulate", "--config", "c.toml", "--trace", "t.csv", "--boot", "soon",
            ],
        ];
        for args in bad {
            assert!(parse(args).is_err(), "{args:?}");
        }
    }

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}

/// `burst cost --by`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CostBy {
    Builder,
    Pool,
    Label,
}

impl From<CostBy> for crate::cost::report::GroupBy {
    fn from(by: CostBy) -> Self {
        match by {
            CostBy::Builder => Self::Builder,
            CostBy::Pool => Self::Pool,
            CostBy::Label => Self::Label,
        }
    }
}
