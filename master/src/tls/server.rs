//! What the listeners need to serve TLS, and what workers and the CLI are
//! told to trust.

use std::path::{Path, PathBuf};

use burst_common::cert_pin::Pin;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use super::pem::{read_chain, read_key, server_config};
use super::{self_signed, TlsError};
use crate::config::TlsConfig;

/// The TLS side of a master that serves it.
#[derive(Clone)]
pub struct ServerTls {
    /// For the HTTP API (ALPN `http/1.1`).
    pub http: TlsAcceptor,
    /// For the gRPC worker endpoint (ALPN `h2`).
    pub grpc: TlsAcceptor,
    /// What workers check the master's certificate against: the CA's pin
    /// for a self-signed master, the server certificate's for files.
    pub pin: Pin,
    /// The CA a CLI on this machine trusts (self-signed masters only).
    pub ca_file: Option<PathBuf>,
}

impl ServerTls {
    /// Loads (or, self-signed, makes) the certificate; `names` are the
    /// names a generated certificate covers.
    pub fn load(config: &TlsConfig, state_dir: &Path, names: &[String]) -> Result<Self, TlsError> {
        match config {
            TlsConfig::SelfSigned => {
                let made = self_signed::ensure(&state_dir.join("tls"), names)?;
                let pin = Pin::of(&made.ca);
                Self::new(
                    made.chain,
                    &made.key,
                    pin,
                    Some(made.ca_file),
                    (&made.cert_file, &made.key_file),
                )
            }
            TlsConfig::Files { cert, key } => {
                let chain = read_chain(cert)?;
                let pin = Pin::of(&chain[0]);
                let private = read_key(key)?;
                Self::new(chain, &private, pin, None, (cert, key))
            }
        }
    }

    fn new(
        chain: Vec<CertificateDer<'static>>,
        key: &PrivateKeyDer<'static>,
        pin: Pin,
        ca_file: Option<PathBuf>,
        files: (&Path, &Path),
    ) -> Result<Self, TlsError> {
        let http = server_config(chain.clone(), key.clone_key(), b"http/1.1", files)?;
        let grpc = server_config(chain, key.clone_key(), b"h2", files)?;
        Ok(Self {
            http: TlsAcceptor::from(http),
            grpc: TlsAcceptor::from(grpc),
            pin,
            ca_file,
        })
    }
}

// A hand-written Debug: rustls configs hold the private key.
impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("pin", &self.pin)
            .field("ca_file", &self.ca_file)
            .finish_non_exhaustive()
    }
}
