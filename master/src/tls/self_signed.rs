//! `tls = "self-signed"`: a CA and a server certificate it signs, kept in
//! `<state_dir>/tls`. The CA is made once and reused, so its pin (what the
//! workers check) stays the same across restarts; the server certificate
//! is reused too, and made again (by the same CA) only when the names it
//! must cover change. Keys are written owner-only.

use std::io::Write;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::pem::{read_chain, read_key};
use super::TlsError;

const CA_CERT: &str = "ca.pem";
const CA_KEY: &str = "ca.key";
const SERVER_CERT: &str = "server.pem";
const SERVER_KEY: &str = "server.key";
/// The names the server certificate was made for, one a line.
const SERVER_NAMES: &str = "server.names";

/// What the master serves and what it pins.
pub(super) struct SelfSigned {
    /// The server certificate, then the CA's.
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    pub ca: CertificateDer<'static>,
    pub ca_file: PathBuf,
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

/// Loads the CA and server certificate from `dir`, making what is missing
/// or out of date.
pub(super) fn ensure(dir: &Path, names: &[String]) -> Result<SelfSigned, TlsError> {
    make_private_dir(dir)?;
    let (ca_file, ca_key_file) = (dir.join(CA_CERT), dir.join(CA_KEY));
    let (cert_file, key_file) = (dir.join(SERVER_CERT), dir.join(SERVER_KEY));
    let names_file = dir.join(SERVER_NAMES);

    let mut fresh_ca = false;
    if !(ca_file.is_file() && ca_key_file.is_file()) {
        let key = KeyPair::generate().map_err(|source| generate("CA key", source))?;
        let cert = ca_params()
            .self_signed(&key)
            .map_err(|source| generate("CA certificate", source))?;
        write_file(&ca_key_file, key.serialize_pem().as_bytes(), 0o600)?;
        write_file(&ca_file, cert.pem().as_bytes(), 0o644)?;
        fresh_ca = true;
        tracing::info!(ca = %ca_file.display(), "generated a self-signed TLS CA");
    }
    let ca = first_cert(&ca_file)?;
    let wanted = names.join("\n");
    let current = std::fs::read_to_string(&names_file).unwrap_or_default();
    let reuse = !fresh_ca && cert_file.is_file() && key_file.is_file() && current == wanted;
    if !reuse {
        let ca_key_pem =
            std::fs::read_to_string(&ca_key_file).map_err(|source| TlsError::Read {
                path: ca_key_file.clone(),
                source,
            })?;
        let ca_key = KeyPair::from_pem(&ca_key_pem).map_err(|source| generate("CA key", source))?;
        let issuer = Issuer::new(ca_params(), ca_key);
        let key = KeyPair::generate().map_err(|source| generate("server key", source))?;
        let cert = server_params(names)?
            .signed_by(&key, &issuer)
            .map_err(|source| generate("server certificate", source))?;
        let ca_pem = std::fs::read_to_string(&ca_file).map_err(|source| TlsError::Read {
            path: ca_file.clone(),
            source,
        })?;
        write_file(&key_file, key.serialize_pem().as_bytes(), 0o600)?;
        write_file(
            &cert_file,
            format!("{}{ca_pem}", cert.pem()).as_bytes(),
            0o644,
        )?;
        write_file(&names_file, wanted.as_bytes(), 0o644)?;
        tracing::info!(cert = %cert_file.display(), names = %names.join(", "), "generated the TLS server certificate");
    }
    Ok(SelfSigned {
        chain: read_chain(&cert_file)?,
        key: read_key(&key_file)?,
        ca,
        ca_file,
        cert_file,
        key_file,
    })
}

/// The CA's parameters: the same on every start, so a reused CA key signs
/// certificates that chain to the CA certificate written at first start.
fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "burst master CA");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

fn server_params(names: &[String]) -> Result<CertificateParams, TlsError> {
    let mut params = CertificateParams::new(names.to_vec())
        .map_err(|source| generate("server certificate", source))?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "burst master");
    params.distinguished_name = dn;
    params.is_ca = IsCa::NoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    Ok(params)
}

fn first_cert(path: &Path) -> Result<CertificateDer<'static>, TlsError> {
    let mut chain = read_chain(path)?;
    Ok(chain.swap_remove(0))
}

fn generate(what: &'static str, source: rcgen::Error) -> TlsError {
    TlsError::Generate { what, source }
}

fn make_private_dir(dir: &Path) -> Result<(), TlsError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)))
        .map_err(|source| TlsError::Write {
            path: dir.to_owned(),
            source,
        })
}

/// Written beside its place and renamed over it: a crash leaves the old
/// file or the new one, never half of one. Created with `mode`, so a key is
/// never readable by others, not even for a moment.
fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), TlsError> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let fail = |source| TlsError::Write {
        path: path.to_owned(),
        source,
    };
    let _ = std::fs::remove_file(&tmp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(fail)?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(fail)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use burst_common::cert_pin::Pin;

    fn names() -> Vec<String> {
        vec!["localhost".into(), "127.0.0.1".into()]
    }

    #[test]
    fn files_are_made_once_then_reused_with_private_keys() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let tls = dir.path().join("tls");
        let first = ensure(&tls, &names()).unwrap();
        assert_eq!(first.chain.len(), 2);
        assert_eq!(first.chain[1], first.ca);
        for key in [CA_KEY, SERVER_KEY] {
            let mode = std::fs::metadata(tls.join(key))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{key}");
        }
        let mode = std::fs::metadata(&tls).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);

        let again = ensure(&tls, &names()).unwrap();
        assert_eq!(again.chain, first.chain, "the server certificate is reused");
        assert_eq!(Pin::of(&again.ca), Pin::of(&first.ca));

        // New names: a new server certificate, from the same CA.
        let more = [names(), vec!["10.0.0.7".into()]].concat();
        let changed = ensure(&tls, &more).unwrap();
        assert_ne!(changed.chain[0], first.chain[0]);
        assert_eq!(changed.ca, first.ca);
        // A certificate made at a later start still chains to the first CA.
        let mut roots = rustls::RootCertStore::empty();
        roots.add(first.ca.clone()).unwrap();
        let parsed = rustls::server::ParsedCertificate::try_from(&changed.chain[0]).unwrap();
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &parsed,
            &roots,
            &[],
            rustls::pki_types::UnixTime::now(),
            rustls::crypto::ring::default_provider()
                .signature_verification_algorithms
                .all,
        )
        .unwrap();
        let name = rustls::pki_types::ServerName::try_from("10.0.0.7").unwrap();
        rustls::client::verify_server_name(&parsed, &name).unwrap();
    }
}
