use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

/// Signs and checks cache capabilities: HMAC-SHA256 over the step run, its
/// scope and whether it saves, with a key made at each master start. So a
/// token is good only for the step it was sent with, only for its own
/// builder's caches, and only until the master restarts; the service also
/// checks that the step is running.
#[derive(Clone)]
pub struct CacheKeys {
    key: [u8; 32],
}

impl std::fmt::Debug for CacheKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CacheKeys(..)")
    }
}

impl Default for CacheKeys {
    fn default() -> Self {
        let mut key = [0; 32];
        rand::rng().fill_bytes(&mut key);
        Self { key }
    }
}

impl CacheKeys {
    fn mac(&self, step: &str, scope: &str, save: bool) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        for part in [
            step.as_bytes(),
            b"\0",
            scope.as_bytes(),
            b"\0",
            if save { b"save" } else { b"read" },
        ] {
            mac.update(part);
        }
        mac
    }

    pub fn token(&self, step: &str, scope: &str, save: bool) -> String {
        self.mac(step, scope, save)
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// In constant time.
    pub fn verify(&self, step: &str, scope: &str, save: bool, token: &str) -> bool {
        let Some(bytes) = unhex(token) else {
            return false;
        };
        self.mac(step, scope, save).verify_slice(&bytes).is_ok()
    }
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() != 64 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_good_for_its_step_scope_and_mode_only() {
        let keys = CacheKeys::default();
        let t = keys.token("1.1.0", "b", false);
        assert!(keys.verify("1.1.0", "b", false, &t));
        assert!(!keys.verify("1.1.1", "b", false, &t));
        assert!(!keys.verify("1.1.0", "other", false, &t));
        assert!(!keys.verify("1.1.0", "b", true, &t));
        assert!(!keys.verify("1.1.0", "b", false, "zz"));
        assert!(!CacheKeys::default().verify("1.1.0", "b", false, &t));
    }
}
