//! The gate in front of every route but `/healthz` and `/readyz`: the Host header must
//! name this master (DNS rebinding), a write must not come from another
//! origin (CSRF), and the bearer token must exist and carry the route's
//! role. Every refusal is logged with the caller, route and peer, never the
//! token.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::caller::{Caller, ANONYMOUS};
use super::credentials;
use super::error::HttpError;
use super::AppState;
use crate::model::Role;

/// Not behind the gate: load balancers and the harness probe them bare.
const HEALTHZ: &str = "/healthz";
const READYZ: &str = "/readyz";
/// Webhooks (`crate::triggers::routes`) authenticate by their source's
/// signature or secret, not an API token (a forge has none): they pass
/// this gate, and their handlers refuse and log like it.
const HOOKS_PREFIX: &str = "/hooks/";
/// The Prometheus exposition; the `metrics` role suffices.
const METRICS: &str = "/metrics";
/// The caller's name for a bare scrape let in by `master.metrics_open`.
const OPEN_SCRAPER: &str = "metrics-open";

pub async fn guard(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if path == HEALTHZ || path == READYZ || path.starts_with(HOOKS_PREFIX) {
        return next.run(req).await;
    }
    let peer_addr = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let peer = peer_addr.map_or_else(|| "unknown".to_owned(), |a| a.to_string());
    let route = format!("{} {}", req.method(), req.uri().path());
    let request = Asked {
        method: req.method(),
        path: req.uri().path(),
        headers: req.headers(),
        peer: peer_addr,
    };
    match admit(&state, request).await {
        Ok(caller) => {
            req.extensions_mut().insert(caller);
            next.run(req).await
        }
        Err(Refusal {
            status,
            caller,
            why,
        }) => {
            tracing::warn!(
                target: "auth",
                caller = %caller,
                route = %route,
                peer = %peer,
                status = status.as_u16(),
                "refused API request: {why}"
            );
            HttpError(status, why).into_response()
        }
    }
}

struct Refusal {
    status: StatusCode,
    /// The token's name if it was valid, else `anonymous`.
    caller: String,
    why: String,
}

fn refuse(status: StatusCode, caller: &str, why: impl Into<String>) -> Refusal {
    Refusal {
        status,
        caller: caller.to_owned(),
        why: why.into(),
    }
}

/// What the guard looks at in a request.
struct Asked<'a> {
    method: &'a Method,
    path: &'a str,
    headers: &'a HeaderMap,
    peer: Option<SocketAddr>,
}

async fn admit(state: &AppState, asked: Asked<'_>) -> Result<Caller, Refusal> {
    let Asked {
        method,
        path,
        headers,
        peer,
    } = asked;
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if !host_allowed(state, host) {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            ANONYMOUS,
            format!(
                "host {host:?} is not one this master answers to (add it to master.allowed_hosts)"
            ),
        ));
    }
    let read = matches!(*method, Method::GET | Method::HEAD);
    if !read {
        if let Some(origin) = headers.get(header::ORIGIN) {
            let origin = origin.to_str().unwrap_or("");
            if origin != format!("http://{host}") {
                return Err(refuse(
                    StatusCode::FORBIDDEN,
                    ANONYMOUS,
                    format!("cross-origin request from {origin:?} refused"),
                ));
            }
        }
    }
    let caller = match bearer(headers)? {
        None if read && state.config.master.anonymous_read => Caller {
            name: ANONYMOUS.to_owned(),
            role: Role::Viewer,
        },
        None if read && open_scrape(state.config.master.metrics_open, path, peer) => Caller {
            name: OPEN_SCRAPER.to_owned(),
            role: Role::Metrics,
        },
        None => {
            return Err(refuse(
                StatusCode::UNAUTHORIZED,
                ANONYMOUS,
                "authentication required: send `Authorization: Bearer <token>` \
                 (the CLI reads BURST_TOKEN or --token-file)",
            ))
        }
        Some(token) => lookup(state, token).await?,
    };
    let needed = needed_role(method, path);
    if caller.role < needed {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            &caller.name,
            format!(
                "token {:?} has role {}; this needs {needed}",
                caller.name, caller.role
            ),
        ));
    }
    Ok(caller)
}

/// The least role a route needs; handlers may ask for more (cancelling
/// another's build).
fn needed_role(method: &Method, path: &str) -> Role {
    if path == METRICS {
        Role::Metrics
    } else if path == "/api/v1/tokens" || path.starts_with("/api/v1/tokens/") {
        Role::Admin
    } else if matches!(*method, Method::GET | Method::HEAD) {
        Role::Viewer
    } else {
        Role::Submitter
    }
}

