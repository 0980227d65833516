//! `master.tls`: `"self-signed"`, or `{ cert = "FILE", key = "FILE" }`.
//! Read by hand so an unknown value or key is named in the error, as
//! serde's untagged enums would not.

use std::fmt;
use std::path::PathBuf;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

/// How the master gets its TLS certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsConfig {
    /// A CA and a server certificate generated into `<state_dir>/tls` at
    /// first start and reused after; workers pin the CA.
    SelfSigned,
    /// PEM files: the server certificate (then its chain), and its private
    /// key. Workers pin the server certificate itself.
    Files { cert: PathBuf, key: PathBuf },
}

pub const SELF_SIGNED: &str = "self-signed";

impl<'de> Deserialize<'de> for TlsConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TlsVisitor)
    }
}

struct TlsVisitor;

impl<'de> Visitor<'de> for TlsVisitor {
    type Value = TlsConfig;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "\"{SELF_SIGNED}\" or {{ cert = \"FILE\", key = \"FILE\" }}"
        )
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<TlsConfig, E> {
        if v == SELF_SIGNED {
            Ok(TlsConfig::SelfSigned)
        } else {
            Err(E::custom(format!(
                "unknown value {v:?}: expected \"{SELF_SIGNED}\" or {{ cert = \"FILE\", key = \"FILE\" }}"
            )))
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TlsConfig, A::Error> {
        let mut cert: Option<PathBuf> = None;
        let mut key: Option<PathBuf> = None;
        while let Some(name) = map.next_key::<String>()? {
            match name.as_str() {
                "cert" => cert = Some(map.next_value()?),
                "key" => key = Some(map.next_value()?),
                other => {
                    return Err(de::Error::unknown_field(other, &["cert", "key"]));
                }
            }
        }
        match (cert, key) {
            (Some(cert), Some(key)) => Ok(TlsConfig::Files { cert, key }),
            (None, _) => Err(de::Error::missing_field("cert")),
            (_, None) => Err(de::Error::missing_field("key")),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::BTreeMap;
    use std::path::Path;

    use super::*;
    use crate::config::load_str;

    const REST: &str = r#"
[pools.local]
provider = "local"

[[builders]]
name = "b"

[[builders.steps]]
name = "s"
run = "true"
"#;

    /// The problems of `master` lines, one string each (`file:line: key: message`).
    fn problems(master: &str) -> Vec<String> {
        let text = format!("[master]\n{master}\n{REST}");
        match load_str(&text, Path::new("burst.toml"), &BTreeMap::new()) {
            Ok(_) => Vec::new(),
            Err(e) => e.problems().iter().map(ToString::to_string).collect(),
        }
    }

    fn self_signed_pair(dir: &Path) -> (String, String) {
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let cert = dir.join("cert.pem");
        let key = dir.join("key.pem");
        std::fs::write(&cert, made.cert.pem()).unwrap();
        std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
        (cert.display().to_string(), key.display().to_string())
    }

    #[test]
    fn self_signed_and_files_are_accepted() {
        let config = load_str(
            &format!("[master]\ntls = \"self-signed\"\n{REST}"),
            Path::new("burst.toml"),
            &BTreeMap::new(),
        )
        .unwrap();
        assert_eq!(config.master.tls, Some(TlsConfig::SelfSigned));
        assert!(config.master.advertise_url().starts_with("https://"));

        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = self_signed_pair(dir.path());
        let lines = format!("tls = {{ cert = {cert:?}, key = {key:?} }}");
        assert_eq!(problems(&lines), Vec::<String>::new());
    }

    #[test]
    fn an_unknown_value_or_key_names_file_line_and_key() {
        let found = problems("heartbeat_interval = \"1s\"\ntls = \"selfsigned\"");
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with("burst.toml:3: master.tls: unknown value \"selfsigned\""),
            "{found:?}"
        );
        let found = problems("tls = { cert = \"a\", key = \"b\", chain = \"c\" }");
        assert!(
            found[0].starts_with("burst.toml:2: master.tls") && found[0].contains("chain"),
            "{found:?}"
        );
        let found = problems("tls = { cert = \"a\" }");
        assert!(found[0].contains("missing field `key`"), "{found:?}");
    }

    #[test]
    fn missing_or_broken_files_name_their_key() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = self_signed_pair(dir.path());
        let missing = dir.path().join("nope.pem").display().to_string();

        let found = problems(&format!("tls = {{ cert = {missing:?}, key = {key:?} }}"));
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with("burst.toml:2: master.tls.cert: failed to read")
                && found[0].contains("nope.pem"),
            "{found:?}"
        );

        let garbage = dir.path().join("garbage.key");
        std::fs::write(&garbage, "not a key\n").unwrap();
        let garbage = garbage.display().to_string();
        let found = problems(&format!("tls = {{ cert = {cert:?}, key = {garbage:?} }}"));
        assert!(
            found[0].starts_with("burst.toml:2: master.tls.key:")
                && found[0].contains("no private key"),
            "{found:?}"
        );

        // The key of another certificate.
        let other = tempfile::tempdir().unwrap();
        let (_, other_key) = self_signed_pair(other.path());
        let found = problems(&format!("tls = {{ cert = {cert:?}, key = {other_key:?} }}"));
        assert!(
            found[0].starts_with("burst.toml:2: master.tls.key:")
                && found[0].contains("does not fit the certificate"),
            "{found:?}"
        );
    }

    #[test]
    fn the_advertised_scheme_must_match() {
        let found = problems("tls = \"self-signed\"\nadvertise_url = \"http://ci:8481\"");
        assert!(
            found[0].starts_with("burst.toml:3: master.advertise_url: must be https://"),
            "{found:?}"
        );
        let found = problems("advertise_url = \"https://ci:8481\"");
        assert!(
            found[0].starts_with("burst.toml:2: master.advertise_url: https:// needs master.tls"),
            "{found:?}"
        );
    }
}
