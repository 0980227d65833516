//! Launch and resume tokens. Only their SHA-256 is kept in memory; they are
//! never logged or stored.

use rand::RngCore;
use sha2::{Digest, Sha256};

pub type TokenHash = [u8; 32];

/// A fresh random token (256 bits, hex).
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex(&bytes)
}

pub fn hash(token: &str) -> TokenHash {
    Sha256::digest(token.as_bytes()).into()
}

/// Compares without an early exit, so timing tells nothing about the token.
pub fn matches(token: &str, expected: &TokenHash) -> bool {
    hash(token)
        .iter()
        .zip(expected)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0
}

/// A hash as the ledger stores it.
pub fn to_hex(hash: &TokenHash) -> String {
    hex(hash)
}

/// A hash read back from the ledger; `None` if it is not one.
pub fn from_hex(text: &str) -> Option<TokenHash> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// Where worker ids come from: the thread's random generator, or a seeded
/// one, so a replay (`crate::simulate`) names its workers the same way each
/// time (assignment takes idle workers in id order).
#[derive(Default)]
pub struct Ids(Option<rand::rngs::StdRng>);

impl Ids {
    pub fn seeded(seed: u64) -> Self {
        use rand::SeedableRng;
        Self(Some(rand::rngs::StdRng::seed_from_u64(seed)))
    }

    pub fn short_id(&mut self) -> String {
        let mut bytes = [0u8; 4];
        match &mut self.0 {
            Some(rng) => rng.fill_bytes(&mut bytes),
            None => rand::rng().fill_bytes(&mut bytes),
        }
        hex(&bytes)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_and_match_only_themselves() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert!(matches(&a, &hash(&a)));
        assert!(!matches(&b, &hash(&a)));
        assert!(!matches("", &hash(&a)));
    }

    #[test]
    fn hashes_round_trip_through_hex() {
        let h = hash(&new_token());
        assert_eq!(from_hex(&to_hex(&h)), Some(h));
        assert_eq!(from_hex("zz"), None);
        assert_eq!(from_hex(&"é".repeat(32)), None);
    }
}
