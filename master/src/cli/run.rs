//! Entry point: parse, dispatch, map the outcome to an exit code.

use std::io;
use std::process::ExitCode;

use clap::Parser;

use super::args::{Cli, Command, ConfigCommand, TokenCommand};
use super::client::Client;
use super::exit::{self, CliError, Exit};
use super::follow::Timing;
use super::output::Output;
use super::{
    admin, artifacts, commands, docs, init, simulate, submit, submit_file, token_source, tokens,
};

/// `burst`'s `main`.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Usage errors exit 2, --help and --version 0.
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    let out = Output::stdout();
    let result = match cli.command {
        Command::Master { config, log_format } => block_on(commands::master(config, log_format)),
        Command::Config {
            command: ConfigCommand::Check { file },
        } => commands::config_check(&file, &out, &mut io::stderr()),
        Command::Init {
            provider,
            force,
            dir,
        } => init::run(provider, &dir, force, &out),
        Command::Completions { shell } => docs::completions(shell, &out),
        Command::Manpages { dir } => docs::manpages(&dir, &out),
        Command::Simulate {
            config,
            trace,
            compare,
            json,
            chart,
            seed,
            horizon,
            generate,
            flags,
        } => simulate::run(
            simulate::Request {
                config,
                trace,
                compare,
                json,
                chart,
                seed,
                horizon,
                generate,
                flags,
            },
            &out,
            &mut io::stderr(),
        ),
        // No token: /healthz is open, and a health probe must not depend
        // on one.
        Command::Healthcheck => block_on(async {
            let ca = token_source::ca_file(&cli.url, cli.ca_file);
            let client = Client::with_ca(&cli.url, ca.as_deref())?;
            commands::healthcheck(&client, &out, &mut io::stderr()).await
        }),
        command => block_on(async {
            let token = token_source::resolve(&cli.url, cli.token_file.as_deref())?;
            let ca = token_source::ca_file(&cli.url, cli.ca_file);
            let client = Client::with_ca(&cli.url, ca.as_deref())?.with_token(token);
            run_command(&client, command, &out, &Timing::default()).await
        }),
    };
    exit::finish(result, &mut io::stderr()).into()
}

fn block_on<F: std::future::Future<Output = Result<Exit, CliError>>>(
    f: F,
) -> Result<Exit, CliError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Internal(format!("cannot start the async runtime: {e}")))?;
    rt.block_on(f)
}

/// Runs a client subcommand against the master at `url`.
pub async fn execute(
    url: &str,
    token: Option<String>,
    command: Command,
    out: &Output,
) -> Result<Exit, CliError> {
    execute_with(url, token, command, out, &Timing::default()).await
}

pub(crate) async fn execute_with(
    url: &str,
    token: Option<String>,
    command: Command,
    out: &Output,
    timing: &Timing,
) -> Result<Exit, CliError> {
    let client = Client::new(url)?.with_token(token);
    run_command(&client, command, out, timing).await
}

async fn run_command(
    client: &Client,
    command: Command,
    out: &Output,
    timing: &Timing,
) -> Result<Exit, CliError> {
    let client = client.clone();
    match command {
        Command::Submit {
            builder,
            params,
            follow,
            from,
        } => {
            let what = match (from, builder) {
                (Some(from), _) => submit::What::Batch(submit_file::Source::parse(&from)),
                (None, Some(builder)) => submit::What::One { builder, params },
                (None, None) => {
                    return Err(CliError::Internal(
                        "submit needs a BUILDER or --from FILE".to_owned(),
                    ))
                }
            };
            submit::run(&client, what, follow, out, timing).await
        }
        Command::Builds { json } => commands::builds(&client, json, out).await,
        Command::Build { id, json } => commands::build(&client, id, json, out).await,
        Command::Logs { build, follow } => {
            commands::logs(&client, build, follow, out, timing).await
        }
        Command::Artifacts {
            build,
            get,
            output,
            json,
        } => artifacts::run(&client, build, get, output, json, out).await,
        Command::Workers { json } => commands::workers(&client, json, out).await,
        Command::Cancel { build } => commands::cancel(&client, build, out).await,
        Command::Cost { since, by, json } => {
            super::cost::run(&client, &since, by.into(), json, out).await
        }
        Command::Config {
            command: ConfigCommand::Reload { json },
        } => admin::reload(&client, json, out, &mut io::stderr()).await,
        Command::Gc { dry_run, json } => admin::gc(&client, dry_run, json, out).await,
        Command::Healthcheck => commands::healthcheck(&client, out, &mut io::stderr()).await,
        Command::Token { command } => match command {
            TokenCommand::Create { name, role } => tokens::create(&client, name, role, out).await,
            TokenCommand::List { json } => tokens::list(&client, json, out).await,
            TokenCommand::Revoke { name } => tokens::revoke(&client, &name, out).await,
        },
        Command::Master { .. }
        | Command::Config {
            command: ConfigCommand::Check { .. },
        }
        | Command::Init { .. }
        | Command::Completions { .. }
        | Command::Manpages { .. }
        | Command::Simulate { .. } => Err(CliError::Internal("not a client subcommand".to_owned())),
    }
}
