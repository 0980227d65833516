//! Browser sessions made from an API token at `POST /login`.
//!
//! The cookie carries a random session id; the master keeps only its
//! SHA-256, with the hash of the token it was made from (never the token),
//! so the guard re-checks the token on every request: revoking the token
//! ends its sessions, and a role change applies at once. Sessions live in
//! memory: a master restart logs everyone out, which is the safe direction.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::http::{header, HeaderMap};
use rand::RngCore;

use crate::api::credentials;
use crate::model::{now_millis, Millis};

/// The cookie's name.
pub const COOKIE: &str = "burst_session";
/// A session ends this long after login, whatever happens.
pub const LIFETIME_SECS: i64 = 12 * 3600;
/// Sessions kept at most; past it the oldest goes (a login flood cannot
/// grow memory).
const MAX_SESSIONS: usize = 10_000;

/// The per-session token every UI form carries in its `csrf` field. Debug
/// never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct CsrfToken(String);

impl CsrfToken {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Constant-time comparison with what a request carried.
    pub fn matches(&self, sent: &str) -> bool {
        credentials::same(&self.0, sent)
    }
}

impl std::fmt::Debug for CsrfToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CsrfToken(..)")
    }
}

/// What a session id maps to.
#[derive(Debug, Clone)]
pub struct Session {
    /// The hash of the token logged in with (as the store keeps it).
    pub token_hash: String,
    pub csrf: CsrfToken,
    pub expires_at: Millis,
}

/// The live sessions, keyed by the SHA-256 of their id.
#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// A new session for the token with this hash: returns the id for the
    /// cookie (kept nowhere else).
    pub fn create(&self, token_hash: String) -> String {
        let id = random_hex();
        let now = now_millis();
        let session = Session {
            token_hash,
            csrf: CsrfToken(random_hex()),
            expires_at: now + LIFETIME_SECS * 1000,
        };
        let mut map = self.lock();
        if map.len() >= MAX_SESSIONS {
            map.retain(|_, s| s.expires_at > now);
        }
        if map.len() >= MAX_SESSIONS {
            let oldest = map
                .iter()
                .min_by_key(|(_, s)| s.expires_at)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                map.remove(&k);
            }
        }
        map.insert(credentials::hash(&id), session);
        id
    }

    /// The live session with this id, if any (an expired one is dropped).
    pub fn get(&self, id: &str) -> Option<Session> {
        let key = credentials::hash(id);
        let mut map = self.lock();
        match map.get(&key) {
            Some(s) if s.expires_at > now_millis() => Some(s.clone()),
            Some(_) => {
                map.remove(&key);
                None
            }
            None => None,
        }
    }

    pub fn remove(&self, id: &str) {
        self.lock().remove(&credentials::hash(id));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        // Every critical section is one map operation: a panic cannot leave
        // it half-done.
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The session id from the request's `Cookie` headers, if one is sent.
pub fn cookie_value(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim())
        .filter(|v| !v.is_empty())
}

/// `Set-Cookie` for a new session: never readable by scripts, never sent
/// by another site's request, `Secure` when the master serves TLS.
pub fn set_cookie(id: &str, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={LIFETIME_SECS}{secure}")
}

/// `Set-Cookie` that deletes the session cookie.
pub fn clear_cookie(secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{secure}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn cookies_are_httponly_strict_and_secure_with_tls() {
        let c = set_cookie("abc", false);
        assert!(c.starts_with("burst_session=abc;"), "{c}");
        for flag in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
            assert!(c.contains(flag), "{flag} missing in {c}");
        }
        assert!(!c.contains("Secure"), "{c}");
        assert!(set_cookie("abc", true).ends_with("; Secure"));
        assert!(clear_cookie(true).contains("Max-Age=0"));
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        assert_eq!(cookie_value(&h), None);
        h.append(header::COOKIE, HeaderValue::from_static("a=1; b=2"));
        h.append(
            header::COOKIE,
            HeaderValue::from_static("x=y; burst_session=s3cr3t"),
        );
        assert_eq!(cookie_value(&h), Some("s3cr3t"));
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, HeaderValue::from_static("burst_session="));
        assert_eq!(cookie_value(&h), None);
    }

    #[test]
    fn sessions_keep_only_hashes_and_expire() {
        let sessions = Sessions::default();
        let id = sessions.create("tokenhash".to_owned());
        assert_eq!(id.len(), 64);
        let s = sessions.get(&id).expect("live");
        assert_eq!(s.token_hash, "tokenhash");
        assert!(!sessions.lock().contains_key(&id), "the raw id is stored");
        assert!(sessions.get("other").is_none());
        // Expired sessions are dropped on lookup.
        sessions
            .lock()
            .values_mut()
            .for_each(|s| s.expires_at = now_millis() - 1);
        assert!(sessions.get(&id).is_none());
        assert!(sessions.lock().is_empty());
        let id = sessions.create("h".to_owned());
        sessions.remove(&id);
        assert!(sessions.get(&id).is_none());
    }

    #[test]
    fn csrf_tokens_compare_whole_and_hide_in_debug() {
        let t = CsrfToken("a".repeat(64));
        assert!(t.matches(&"a".repeat(64)));
        assert!(!t.matches(&"a".repeat(63)));
        assert!(!t.matches(""));
        assert!(!t.matches(&format!("{}b", "a".repeat(63))));
        assert_eq!(format!("{t:?}"), "CsrfToken(..)");
    }

    #[test]
    fn the_session_count_is_capped() {
        let sessions = Sessions::default();
        let first = sessions.create("h".to_owned());
        // Make the first the oldest, then fill up.
        sessions
            .lock()
            .values_mut()
            .for_each(|s| s.expires_at -= 1000);
        for _ in 1..MAX_SESSIONS {
            sessions.create("h".to_owned());
        }
        assert!(sessions.get(&first).is_some());
        sessions.create("h".to_owned());
        assert_eq!(sessions.lock().len(), MAX_SESSIONS);
        assert!(sessions.get(&first).is_none(), "the oldest goes first");
    }
}
