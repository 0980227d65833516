//! The CSRF check on writes a session cookie authenticates. A browser sends
//! the cookie with any request to this master, so the cookie alone proves
//! nothing about who wrote the form; the per-session token in its hidden
//! `csrf` field (or the `x-csrf-token` header, for scripts) does. Requests
//! with a bearer token need no such check: no browser adds one by itself.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap};

use super::session::CsrfToken;

/// The form field every UI form carries.
pub const FIELD: &str = "csrf";
/// The header a script may send instead.
pub const HEADER: &str = "x-csrf-token";
/// The largest form body the check reads (UI forms are a few fields).
pub const FORM_LIMIT: usize = 64 * 1024;

/// Passes the request on, its body intact, when it carries the session's
/// token; otherwise says why it is refused.
pub async fn verify(req: Request, expected: &CsrfToken) -> Result<Request, String> {
    if let Some(sent) = req.headers().get(HEADER) {
        let sent = sent.to_str().unwrap_or("");
        return if expected.matches(sent) {
            Ok(req)
        } else {
            Err(format!("wrong CSRF token in {HEADER}"))
        };
    }
    if !is_form(req.headers()) {
        return Err(format!(
            "a write with a session cookie needs the {FIELD:?} form field or the {HEADER} header"
        ));
    }
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, FORM_LIMIT)
        .await
        .map_err(|e| format!("failed to read the form body (at most {FORM_LIMIT} bytes): {e}"))?;
    match form_field(&bytes, FIELD) {
        Some(sent) if expected.matches(&sent) => Ok(Request::from_parts(parts, Body::from(bytes))),
        Some(_) => Err("wrong CSRF token in the form".to_owned()),
        None => Err(format!("the form has no {FIELD:?} field")),
    }
}

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// The first value of `name` in an urlencoded body.
fn form_field(body: &[u8], name: &str) -> Option<String> {
    form_urlencoded::parse(body)
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> CsrfToken {
        // Built the way sessions build them, through a session.
        let sessions = super::super::session::Sessions::default();
        let id = sessions.create("h".to_owned());
        sessions.get(&id).expect("live").csrf
    }

    fn form(body: &str) -> Request {
        Request::builder()
            .method("POST")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body.to_owned()))
            .expect("request")
    }

    #[tokio::test]
    async fn a_form_with_the_token_passes_with_its_body() {
        let t = token();
        let req = verify(form(&format!("a=1&csrf={}&b=2", t.as_str())), &t)
            .await
            .expect("passes");
        let body = axum::body::to_bytes(req.into_body(), 1024)
            .await
            .expect("body");
        assert_eq!(body, format!("a=1&csrf={}&b=2", t.as_str()).as_bytes());
    }

    #[tokio::test]
    async fn missing_or_wrong_tokens_are_refused() {
        let t = token();
        let other = token();
        assert!(verify(form("a=1"), &t).await.unwrap_err().contains("no"));
        assert!(verify(form(&format!("csrf={}", other.as_str())), &t)
            .await
            .unwrap_err()
            .contains("wrong"));
        assert!(verify(form("csrf="), &t).await.is_err());
        // Not a form and no header: refused.
        let json = Request::builder()
            .method("POST")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(format!("{{\"csrf\":\"{}\"}}", t.as_str())))
            .expect("request");
        assert!(verify(json, &t).await.is_err());
        // A body past the limit is refused, not read whole.
        let big = format!("x={}&csrf={}", "a".repeat(FORM_LIMIT), t.as_str());
        assert!(verify(form(&big), &t).await.is_err());
    }

    #[tokio::test]
    async fn the_header_works_for_scripts() {
        let t = token();
        let req = |v: &str| {
            Request::builder()
                .method("POST")
                .header(HEADER, v)
                .body(Body::empty())
                .expect("request")
        };
        assert!(verify(req(t.as_str()), &t).await.is_ok());
        assert!(verify(req("nope"), &t).await.is_err());
    }
}
