//! A small typed client of the master's HTTP API (`/api/v1`).

use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use reqwest::{Response, Url};
use serde::de::DeserializeOwned;

use crate::model::{
    ApiError, Build, BuildDetail, BuildId, SubmitResponse, WorkerView, IDEMPOTENCY_HEADER,
};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Bounds every plain request; log streams have their own idle handling.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// A health probe answers fast or not at all.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(5);
/// Whole-log downloads may be large.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(600);
/// Cap on a non-JSON error body quoted back to the user.
const MAX_ERROR_TEXT: usize = 300;

/// Keeps "cannot talk to the master" apart from "the master said no", which
/// is all the exit-code logic needs.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid master URL `{url}`: {problem}")]
    InvalidUrl { url: String, problem: String },
    #[error(
        "failed to reach the burst master at {url}: {cause}; is `burst master` running? \
         (set --url or BURST_URL)"
    )]
    Unreachable { url: String, cause: String },
    /// A non-2xx answer; `message` is the `error` text of its JSON body.
    #[error("{message}")]
    Api { status: u16, message: String },
    #[error("unexpected answer from the burst master at {url}: {problem}")]
    Protocol { url: String, problem: String },
    /// TLS verification failed: not the master we were told to trust.
    #[error(
        "failed to verify the TLS certificate of the burst master at {url}: {cause}; give its \
         CA with --ca-file or BURST_CA_FILE (a self-signed master's is <state_dir>/tls/ca.pem)"
    )]
    Untrusted { url: String, cause: String },
    #[error("failed to read the CA file {}: {problem}", path.display())]
    CaFile {
        path: std::path::PathBuf,
        problem: String,
    },
}

impl ClientError {
    /// The master answered, so retrying the same request will not help.
    pub fn is_api(&self) -> bool {
        matches!(self, ClientError::Api { .. })
    }
}

pub type ClientResult<T> = Result<T, ClientError>;

/// A stream of log bytes as they arrive.
pub type LogStream = std::pin::Pin<Box<dyn Stream<Item = ClientResult<Bytes>> + Send>>;

#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    /// Without a trailing slash, as the user gave it (for messages).
    base: String,
    /// Sent as `Authorization: Bearer`; never printed.
    token: Option<String>,
}

impl Client {
    pub fn new(url: &str) -> ClientResult<Self> {
        Self::with_ca(url, None)
    }

