//! Exit codes, decided in one place: 0 success; 1 a followed build did not
//! succeed or `config check` found the config invalid; 2 usage, connection,
//! API or other errors (clap exits 2 on its own for usage errors); 3 the
//! master's TLS certificate failed verification (an impostor, or a CA the
//! CLI was not given), kept apart so scripts never retry it as a blip.

use std::io::{self, Write};
use std::process::ExitCode;

use burst_common::error_chain::Chain;

use super::client::ClientError;
use crate::model::BuildState;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Success,
    /// A followed build did not succeed.
    BuildsFailed,
    /// `config check`: the file is not a valid config.
    ConfigInvalid,
    /// Usage, connection, API or internal error.
    Error,
    /// The master's certificate failed verification.
    Untrusted,
    /// `healthcheck`: the master did not answer `/healthz` (1, which Docker's
    /// HEALTHCHECK reads as unhealthy; it reserves 2).
    Unhealthy,
}

impl Exit {
    pub fn code(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::BuildsFailed | Exit::ConfigInvalid | Exit::Unhealthy => 1,
            Exit::Error => 2,
            Exit::Untrusted => 3,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(e.code())
    }
}

/// Why a command could not do its job.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("cannot write output: {0}")]
    Output(#[from] io::Error),
    /// Config problems, already formatted one per line.
    #[error("invalid config:\n{0}")]
    Config(String),
    /// What a command was asked to read could not be read.
    #[error(transparent)]
    SubmitFile(#[from] super::submit_file::SubmitFileError),
    #[error(transparent)]
    Simulate(#[from] crate::simulate::SimError),
    #[error("{0}")]
    Daemon(String),
    #[error("{0}")]
    Internal(String),
}

/// Success only if every build succeeded (failed, timed_out, cancelled,
/// worker_lost and unfinished builds all count against it).
pub fn for_builds(states: &[BuildState]) -> Exit {
    if states.iter().all(|s| *s == BuildState::Succeeded) {
        Exit::Success
    } else {
        Exit::BuildsFailed
    }
}

/// Turns a command's result into its exit, printing any error to `err`.
pub fn finish(result: Result<Exit, CliError>, err: &mut dyn Write) -> Exit {
    match result {
        Ok(exit) => exit,
        // The reader went away (`burst logs 1 | head`): nothing to tell it.
        Err(CliError::Output(e)) if e.kind() == io::ErrorKind::BrokenPipe => Exit::Error,
        Err(e) => {
            let _ = writeln!(err, "burst: {}", Chain(&e));
            match e {
                CliError::Client(ClientError::Untrusted { .. }) => Exit::Untrusted,
                _ => Exit::Error,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use BuildState::*;

    #[test]
    fn followed_builds_decide_the_exit() {
        assert_eq!(for_builds(&[Succeeded, Succeeded]), Exit::Success);
        assert_eq!(for_builds(&[]), Exit::Success);
        for bad in [Failed, TimedOut, Cancelled, WorkerLost, Running, Queued] {
            assert_eq!(for_builds(&[Succeeded, bad]), Exit::BuildsFailed, "{bad:?}");
        }
        assert_eq!(Exit::BuildsFailed.code(), 1);
        assert_eq!(Exit::ConfigInvalid.code(), 1);
        assert_eq!(Exit::Error.code(), 2);
    }

    #[test]
    fn errors_exit_2_with_their_message() {
        let mut err = Vec::new();
        let api = ClientError::Api {
            status: 404,
            message: "no build 9".to_owned(),
        };
        assert_eq!(finish(Err(api.into()), &mut err), Exit::Error);
        assert_eq!(String::from_utf8_lossy(&err), "burst: no build 9\n");

        let mut err = Vec::new();
        let pipe = io::Error::from(io::ErrorKind::BrokenPipe);
        assert_eq!(finish(Err(pipe.into()), &mut err), Exit::Error);
        assert!(err.is_empty());
        assert_eq!(finish(Ok(Exit::BuildsFailed), &mut err), Exit::BuildsFailed);
    }
}
