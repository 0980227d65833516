use std::path::PathBuf;

/// Why the master cannot serve TLS.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("failed to read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {problem}", path.display())]
    Pem { path: PathBuf, problem: String },
    #[error("failed to use the certificate {} with the key {}", cert.display(), key.display())]
    Config {
        cert: PathBuf,
        key: PathBuf,
        #[source]
        source: rustls::Error,
    },
    #[error("failed to generate the self-signed {what}")]
    Generate {
        what: &'static str,
        #[source]
        source: rcgen::Error,
    },
}
