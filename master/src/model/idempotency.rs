//! Idempotent submits: the key a client sends with `POST /api/v1/builds`,
//! so that a submit retried after a lost answer creates nothing new.

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{Build, BuildId, Millis};

/// The request header that carries the key.
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";

/// Keys are UUIDs in practice; this leaves room for other schemes.
pub const KEY_MAX_LEN: usize = 128;

/// How long a key is remembered.
pub const KEY_TTL_MILLIS: Millis = 24 * 60 * 60 * 1000;

/// Why `key` is not a valid idempotency key, if it is not.
pub fn key_problem(key: &str) -> Option<String> {
    let valid_chars = key
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'));
    if key.is_empty() || key.len() > KEY_MAX_LEN || !valid_chars {
        return Some(format!(
            "the Idempotency-Key header must be 1 to {KEY_MAX_LEN} characters of \
             [A-Za-z0-9._:-] (a UUID is a good choice)"
        ));
    }
    None
}

/// One submit's key, as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    /// Whose key it is: the caller's token name. Tokens never share keys.
    pub scope: String,
    pub key: String,
    /// SHA-256 of the request, so a key reused for another request is
    /// refused instead of answered with the wrong builds.
    pub request_hash: String,
}

impl IdempotencyKey {
    /// `request` is a `SubmitRequest` or a batch of them, hashed as sent.
    pub fn new(scope: &str, key: &str, request: &impl Serialize) -> Self {
        // Params are a BTreeMap: the encoding is canonical.
        let encoded = serde_json::to_vec(request).unwrap_or_default();
        Self {
            scope: scope.to_owned(),
            key: key.to_owned(),
            request_hash: Sha256::digest(&encoded)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
        }
    }
}

/// What a submit with a key did.
#[derive(Debug, Clone, PartialEq)]
pub enum SubmitOnce {
    /// The key was new: these builds were stored.
    Created(Vec<Build>),
    /// The key was used within its TTL for the same request: what that
    /// submit created, and nothing new.
    Replayed {
        submit_id: String,
        builds: Vec<BuildId>,
    },
    /// The key was used within its TTL for another request.
    Conflict,
}
