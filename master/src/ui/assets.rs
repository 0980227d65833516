//! The stylesheet and the script, embedded in the binary. Pages link them
//! by a name with their content's hash (`/ui/assets/burst-<hash>.css`),
//! served as immutable for a year; the plain name (`burst.css`) is served
//! too, revalidated every time. Both carry an ETag and answer a matching
//! `If-None-Match` with 304.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

struct Asset {
    stem: &'static str,
    ext: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

const FILES: [Asset; 2] = [
    Asset {
        stem: "burst",
        ext: "css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("assets/burst.css"),
    },
    Asset {
        stem: "burst",
        ext: "js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("assets/burst.js"),
    },
];

/// The first 16 hex digits of each file's SHA-256, in `FILES` order.
static HASHES: LazyLock<Vec<String>> = LazyLock::new(|| {
    FILES
        .iter()
        .map(|a| {
            Sha256::digest(a.bytes)
                .iter()
                .take(8)
                .map(|b| format!("{b:02x}"))
                .collect()
        })
        .collect()
});

const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const REVALIDATE: &str = "no-cache";

/// The versioned URL of the stylesheet.
pub fn css_href() -> String {
    href(0)
}

/// The versioned URL of the script.
pub fn js_href() -> String {
    href(1)
}

fn href(i: usize) -> String {
    let a = &FILES[i];
    format!(
        "{}{}-{}.{}",
        super::router::ASSETS,
        a.stem,
        HASHES[i],
        a.ext
    )
}

/// Which file a name asks for, and whether it is the versioned name.
fn find(name: &str) -> Option<(usize, bool)> {
    FILES.iter().enumerate().find_map(|(i, a)| {
        let plain = format!("{}.{}", a.stem, a.ext);
        let versioned = format!("{}-{}.{}", a.stem, HASHES[i], a.ext);
        if name == plain {
            Some((i, false))
        } else if name == versioned {
            Some((i, true))
        } else {
            None
        }
    })
}

/// True when `If-None-Match` lists this ETag (or `*`); weak tags match
/// too, as RFC 9110 asks for GET.
fn not_modified(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == etag || t == "*")
}

pub async fn serve(Path(name): Path<String>, headers: HeaderMap) -> Response {
    let Some((i, versioned)) = find(&name) else {
        return (StatusCode::NOT_FOUND, "no such asset\n").into_response();
    };
    let etag = format!("\"{}\"", HASHES[i]);
    let cache = if versioned { IMMUTABLE } else { REVALIDATE };
    let mut answer = if not_modified(&headers, &etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(header::CONTENT_TYPE, FILES[i].content_type)],
            FILES[i].bytes,
        )
            .into_response()
    };
    let h = answer.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versioned_and_plain_names_resolve() {
        let css = css_href();
        let name = css.strip_prefix("/ui/assets/").expect("prefix");
        assert_eq!(find(name), Some((0, true)));
        assert_eq!(find("burst.css"), Some((0, false)));
        assert_eq!(find("burst.js"), Some((1, false)));
        assert_eq!(find("burst-0000000000000000.css"), None);
        assert_eq!(find("../Cargo.toml"), None);
    }

    #[test]
    fn the_assets_fetch_nothing_from_elsewhere() {
        for a in &FILES {
            let text = std::str::from_utf8(a.bytes).expect("utf-8");
            for external in [
                "http://",
                "https://",
                "url(",
                "@import",
                "fetch(",
                "XMLHttpRequest",
            ] {
                assert!(
                    !text.contains(external),
                    "{external} in {}.{}",
                    a.stem,
                    a.ext
                );
            }
        }
    }

    #[test]
    fn if_none_match_is_honoured() {
        let mut h = HeaderMap::new();
        assert!(!not_modified(&h, "\"abc\""));
        h.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_static("\"x\", W/\"abc\""),
        );
        assert!(not_modified(&h, "\"abc\""));
        assert!(!not_modified(&h, "\"abd\""));
    }

    #[tokio::test]
    async fn a_matching_etag_answers_304_with_no_body() {
        let etag = format!("\"{}\"", HASHES[0]);
        let mut h = HeaderMap::new();
        h.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_str(&etag).expect("ascii"),
        );
        let r = serve(Path("burst.css".to_owned()), h).await;
        assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(r.headers()[header::ETAG], etag.as_str());
        let r = serve(Path("burst.css".to_owned()), HeaderMap::new()).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()[header::CACHE_CONTROL], REVALIDATE);
    }
}
