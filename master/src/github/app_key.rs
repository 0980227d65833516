//! A GitHub App's credentials: the RS256 JWT it signs with its private key
//! (to ask for installation tokens), and the installation tokens, cached
//! until shortly before they expire.

use std::path::Path;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;

/// GitHub refuses a JWT that lives longer than ten minutes; iat is set a
/// minute back for clock drift, as GitHub's docs advise.
const JWT_LIFETIME_SECS: u64 = 9 * 60;
const JWT_BACKDATE_SECS: u64 = 60;

/// Reads and checks a GitHub App's PEM private key (PKCS#1, as GitHub
/// generates it, or PKCS#8). The error names the file, never its content.
pub fn read_app_key(path: &Path) -> Result<EncodingKey, String> {
    let pem = std::fs::read(path)
        .map_err(|e| format!("failed to read the GitHub App key {}: {e}", path.display()))?;
    let key = EncodingKey::from_rsa_pem(&pem).map_err(|e| {
        format!(
            "failed to read the GitHub App key {}: not an RSA private key in PEM ({e})",
            path.display()
        )
    })?;
    // A key ring accepts as PEM but cannot sign with fails here, at load,
    // not at the first webhook.
    app_jwt(1, &key, 0).map_err(|e| {
        format!(
            "failed to sign with the GitHub App key {}: {e}",
            path.display()
        )
    })?;
    Ok(key)
}

#[derive(Serialize)]
struct Claims {
    iat: u64,
    exp: u64,
    iss: String,
}

/// The App's JWT at `now` (Unix seconds).
pub fn app_jwt(app_id: u64, key: &EncodingKey, now: u64) -> Result<String, String> {
    let claims = Claims {
        iat: now.saturating_sub(JWT_BACKDATE_SECS),
        exp: now + JWT_LIFETIME_SECS,
        iss: app_id.to_string(),
    };
    jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, key).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    /// A 2048-bit test key, made for these tests only.
    pub(crate) const TEST_KEY: &str = include_str!("test_app_key.pem");

    #[test]
    fn the_jwt_is_rs256_with_the_app_id_and_a_short_life() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.pem");
        std::fs::write(&path, TEST_KEY).unwrap();
        let key = read_app_key(&path).unwrap();
        let jwt = app_jwt(4242, &key, 1_700_000_000).unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header: serde_json::Value =
            serde_json::from_slice(&b64.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header["alg"], "RS256");
        let claims: serde_json::Value =
            serde_json::from_slice(&b64.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(claims["iss"], "4242");
        assert_eq!(claims["iat"], 1_700_000_000 - 60);
        assert_eq!(claims["exp"], 1_700_000_000 + 540);
        assert!(!parts[2].is_empty());
    }

    #[test]
    fn a_broken_key_file_is_named_and_its_content_is_not_shown() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.pem");
        std::fs::write(
            &path,
            "-----BEGIN RSA PRIVATE KEY-----\nc2VjcmV0LWJ5dGVz\n-----END RSA PRIVATE KEY-----\n",
        )
        .unwrap();
        let Err(err) = read_app_key(&path) else {
            panic!("a broken key was read")
        };
        assert!(err.contains(&path.display().to_string()), "{err}");
        assert!(!err.contains("c2VjcmV0"), "{err}");
        let Err(missing) = read_app_key(&dir.path().join("none.pem")) else {
            panic!("a missing key was read")
        };
        assert!(missing.contains("none.pem"), "{missing}");
    }
}
