//! The gate in front of every route but `/healthz` and `/readyz`: the Host header must
//! name this master (DNS rebinding), a write must not come from another
//! origin (CSRF), and the bearer token (or the browser session made from
//! one, `ui/session.rs`) must exist and carry the route's role. A write a
//! session cookie authenticates must also carry the session's CSRF token
//! (`ui/csrf.rs`). Every refusal is logged with the caller, route and peer,
//! never the token. An unauthenticated browser GET of a UI page is sent to
//! `/login`; the API keeps answering 401. Any other refusal of a UI page
//! is an HTML page, of an API route JSON.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

use super::caller::{Caller, ANONYMOUS};
use super::credentials;
use super::error::HttpError;
use super::AppState;
use crate::model::Role;
use crate::ui;

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
    let read = matches!(*req.method(), Method::GET | Method::HEAD);
    let request = Asked {
        method: req.method(),
        path: req.uri().path(),
        headers: req.headers(),
        peer: peer_addr,
    };
    let refused = |refusal: Refusal| {
        let Refusal {
            status,
            caller,
            why,
        } = refusal;
        tracing::warn!(
            target: "auth",
            caller = %caller,
            route = %route,
            peer = %peer,
            status = status.as_u16(),
            "refused API request: {why}"
        );
        (status, why)
    };
    let ui_page = ui::router::is_page(req.uri().path());
    match admit(&state, request).await {
        Ok(Admitted::Public) => next.run(req).await,
        Ok(Admitted::Caller(caller)) => {
            if let (Some(csrf), false) = (&caller.csrf, read) {
                match ui::csrf::verify(req, csrf).await {
                    Ok(checked) => req = checked,
                    Err(why) => {
                        let (status, why) =
                            refused(refuse(StatusCode::FORBIDDEN, &caller.name, why));
                        if ui_page {
                            return ui::error::refusal(status, why, &caller);
                        }
                        return HttpError(status, why).into_response();
                    }
                }
            }
            req.extensions_mut().insert(caller);
            next.run(req).await
        }
        Err(refusal) => {
            let (status, why) = refused(refusal);
            if status == StatusCode::UNAUTHORIZED && read && ui_page {
                let uri = req.uri();
                let back = uri.path_and_query().map_or("/", |p| p.as_str());
                return Redirect::to(&ui::login::login_url(back)).into_response();
            }
            // A browser gets a page it can read; the API keeps its JSON.
            if ui_page {
                return ui::error::refusal(status, why, &Caller::anonymous());
            }
            HttpError(status, why).into_response()
        }
    }
}

/// Who the guard let in.
enum Admitted {
    /// A route anyone may reach (the login form, static assets).
    Public,
    Caller(Caller),
}

pub(crate) struct Refusal {
    pub(crate) status: StatusCode,
    /// The token's name if it was valid, else `anonymous`.
    caller: String,
    pub(crate) why: String,
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

async fn admit(state: &AppState, asked: Asked<'_>) -> Result<Admitted, Refusal> {
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
            if origin != format!("{}://{host}", state.config.get().master.scheme()) {
                return Err(refuse(
                    StatusCode::FORBIDDEN,
                    ANONYMOUS,
                    format!("cross-origin request from {origin:?} refused"),
                ));
            }
        }
    }
    if ui::router::is_public(method, path) {
        return Ok(Admitted::Public);
    }
    let caller = match bearer(headers)? {
        Some(token) => lookup(state, &credentials::hash(token), None).await?,
        None => match session(state, headers).await? {
            Some(caller) => caller,
            None if read && state.config.get().master.anonymous_read => Caller::anonymous(),
            None if read && open_scrape(state.config.get().master.metrics_open, path, peer) => {
                Caller {
                    name: OPEN_SCRAPER.to_owned(),
                    role: Role::Metrics,
                    csrf: None,
                }
            }
            None => {
                return Err(refuse(
                    StatusCode::UNAUTHORIZED,
                    ANONYMOUS,
                    "authentication required: send `Authorization: Bearer <token>` \
                     (the CLI reads BURST_TOKEN or --token-file) or log in at /login",
                ))
            }
        },
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
    Ok(Admitted::Caller(caller))
}

/// The caller of a browser session cookie: the token it was made from,
/// looked up again (a revoked token's sessions stop working at once). A
/// stale cookie (master restarted, expired) counts as none, so anonymous
/// reads still work with it.
async fn session(state: &AppState, headers: &HeaderMap) -> Result<Option<Caller>, Refusal> {
    let Some(id) = ui::session::cookie_value(headers) else {
        return Ok(None);
    };
    let Some(session) = state.sessions.get(id) else {
        return Ok(None);
    };
    lookup(state, &session.token_hash, Some(session.csrf))
        .await
        .map(Some)
}

/// The least role a route needs; handlers may ask for more (cancelling
/// another's build).
fn needed_role(method: &Method, path: &str) -> Role {
    if path == METRICS {
        Role::Metrics
    } else if path == ui::router::LOGOUT {
        // Anyone logged in may log out.
        Role::Viewer
    } else if path == "/api/v1/tokens"
        || path.starts_with("/api/v1/tokens/")
        || path.starts_with("/api/v1/config/")
        || path == "/api/v1/gc"
    {
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

/// The caller of the token with this hash; `csrf` is the session's when a
/// cookie brought the hash.
pub(crate) async fn lookup(
    state: &AppState,
    hash: &str,
    csrf: Option<ui::CsrfToken>,
) -> Result<Caller, Refusal> {
    let found = state.store.token_by_hash(hash).await.map_err(|e| {
        let HttpError(status, why) = HttpError::from(e);
        refuse(status, ANONYMOUS, why)
    })?;
    match found {
        Some(t) if credentials::same(&t.hash, hash) => Ok(Caller {
            name: t.name,
            role: t.role,
            csrf,
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
    let config = state.config.get();
    let listen = config.master.http_listen.ip().to_string();
    let builtin = ["localhost", "127.0.0.1", "::1", listen.as_str()];
    builtin.contains(&name.as_str())
        || config
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
        // Reloading the config and deleting builds are the operator's.
        assert_eq!(
            needed_role(&Method::POST, "/api/v1/config/reload"),
            Role::Admin
        );
        assert_eq!(needed_role(&Method::POST, "/api/v1/gc"), Role::Admin);
        assert!(Role::Viewer < Role::Submitter && Role::Submitter < Role::Admin);
        // The metrics role reads /metrics and nothing else.
        assert_eq!(needed_role(&Method::GET, "/metrics"), Role::Metrics);
        assert!(Role::Metrics < Role::Viewer);
        // Anyone logged in may log out; the UI's buttons are writes.
        assert_eq!(needed_role(&Method::POST, "/logout"), Role::Viewer);
        assert_eq!(
            needed_role(&Method::POST, "/builds/1/cancel"),
            Role::Submitter
        );
        assert_eq!(needed_role(&Method::GET, "/builds/1"), Role::Viewer);
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
