//! How the worker checks the master it dials over `https://`: against the
//! pin it was launched with (`BURST_MASTER_PIN`, see
//! `burst_common::cert_pin`), or a CA file (`--master-ca`). No system
//! roots: a worker always knows exactly which master it belongs to, and
//! leaving them out keeps the binary small. Never a fall back to clear text.
//!
//! A pin names one certificate of the chain the master presents. The
//! server certificate itself: accepted as is (the master's certificate
//! files). A CA (self-signed masters): the server certificate must chain to
//! it, and its names are not checked, because that CA is the master's own
//! and signs nothing else; Docker workers dial a bridge address no
//! certificate made at first start could know.

use std::future::Future;
use std::path::Path;
use std::pin::Pin as StdPin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use anyhow::{bail, Context as _, Result};
use burst_common::cert_pin::Pin;
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, OtherError, RootCertStore};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;
use tonic::codegen::http::Uri;

/// What the master's certificate is checked against.
#[derive(Clone, PartialEq, Eq)]
pub enum Trust {
    Pin(Pin),
    /// The CA file's certificates; names are checked as usual.
    CaFile(Vec<CertificateDer<'static>>),
}

impl std::fmt::Debug for Trust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Trust::Pin(pin) => write!(f, "Pin({pin})"),
            Trust::CaFile(certs) => write!(f, "CaFile({} certificates)", certs.len()),
        }
    }
}

/// What to trust for `url`, from `--master-pin` and `--master-ca`. An
/// `https://` URL needs one of them; an `http://` URL must have neither,
/// since a pin means the master serves TLS and clear text would be a
/// downgrade.
pub fn trust_for(url: &str, pin: Option<&str>, ca: Option<&Path>) -> Result<Option<Trust>> {
    let pin = pin.map(str::trim).filter(|p| !p.is_empty());
    let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    match scheme.as_deref() {
        Some("https") => match (pin, ca) {
            (Some(_), Some(_)) => bail!(
                "refusing to start: give the master's certificate pin (--master-pin, \
                 BURST_MASTER_PIN) or a CA file (--master-ca), not both"
            ),
            (Some(pin), None) => Ok(Some(Trust::Pin(
                Pin::parse(pin).context("failed to read --master-pin (BURST_MASTER_PIN)")?,
            ))),
            (None, Some(ca)) => Ok(Some(Trust::CaFile(read_ca(ca)?))),
            (None, None) => bail!(
                "refusing to start: the master URL {url} is https:// but nothing to check its \
                 certificate against was given; set --master-pin (BURST_MASTER_PIN, which \
                 burst's providers pass) or --master-ca FILE"
            ),
        },
        Some("http") if pin.is_some() || ca.is_some() => bail!(
            "refusing to start: a master certificate pin or CA was given but the master URL \
             {url} is plain http://; the worker never falls back to clear text: use the \
             master's https:// URL"
        ),
        _ => Ok(None),
    }
}

fn read_ca(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let text = std::fs::read(path)
        .with_context(|| format!("failed to read --master-ca {}", path.display()))?;
    let certs = CertificateDer::pem_slice_iter(&text)
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("failed to parse --master-ca {}", path.display()))?;
    if certs.is_empty() {
        bail!(
            "failed to read --master-ca {}: no certificate in it",
            path.display()
        );
    }
    Ok(certs)
}

/// The TLS client config for `trust`.
pub fn client_config(trust: &Trust) -> Result<Arc<ClientConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("failed to set up TLS")?;
    let mut config = match trust {
        Trust::Pin(pin) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinVerifier {
                pin: *pin,
                algorithms: provider.signature_verification_algorithms,
            }))
            .with_no_client_auth(),
        Trust::CaFile(certs) => {
            let mut roots = RootCertStore::empty();
            for cert in certs {
                roots
                    .add(cert.clone())
                    .context("failed to use a --master-ca certificate")?;
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
    };
    // gRPC is HTTP/2.
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// The certificate did not match: what was expected and what was shown.
#[derive(Debug)]
struct PinMismatch {
    expected: Pin,
    got: Vec<Pin>,
}

impl std::fmt::Display for PinMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let got: Vec<String> = self.got.iter().map(ToString::to_string).collect();
        write!(
            f,
            "the master's certificate does not match the pin: expected {}, got {} (server \
             certificate first, then its chain)",
            self.expected,
            got.join(", ")
        )
    }
}

