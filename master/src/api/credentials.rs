//! API token values: made from 256 random bits, kept only as SHA-256.

use rand::RngCore;
use sha2::{Digest, Sha256};

/// Every token starts with this, so a leaked one is easy to grep for.
const PREFIX: &str = "burst_";

/// A fresh token: the prefix and 64 hex digits.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{PREFIX}{}", hex(&bytes))
}

/// What the store keeps: the token's SHA-256 in lowercase hex. Lookups go
/// by this hash, so the database's comparison timing can only leak bits of
/// a hash of a 256-bit secret, which tells nothing about the secret.
pub fn hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

/// Compares without an early exit (for the hash found against the hash
/// asked for, as a second check beside the database's lookup).
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A token name: 1 to 64 of `A-Z a-z 0-9 . _ -`, and not `anonymous`
/// (which names unauthenticated callers in the logs).
pub fn check_name(name: &str) -> Result<(), String> {
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if name.is_empty() || name.len() > 64 || !ok_chars {
        return Err(format!(
            "invalid token name {name:?}: use 1 to 64 letters, digits, '.', '_' or '-'"
        ));
    }
    if name == super::caller::ANONYMOUS {
        return Err("the token name \"anonymous\" is reserved".to_owned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_hashed() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), PREFIX.len() + 64);
        assert_eq!(hash(&a).len(), 64);
        assert!(same(&hash(&a), &hash(&a)));
        assert!(!same(&hash(&a), &hash(&b)));
        assert!(!same("ab", "abc"));
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("ci-bot.1_x").is_ok());
        for bad in ["", "a b", "anonymous", "é", &"x".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }
}