/// `master.metrics_open` lets a scraper on this host read `/metrics`
/// without a token: only from a loopback peer, so opening it never exposes
/// the fleet to the network, whatever `http_listen` is.
fn open_scrape(metrics_open: bool, path: &str, peer: Option<SocketAddr>) -> bool {
    metrics_open && path == METRICS && peer.is_some_and(|p| p.ip().is_loopback())
}

fn bearer(headers: &HeaderMap) -> Result<Option<&str>, Refusal> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let bad = || {
        refuse(
            StatusCode::UNAUTHORIZED,
            ANONYMOUS,
            "malformed Authorization header: expected `Bearer <token>`",
        )
    };
    let value = value.to_str().map_err(|_| bad())?;
    // The scheme is case-insensitive (RFC 9110).
    let (scheme, token) = value.split_once(' ').ok_or_else(bad)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(bad());
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(bad());
    }
    Ok(Some(token))
}

async fn lookup(state: &AppState, token: &str) -> Result<Caller, Refusal> {
    let hash = credentials::hash(token);
    let found = state.store.token_by_hash(&hash).await.map_err(|e| {
        let HttpError(status, why) = HttpError::from(e);
        refuse(status, ANONYMOUS, why)
    })?;
    match found {
        Some(t) if credentials::same(&t.hash, &hash) => Ok(Caller {
            name: t.name,
            role: t.role,
        }),
        _ => Err(refuse(
            StatusCode::UNAUTHORIZED,
            ANONYMOUS,
            "invalid or revoked API token",
        )),
    }
}

/// The Host header's name (port dropped) must be this master's: the listen
/// address, a loopback name, or one of `master.allowed_hosts`.
fn host_allowed(state: &AppState, host: &str) -> bool {
    let name = host_name(host).to_ascii_lowercase();
    if name.is_empty() {
        return false;
    }
    let listen = state.config.master.http_listen.ip().to_string();
    let builtin = ["localhost", "127.0.0.1", "::1", listen.as_str()];
    builtin.contains(&name.as_str())
        || state
            .config
            .master
            .allowed_hosts
            .iter()
            .any(|h| h.eq_ignore_ascii_case(&name))
}

/// `example.com:80` → `example.com`, `[::1]:80` → `::1`.
fn host_name(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or("");
    }
    host.split(':').next().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_drop_the_port() {
        assert_eq!(host_name("localhost:8480"), "localhost");
        assert_eq!(host_name("[::1]:8480"), "::1");
        assert_eq!(host_name("[::1]"), "::1");
        assert_eq!(host_name("evil.example"), "evil.example");
        assert_eq!(host_name(""), "");
    }

    #[test]
    fn routes_need_their_roles() {
        assert_eq!(needed_role(&Method::GET, "/api/v1/builds"), Role::Viewer);
        assert_eq!(
            needed_role(&Method::POST, "/api/v1/builds"),
            Role::Submitter
        );
        assert_eq!(needed_role(&Method::GET, "/api/v1/tokens"), Role::Admin);
        assert_eq!(
            needed_role(&Method::DELETE, "/api/v1/tokens/x"),
            Role::Admin
        );
        assert!(Role::Viewer < Role::Submitter && Role::Submitter < Role::Admin);
        // The metrics role reads /metrics and nothing else.
        assert_eq!(needed_role(&Method::GET, "/metrics"), Role::Metrics);
        assert!(Role::Metrics < Role::Viewer);
    }

    #[test]
    fn metrics_open_admits_only_loopback_peers_on_metrics() {
        let local: SocketAddr = ([127, 0, 0, 1], 4000).into();
        let local6: SocketAddr = (std::net::Ipv6Addr::LOCALHOST, 4000).into();
        let remote: SocketAddr = ([192, 0, 2, 7], 4000).into();
        assert!(open_scrape(true, "/metrics", Some(local)));
        assert!(open_scrape(true, "/metrics", Some(local6)));
        assert!(!open_scrape(true, "/metrics", Some(remote)));
        assert!(!open_scrape(true, "/metrics", None));
        assert!(!open_scrape(false, "/metrics", Some(local)));
        assert!(!open_scrape(true, "/api/v1/builds", Some(local)));
    }
}