impl std::error::Error for PinMismatch {}

#[derive(Debug)]
struct PinVerifier {
    pin: Pin,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self.pin.matches(end_entity) {
            return Ok(ServerCertVerified::assertion());
        }
        if let Some(ca) = intermediates.iter().find(|c| self.pin.matches(c)) {
            // The CA's certificate is public: the server certificate must
            // really be signed by it (and be valid now).
            let mut roots = RootCertStore::empty();
            roots.add(ca.clone().into_owned())?;
            let parsed = rustls::server::ParsedCertificate::try_from(end_entity)?;
            rustls::client::verify_server_cert_signed_by_trust_anchor(
                &parsed,
                &roots,
                intermediates,
                now,
                self.algorithms.all,
            )?;
            return Ok(ServerCertVerified::assertion());
        }
        let got = std::iter::once(end_entity)
            .chain(intermediates)
            .map(|c| Pin::of(c))
            .collect();
        Err(rustls::Error::InvalidCertificate(CertificateError::Other(
            OtherError(Arc::new(PinMismatch {
                expected: self.pin,
                got,
            })),
        )))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Dials the master over TLS for tonic; a certificate it refused is kept
/// for [`Dialer::refusal`], since tonic's error would bury it.
#[derive(Clone)]
pub struct Dialer {
    config: Arc<ClientConfig>,
    refusal: Arc<Mutex<Option<String>>>,
}

impl Dialer {
    pub fn new(trust: &Trust) -> Result<Self> {
        Ok(Self {
            config: client_config(trust)?,
            refusal: Arc::default(),
        })
    }

    /// Why the master's certificate was refused on the last dial, if it was.
    pub fn refusal(&self) -> Option<String> {
        self.refusal
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }
}

type Dialed = TokioIo<TlsStream<TcpStream>>;

impl tower_service::Service<Uri> for Dialer {
    type Response = Dialed;
    type Error = std::io::Error;
    type Future = StdPin<Box<dyn Future<Output = std::io::Result<Dialed>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let invalid =
                |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidInput, what.to_owned());
            let host = uri
                .host()
                .ok_or_else(|| invalid("the master URL has no host"))?;
            let host = host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned();
            let port = uri.port_u16().unwrap_or(443);
            let name = ServerName::try_from(host.clone())
                .map_err(|_| invalid("the master URL's host is not a valid name"))?;
            let tcp = TcpStream::connect((host.as_str(), port)).await?;
            tcp.set_nodelay(true)?;
            match TlsConnector::from(this.config.clone())
                .connect(name, tcp)
                .await
            {
                Ok(stream) => Ok(TokioIo::new(stream)),
                Err(e) => {
                    if let Some(why) = certificate_problem(&e) {
                        *this.refusal.lock().unwrap_or_else(|p| p.into_inner()) = Some(why);
                    }
                    Err(e)
                }
            }
        })
    }
}

/// The refusal of the master's certificate inside a handshake error.
fn certificate_problem(e: &std::io::Error) -> Option<String> {
    describe(e.get_ref()?.downcast_ref::<rustls::Error>()?)
}

