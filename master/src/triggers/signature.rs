//! Webhook authentication: GitHub's HMAC signature and the shared tokens
//! of GitLab and generic hooks, all compared in constant time.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::api::credentials;

/// Whether `header` (`sha256=<hex>`, GitHub's `X-Hub-Signature-256`) is the
/// HMAC-SHA256 of `body` under `secret`. `verify_slice` compares in
/// constant time.
pub(super) fn github_valid(secret: &str, body: &[u8], header: &str) -> bool {
    let Some(hex) = header.strip_prefix("sha256=") else {
        return false;
    };
    let Some(given) = unhex(hex) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&given).is_ok()
}

/// `sha256=<hex>` of `body` under `secret`: what GitHub sends (tests and
/// the docs' example use it).
pub fn github_signature(secret: &str, body: &[u8]) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        // HMAC takes keys of any length.
        Err(_) => return String::new(),
    };
    mac.update(body);
    let bytes = mac.finalize().into_bytes();
    format!(
        "sha256={}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

/// A shared token compared without leaking where it differs: both sides
/// are hashed first, so even the length comparison tells nothing.
pub(super) fn token_valid(secret: &str, given: &str) -> bool {
    credentials::same(&credentials::hash(secret), &credentials::hash(given))
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    s.as_bytes()
        .chunks(2)
        .map(|pair| match pair {
            [hi, lo] => Some((digit(*hi)? << 4) | digit(*lo)?),
            _ => None,
        })
        .collect()
}

fn digit(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of GitHub's "Validating webhook deliveries" page.
    #[test]
    fn github_documented_example_verifies() {
        let secret = "It's a Secret to Everybody";
        let body = b"Hello, World!";
        let expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(github_signature(secret, body), expected);
        assert!(github_valid(secret, body, expected));
        assert!(!github_valid(secret, b"Hello, World?", expected));
        assert!(!github_valid("another secret", body, expected));
        assert!(!github_valid(secret, body, "sha1=757107ea"));
        assert!(!github_valid(secret, body, "sha256=zz"));
        assert!(!github_valid(secret, body, "sha256="));
    }

    #[test]
    fn tokens_must_match_exactly() {
        assert!(token_valid("a-long-token-1", "a-long-token-1"));
        assert!(!token_valid("a-long-token-1", "a-long-token-2"));
        assert!(!token_valid("a-long-token-1", "a-long-token-1 "));
        assert!(!token_valid("a-long-token-1", ""));
    }
}
