//! The pin a worker checks the master's certificate against: `sha256:`
//! and the lowercase hex SHA-256 of one certificate's DER, the CA's for a
//! self-signed master, the server certificate's for certificate files.
//! Written by the master, carried by every provider next to the launch
//! token (`launch_env::MASTER_PIN`), and parsed by the worker.

use std::fmt;

use sha2::{Digest, Sha256};

const PREFIX: &str = "sha256:";

/// A parsed pin: the SHA-256 of a certificate.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Pin([u8; 32]);

impl Pin {
    /// The pin of a DER-encoded certificate.
    pub fn of(der: &[u8]) -> Self {
        Self(Sha256::digest(der).into())
    }

    /// Parses `sha256:<64 hex digits>` (the prefix may be left out, case
    /// does not matter).
    pub fn parse(text: &str) -> Result<Self, PinError> {
        let trimmed = text.trim();
        let hex = trimmed
            .get(..PREFIX.len())
            .filter(|p| p.eq_ignore_ascii_case(PREFIX))
            .map_or(trimmed, |_| &trimmed[PREFIX.len()..]);
        if hex.len() != 64 || !hex.is_ascii() {
            return Err(PinError(format!(
                "expected sha256: and 64 hex digits, got {} characters",
                trimmed.len()
            )));
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            let pair = &hex[2 * i..2 * i + 2];
            *byte = u8::from_str_radix(pair, 16)
                .map_err(|_| PinError(format!("{pair:?} is not a hex byte")))?;
        }
        Ok(Self(out))
    }

    /// Whether this is the pin of `der`.
    pub fn matches(&self, der: &[u8]) -> bool {
        *self == Self::of(der)
    }
}

impl fmt::Display for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(PREFIX)?;
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A pin that does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinError(String);

impl fmt::Display for PinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid certificate pin: {}", self.0)
    }
}

impl std::error::Error for PinError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_round_trip_and_match_only_their_certificate() {
        let pin = Pin::of(b"certificate");
        let text = pin.to_string();
        assert!(text.starts_with("sha256:") && text.len() == 71, "{text}");
        assert_eq!(Pin::parse(&text), Ok(pin));
        assert_eq!(Pin::parse(&text.to_uppercase()), Ok(pin));
        assert_eq!(Pin::parse(&text["sha256:".len()..]), Ok(pin));
        assert!(pin.matches(b"certificate"));
        assert!(!pin.matches(b"another"));
    }

    #[test]
    fn malformed_pins_are_refused() {
        assert!(Pin::parse("").is_err());
        assert!(Pin::parse("sha256:abcd").is_err());
        assert!(Pin::parse(&format!("sha256:{}", "é".repeat(32))).is_err());
        let bad = format!("sha256:{}", "zz".repeat(32));
        assert!(Pin::parse(&bad)
            .unwrap_err()
            .to_string()
            .contains("not a hex byte"));
    }
}