/// A refused certificate in words (rustls shows our own reason as Debug).
fn describe(e: &rustls::Error) -> Option<String> {
    match e {
        rustls::Error::InvalidCertificate(CertificateError::Other(other)) => {
            Some(other.0.to_string())
        }
        rustls::Error::InvalidCertificate(_) => Some(e.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

    struct Ca {
        der: CertificateDer<'static>,
        issuer: Issuer<'static, KeyPair>,
    }

    fn ca() -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let der = params.self_signed(&key).unwrap().der().clone();
        Ca {
            der,
            issuer: Issuer::new(params, key),
        }
    }

    fn leaf(ca: &Ca) -> CertificateDer<'static> {
        let key = KeyPair::generate().unwrap();
        let params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params.signed_by(&key, &ca.issuer).unwrap().der().clone()
    }

    fn verify(pin: Pin, chain: &[CertificateDer<'static>]) -> Result<(), rustls::Error> {
        let verifier = PinVerifier {
            pin,
            algorithms: rustls::crypto::ring::default_provider().signature_verification_algorithms,
        };
        // A name the certificate does not carry: pins do not check names.
        let name = ServerName::try_from("172.17.0.1").unwrap();
        verifier
            .verify_server_cert(&chain[0], &chain[1..], &name, &[], UnixTime::now())
            .map(|_| ())
    }

    #[test]
    fn a_ca_pin_accepts_what_the_ca_signed() {
        let ca = ca();
        let leaf = leaf(&ca);
        verify(Pin::of(&ca.der), &[leaf.clone(), ca.der.clone()]).unwrap();
        // The server certificate's own pin accepts it alone.
        verify(Pin::of(&leaf), std::slice::from_ref(&leaf)).unwrap();
    }

    #[test]
    fn a_wrong_certificate_is_refused_saying_expected_and_got() {
        let (ours, theirs) = (ca(), ca());
        let leaf = leaf(&theirs);
        let err = verify(Pin::of(&ours.der), &[leaf.clone(), theirs.der.clone()]).unwrap_err();
        let text = describe(&err).unwrap();
        assert!(
            text.contains(&format!("expected {}", Pin::of(&ours.der))),
            "{text}"
        );
        assert!(text.contains(&format!("got {}", Pin::of(&leaf))), "{text}");
    }

    #[test]
    fn showing_the_pinned_ca_beside_a_certificate_it_did_not_sign_fails() {
        let (ours, theirs) = (ca(), ca());
        // An attacker can copy our (public) CA certificate into its chain.
        let forged = leaf(&theirs);
        let err = verify(Pin::of(&ours.der), &[forged, ours.der.clone()]).unwrap_err();
        assert!(
            matches!(err, rustls::Error::InvalidCertificate(_)),
            "{err:?}"
        );
    }

    #[test]
    fn schemes_and_trust_must_agree() {
        let pin = Pin::of(b"x").to_string();
        let https = "https://10.0.0.1:8481";
        assert_eq!(
            trust_for(https, Some(&pin), None).unwrap(),
            Some(Trust::Pin(Pin::of(b"x")))
        );
        let err = trust_for(https, None, None).unwrap_err().to_string();
        assert!(err.contains("--master-pin"), "{err}");
        let err = trust_for(https, Some(" "), None).unwrap_err().to_string();
        assert!(err.contains("--master-pin"), "{err}");
        let err = trust_for("http://10.0.0.1:8481", Some(&pin), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("never falls back to clear text"), "{err}");
        // EC2 user-data sets an empty pin for a master without TLS.
        assert_eq!(
            trust_for("http://10.0.0.1:8481", Some(""), None).unwrap(),
            None
        );
        assert!(trust_for(https, Some("sha256:zz"), None).is_err());
    }

    #[test]
    fn a_ca_file_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ca.pem");
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        std::fs::write(&file, params.self_signed(&key).unwrap().pem()).unwrap();
        let trust = trust_for("https://h:1", None, Some(&file)).unwrap();
        assert!(matches!(trust, Some(Trust::CaFile(ref c)) if c.len() == 1));
        client_config(&trust.unwrap()).unwrap();
        std::fs::write(&file, "nothing").unwrap();
        assert!(trust_for("https://h:1", None, Some(&file)).is_err());
    }
}
