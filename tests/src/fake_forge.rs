//! A fake GitHub / GitLab API on loopback that records every request
//! (method, path, headers, JSON body) and answers from a script: the next
//! scripted answers first (502, a 403 rate limit…), then 201.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::Value;

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

impl Call {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A scripted answer: status and headers.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
}

impl Answer {
    pub fn status(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
        }
    }

    /// GitHub's secondary rate limit: 403 with no requests left, retry
    /// after `secs`.
    pub fn rate_limited(secs: u64) -> Self {
        Self {
            status: 403,
            headers: vec![
                ("x-ratelimit-remaining", "0".into()),
                ("retry-after", secs.to_string()),
            ],
        }
    }
}

#[derive(Default)]
struct Inner {
    calls: Vec<Call>,
    script: VecDeque<Answer>,
    /// Answered when the script is empty; `None`: 201.
    otherwise: Option<Answer>,
    /// How long each answer is held back (a slow server).
    hold: std::time::Duration,
}

#[derive(Clone, Default)]
pub struct FakeForge {
    inner: Arc<Mutex<Inner>>,
    addr: Option<SocketAddr>,
}

impl FakeForge {
    /// Listens on `127.0.0.1:0`.
    pub async fn start() -> anyhow::Result<FakeForge> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let forge = FakeForge {
            inner: Arc::default(),
            addr: Some(addr),
        };
        let app = Router::new().fallback(record).with_state(forge.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(forge)
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        match self.addr {
            Some(a) => format!("http://{a}"),
            None => String::new(),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        f(&mut self.inner.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Answers the next requests with these, in order.
    pub fn script(&self, answers: impl IntoIterator<Item = Answer>) {
        self.with(|i| i.script.extend(answers));
    }

    /// What to answer once the script is used up (`None`: 201).
    pub fn otherwise(&self, answer: Option<Answer>) {
        self.with(|i| i.otherwise = answer);
    }

    /// Holds every answer back this long (so a test can look at the
    /// client while it waits).
    pub fn hold(&self, d: std::time::Duration) {
        self.with(|i| i.hold = d);
    }

    pub fn calls(&self) -> Vec<Call> {
        self.with(|i| i.calls.clone())
    }
}

async fn record(
    State(forge): State<FakeForge>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let call = Call {
        method: method.to_string(),
        path: uri.path().to_owned(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
            .collect(),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    };
    let (answer, hold) = forge.with(|i| {
        i.calls.push(call);
        (i.script.pop_front().or_else(|| i.otherwise.clone()), i.hold)
    });
    tokio::time::sleep(hold).await;
    let answer = answer.unwrap_or(Answer::status(201));
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = (status, "{}").into_response();
    for (k, v) in answer.headers {
        if let Ok(v) = v.parse() {
            resp.headers_mut().insert(k, v);
        }
    }
    resp
}