    /// A client of `url`; an https:// master is checked against the CA
    /// certificates in `ca_file`, or the system's roots without one.
    pub fn with_ca(url: &str, ca_file: Option<&std::path::Path>) -> ClientResult<Self> {
        let base = url.trim_end_matches('/').to_owned();
        let invalid = |problem: String| ClientError::InvalidUrl {
            url: url.to_owned(),
            problem,
        };
        let parsed = Url::parse(&base).map_err(|e| invalid(e.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(invalid("expected an http:// or https:// URL".to_owned()));
        }
        let mut builder = reqwest::Client::builder().connect_timeout(CONNECT_TIMEOUT);
        if let (Some(path), "https") = (ca_file, parsed.scheme()) {
            let ca_problem = |problem: String| ClientError::CaFile {
                path: path.to_owned(),
                problem,
            };
            let pem = std::fs::read(path).map_err(|e| ca_problem(e.to_string()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| ca_problem(root_cause(&e)))?;
            if certs.is_empty() {
                return Err(ca_problem("no certificate in it".to_owned()));
            }
            // Only this CA: a master's own CA is no business of the system's.
            builder = builder.tls_built_in_root_certs(false);
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder.build().map_err(|e| invalid(root_cause(&e)))?;
        Ok(Self {
            http,
            base,
            token: None,
        })
    }

    /// The same client, sending `token` with every request.
    pub fn with_token(mut self, token: Option<String>) -> Self {
        self.token = token;
        self
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// One submit; `key` makes a retry of it create nothing new.
    /// `req` is one `SubmitRequest` or a list of them (a batch).
    pub async fn submit(
        &self,
        req: &impl serde::Serialize,
        key: &str,
    ) -> ClientResult<SubmitResponse> {
        let rb = self
            .http
            .post(self.url("/api/v1/builds"))
            .header(IDEMPOTENCY_HEADER, key)
            .json(req);
        self.json(rb.timeout(REQUEST_TIMEOUT)).await
    }

    /// `GET /healthz`'s body (`ok`), within a health probe's few seconds.
    pub async fn healthz(&self) -> ClientResult<String> {
        let rb = self.http.get(self.url("/healthz")).timeout(HEALTH_TIMEOUT);
        let resp = self.send(rb).await?;
        let body = resp.text().await.map_err(|e| self.unreachable(&e))?;
        Ok(body.trim().to_owned())
    }

    pub async fn builds(&self) -> ClientResult<Vec<Build>> {
        self.get_json("/api/v1/builds").await
    }

    pub async fn build(&self, id: BuildId) -> ClientResult<Build> {
        self.get_json(&format!("/api/v1/builds/{id}")).await
    }

    /// The build with its estimated cost.
    pub async fn build_detail(&self, id: BuildId) -> ClientResult<BuildDetail> {
        self.get_json(&format!("/api/v1/builds/{id}")).await
    }

    pub async fn workers(&self) -> ClientResult<Vec<WorkerView>> {
        self.get_json("/api/v1/workers").await
    }

    /// The answer is read loosely: only its `state` field is needed.
    pub async fn cancel(&self, id: BuildId) -> ClientResult<serde_json::Value> {
        let rb = self
            .http
            .post(self.url(&format!("/api/v1/builds/{id}/cancel")));
        self.json(rb.timeout(REQUEST_TIMEOUT)).await
    }

    /// Any GET answered with JSON, untyped (for `--json`, which prints the
    /// answer as served).
    pub async fn create_token(
        &self,
        req: &crate::model::CreateTokenRequest,
    ) -> ClientResult<crate::model::CreateTokenResponse> {
        let rb = self.http.post(self.url("/api/v1/tokens")).json(req);
        self.json(rb.timeout(REQUEST_TIMEOUT)).await
    }

    pub async fn revoke_token(&self, name: &str) -> ClientResult<serde_json::Value> {
        // Names are checked by the master; encode so none can change the path.
        let mut url =
            Url::parse(&self.url("/api/v1/tokens/")).map_err(|e| ClientError::InvalidUrl {
                url: self.base.clone(),
                problem: e.to_string(),
            })?;
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().push(name);
        }
        let rb = self.http.delete(url);
        self.json(rb.timeout(REQUEST_TIMEOUT)).await
    }

    /// A POST without a body, answered with JSON.
    pub async fn post_json<T: DeserializeOwned>(&self, path: &str) -> ClientResult<T> {
        self.json(self.http.post(self.url(path)).timeout(REQUEST_TIMEOUT))
            .await
    }

    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> ClientResult<T> {
        self.json(self.http.get(self.url(path)).timeout(REQUEST_TIMEOUT))
            .await
    }

    /// The whole log as it is now.
    pub async fn log(&self, id: BuildId) -> ClientResult<Bytes> {
        let rb = self.http.get(self.url(&format!("/api/v1/builds/{id}/log")));
        let resp = self.send(rb.timeout(DOWNLOAD_TIMEOUT)).await?;
        resp.bytes().await.map_err(|e| self.unreachable(&e))
    }

    /// The log streamed: whole so far, then live until the build finishes
    /// (`follow = true`), or the whole log in chunks (`follow = false`).
    pub async fn log_stream(&self, id: BuildId, follow: bool) -> ClientResult<LogStream> {
        let mut rb = self.http.get(self.url(&format!("/api/v1/builds/{id}/log")));
        if follow {
            rb = rb.query(&[("follow", "true")]);
        } else {
            rb = rb.timeout(DOWNLOAD_TIMEOUT);
        }
        let resp = self.send(rb).await?;
        let this = self.clone();
        Ok(Box::pin(
            resp.bytes_stream()
                .map(move |r| r.map_err(|e| this.unreachable(&e))),
        ))
    }

    /// One artifact, streamed, with the sha256 the master has for it.
    pub async fn artifact(
        &self,
        id: BuildId,
        path: &str,
    ) -> ClientResult<(Option<String>, LogStream)> {
        let url = self.url(&format!(
            "/api/v1/builds/{id}/artifacts/{}",
            crate::artifacts::url_path(path)
        ));
        let resp = self.send(self.http.get(url)).await?;
        let sha = resp
            .headers()
            .get("x-burst-sha256")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let this = self.clone();
        Ok((
            sha,
            Box::pin(
                resp.bytes_stream()
                    .map(move |r| r.map_err(|e| this.unreachable(&e))),
            ),
        ))
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn json<T: DeserializeOwned>(&self, rb: reqwest::RequestBuilder) -> ClientResult<T> {
        let body = self
            .send(rb)
            .await?
            .bytes()
            .await
            .map_err(|e| self.unreachable(&e))?;
        serde_json::from_slice(&body).map_err(|e| ClientError::Protocol {
            url: self.base.clone(),
            problem: format!("invalid JSON: {e}"),
        })
    }

    /// Sends and turns a non-2xx answer into `ClientError::Api`.
    async fn send(&self, mut rb: reqwest::RequestBuilder) -> ClientResult<Response> {
        if let Some(token) = &self.token {
            rb = rb.bearer_auth(token);
        }
        let resp = rb.send().await.map_err(|e| self.unreachable(&e))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        // A broken error body still yields a useful message from the status.
        let body = resp.bytes().await.unwrap_or_default();
        let mut message = api_message(status, &body);
        if status == reqwest::StatusCode::UNAUTHORIZED {
            message = format!(
                "not authenticated (HTTP 401): {message}; set BURST_TOKEN or --token-file \
                 to an API token"
            );
        } else if status == reqwest::StatusCode::FORBIDDEN {
            message = format!("permission denied (HTTP 403): {message}");
        }
        Err(ClientError::Api {
            status: status.as_u16(),
            message,
        })
    }

    fn unreachable(&self, e: &reqwest::Error) -> ClientError {
        if let Some(tls) = certificate_error(e) {
            return ClientError::Untrusted {
                url: self.base.clone(),
                cause: tls,
            };
        }
        ClientError::Unreachable {
            url: self.base.clone(),
            cause: root_cause(e),
        }
    }
}

/// The `error` text of an `ApiError` body, else the body or the status.
fn api_message(status: reqwest::StatusCode, body: &[u8]) -> String {
    if let Ok(api) = serde_json::from_slice::<ApiError>(body) {
        return api.error;
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return format!("the master answered {status}");
    }
    let short: String = text.chars().take(MAX_ERROR_TEXT).collect();
    format!("the master answered {status}: {short}")
}

/// A refused certificate somewhere in the causes of `e`. An `io::Error`
/// hides the error it wraps from `source()`, so step into those by hand.
fn certificate_error(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(tls @ rustls::Error::InvalidCertificate(_)) =
            err.downcast_ref::<rustls::Error>()
        {
            return Some(tls.to_string());
        }
        cur = match err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => err.source(),
        };
    }
    None
}

/// reqwest's own message names the URL again; the innermost cause ("Connection
/// refused") is what the user needs.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_message_prefers_the_error_field() {
        let s = reqwest::StatusCode::UNPROCESSABLE_ENTITY;
        assert_eq!(
            api_message(s, br#"{"error":"unknown builder \"x\""}"#),
            "unknown builder \"x\""
        );
        assert_eq!(
            api_message(s, b""),
            "the master answered 422 Unprocessable Entity"
        );
        assert!(api_message(s, b"oops").ends_with(": oops"));
    }

    #[test]
    fn urls_are_checked() {
        assert!(Client::new("http://127.0.0.1:8480/").is_ok());
        assert!(matches!(
            Client::new("not a url"),
            Err(ClientError::InvalidUrl { .. })
        ));
        assert!(matches!(
            Client::new("ftp://x"),
            Err(ClientError::InvalidUrl { .. })
        ));
        assert!(Client::new("https://127.0.0.1:8480/").is_ok());
        let missing = std::path::Path::new("/nonexistent/ca.pem");
        assert!(matches!(
            Client::with_ca("https://127.0.0.1:8480/", Some(missing)),
            Err(ClientError::CaFile { .. })
        ));
        let c = Client::new("http://h:1/").map(|c| c.url("/api/v1/builds"));
        assert_eq!(c.ok().as_deref(), Some("http://h:1/api/v1/builds"));
    }
}
