use std::error::Error;
use std::fmt;
use std::sync::Arc;

/// Whether retrying the same call can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Worth retrying after a backoff: an unreachable daemon, throttling, a 5xx.
    Transient,
    /// Retrying cannot help until the configuration changes: a missing image,
    /// bad credentials, an invalid parameter.
    Permanent,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorKind::Transient => "transient",
            ErrorKind::Permanent => "permanent",
        })
    }
}

/// An error from a provider call. `message` reads as a "failed to …" fragment.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ProviderError {
    pub kind: ErrorKind,
    pub message: String,
    /// The backend's own error code where it has one (e.g. an AWS error code).
    pub code: Option<String>,
    /// The library error underneath (bollard, the AWS SDK, openssh, io), for
    /// logs that print the whole chain. Shared, so the error stays `Clone`.
    #[source]
    source: Option<Arc<dyn Error + Send + Sync>>,
}

impl ProviderError {
    pub fn transient(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::Transient,
            message: message.into(),
            code: None,
            source: None,
        }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::Permanent,
            message: message.into(),
            code: None,
            source: None,
        }
    }

    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }

    /// Keeps `source` as the cause of this error.
    pub fn with_source(mut self, source: impl Error + Send + Sync + 'static) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    pub fn is_permanent(&self) -> bool {
        self.kind == ErrorKind::Permanent
    }
}

#[cfg(test)]
mod tests {
    use burst_common::error_chain::Chain;

    use super::*;

    #[test]
    fn the_chain_of_a_provider_error_prints_its_cause() {
        let io = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "permission denied");
        let e = ProviderError::transient("failed to start a local worker").with_source(io);
        assert_eq!(
            Chain(&e).to_string(),
            "failed to start a local worker: permission denied"
        );
        // Clones share the cause.
        let copy = e.clone();
        assert!(copy
            .source()
            .is_some_and(|s| s.to_string() == "permission denied"));
        assert_eq!(
            Chain(&ProviderError::permanent("failed to x")).to_string(),
            "failed to x"
        );
    }
}
