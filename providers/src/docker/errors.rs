//! Sorting Docker API errors into what the master can act on.

use bollard::errors::Error;

use crate::ProviderError;

/// What an API error says about the host and about retrying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Class {
    /// The engine is unreachable, timed out or answered 5xx: retry later,
    /// elsewhere meanwhile.
    HostDown,
    /// 404: the caller knows what was missing.
    NotFound,
    /// 409 and 429: a passing state of the engine, not of the host.
    Busy,
    /// Any other 4xx, or a bad client setting: retrying cannot help.
    Refused,
}

pub(super) fn class(e: &Error) -> Class {
    match e {
        Error::DockerResponseServerError { status_code, .. } => match status_code {
            404 => Class::NotFound,
            408 | 409 | 429 => Class::Busy,
            400..=499 => Class::Refused,
            _ => Class::HostDown,
        },
        Error::CertPathError { .. }
        | Error::CertMultipleKeys { .. }
        | Error::CertParseError { .. }
        | Error::NoHomePathError
        | Error::UnsupportedURISchemeError { .. }
        | Error::APIVersionParseError {} => Class::Refused,
        _ => Class::HostDown,
    }
}

pub(super) fn is_not_found(e: &Error) -> bool {
    class(e) == Class::NotFound
}

/// The engine's own message where it sent one: shorter than bollard's.
pub(super) fn message(e: &Error) -> String {
    match e {
        Error::DockerResponseServerError {
            status_code,
            message,
        } => format!("{} (HTTP {status_code})", message.trim()),
        other => other.to_string(),
    }
}

/// `failed to WHAT on host HOST: MESSAGE`, transient or permanent by class,
/// with bollard's error as its source.
pub(super) fn provider_error(what: &str, host: &str, e: Error) -> ProviderError {
    let text = format!("failed to {what} on docker host {host}: {}", message(&e));
    let err = match class(&e) {
        Class::HostDown | Class::Busy => ProviderError::transient(text),
        Class::NotFound | Class::Refused => ProviderError::permanent(text),
    };
    let err = match &e {
        Error::DockerResponseServerError { status_code, .. } => {
            err.with_code(status_code.to_string())
        }
        _ => err,
    };
    err.with_source(e)
}

#[cfg(test)]
mod tests {
    use burst_common::error_chain::Chain;

    use super::*;

    fn status(code: u16) -> Error {
        Error::DockerResponseServerError {
            status_code: code,
            message: "boom\n".into(),
        }
    }

    #[test]
    fn classes() {
        assert_eq!(class(&status(500)), Class::HostDown);
        assert_eq!(class(&status(503)), Class::HostDown);
        assert_eq!(class(&status(404)), Class::NotFound);
        assert_eq!(class(&status(409)), Class::Busy);
        assert_eq!(class(&status(400)), Class::Refused);
        assert_eq!(class(&status(403)), Class::Refused);
        assert_eq!(class(&Error::RequestTimeoutError), Class::HostDown);
        assert_eq!(
            class(&Error::SocketNotFoundError("/x.sock".into())),
            Class::HostDown
        );
        assert_eq!(
            class(&Error::UnsupportedURISchemeError { uri: "x".into() }),
            Class::Refused
        );
    }

    #[test]
    fn provider_errors() {
        let e = provider_error("create a container", "h1", status(500));
        assert!(!e.is_permanent());
        assert_eq!(e.code.as_deref(), Some("500"));
        assert_eq!(
            e.message,
            "failed to create a container on docker host h1: boom (HTTP 500)"
        );
        assert!(provider_error("x", "h", status(400)).is_permanent());
        assert!(!provider_error("x", "h", Error::RequestTimeoutError).is_permanent());
    }

    #[test]
    fn provider_errors_keep_bollards_error_as_their_cause() {
        let e = provider_error("create a container", "h1", status(500));
        let chain = Chain(&e).to_string();
        assert!(
            chain.starts_with("failed to create a container on docker host h1: boom (HTTP 500): ")
                && chain.contains("500"),
            "{chain}"
        );
        assert!(std::error::Error::source(&e).is_some());
        // A cause the message already quotes is printed once.
        let e = provider_error("reach the engine", "h1", Error::RequestTimeoutError);
        assert_eq!(
            Chain(&e).to_string(),
            "failed to reach the engine on docker host h1: Timeout error"
        );
    }
}
