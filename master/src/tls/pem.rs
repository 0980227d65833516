//! Certificate chains and private keys from PEM files, and the rustls
//! server config made of them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;

use super::TlsError;

/// The certificates of a PEM file, server certificate first.
pub(super) fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let text = read(path)?;
    let chain = CertificateDer::pem_slice_iter(&text)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_problem(path, format!("failed to parse a certificate: {e}")))?;
    if chain.is_empty() {
        return Err(pem_problem(
            path,
            "no certificate in the file (expected PEM \"BEGIN CERTIFICATE\")".to_owned(),
        ));
    }
    Ok(chain)
}

/// The first private key of a PEM file (PKCS#8, PKCS#1 or SEC1).
pub(super) fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let text = read(path)?;
    PrivateKeyDer::from_pem_slice(&text).map_err(|e| {
        let problem = match e {
            rustls::pki_types::pem::Error::NoItemsFound => {
                "no private key in the file (expected PEM \"BEGIN PRIVATE KEY\")".to_owned()
            }
            other => format!("failed to parse the private key: {other}"),
        };
        pem_problem(path, problem)
    })
}

/// A server config for `chain` and `key`, offering `alpn`; the key must
/// belong to the chain's first certificate.
pub(super) fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    alpn: &[u8],
    files: (&Path, &Path),
) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let fail = |source| TlsError::Config {
        cert: files.0.to_owned(),
        key: files.1.to_owned(),
        source,
    };
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(fail)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(fail)?;
    config.alpn_protocols = vec![alpn.to_vec()];
    Ok(Arc::new(config))
}

/// What is wrong with a `master.tls` cert/key pair, for the config error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileProblem {
    /// About `master.tls.cert`.
    Cert(String),
    /// About `master.tls.key`.
    Key(String),
}

/// Reads both files and checks that the key belongs to the certificate,
/// as the master will at start.
pub fn check_files(cert: &Path, key: &Path) -> Result<(), FileProblem> {
    let chain = read_chain(cert).map_err(|e| FileProblem::Cert(message(&e)))?;
    let private = read_key(key).map_err(|e| FileProblem::Key(message(&e)))?;
    server_config(chain, private, b"h2", (cert, key)).map_err(|e| {
        FileProblem::Key(format!(
            "{} does not fit the certificate in {}: {}",
            key.display(),
            cert.display(),
            match &e {
                TlsError::Config { source, .. } => source.to_string(),
                other => other.to_string(),
            }
        ))
    })?;
    Ok(())
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

fn pem_problem(path: &Path, problem: String) -> TlsError {
    TlsError::Pem {
        path: PathBuf::from(path),
        problem,
    }
}

/// One line: the error and its cause.
fn message(e: &TlsError) -> String {
    burst_common::error_chain::Chain(e).to_string()
}
