//! A fake instance metadata service (IMDSv2) on loopback: token PUT, then
//! `spot/instance-action`, which answers 404 until the test arms a notice.
//! An armed notice goes to the first worker that asks, once.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use anyhow::Result;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

const TOKEN: &str = "fake-imds-token";

#[derive(Default)]
pub struct ImdsState {
    armed: AtomicBool,
    pub token_requests: AtomicUsize,
    pub polls: AtomicUsize,
    pub notices_served: AtomicUsize,
}

pub struct FakeImds {
    pub url: String,
    pub state: Arc<ImdsState>,
    task: JoinHandle<()>,
}

impl Drop for FakeImds {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeImds {
    pub async fn start() -> Result<FakeImds> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let state = Arc::new(ImdsState::default());
        let shared = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let state = shared.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 8192];
                    let n = match conn.read(&mut buf).await {
                        Ok(n) => n,
                        Err(_) => return,
                    };
                    let req = String::from_utf8_lossy(&buf[..n]).into_owned();
                    let reply = answer(&state, &req);
                    let _ = conn.write_all(reply.as_bytes()).await;
                    let _ = conn.shutdown().await;
                });
            }
        });
        Ok(FakeImds { url, state, task })
    }

    /// The next `spot/instance-action` poll gets a termination notice.
    pub fn arm_notice(&self) {
        self.state.armed.store(true, Ordering::SeqCst);
    }
}

fn answer(state: &ImdsState, req: &str) -> String {
    let has_header = |name: &str, value: Option<&str>| {
        req.split("\r\n").any(|l| {
            l.split_once(':').is_some_and(|(k, v)| {
                k.eq_ignore_ascii_case(name) && value.is_none_or(|want| v.trim() == want)
            })
        })
    };
    if req.starts_with("PUT /latest/api/token ") {
        state.token_requests.fetch_add(1, Ordering::SeqCst);
        // IMDSv2 insists on a TTL header.
        if !has_header("X-aws-ec2-metadata-token-ttl-seconds", None) {
            return respond(400, "");
        }
        return respond(200, TOKEN);
    }
    if req.starts_with("GET /latest/meta-data/spot/instance-action ") {
        if !has_header("X-aws-ec2-metadata-token", Some(TOKEN)) {
            return respond(401, "");
        }
        state.polls.fetch_add(1, Ordering::SeqCst);
        if state.armed.swap(false, Ordering::SeqCst) {
            state.notices_served.fetch_add(1, Ordering::SeqCst);
            return respond(
                200,
                r#"{"action": "terminate", "time": "2030-01-01T00:02:00Z"}"#,
            );
        }
        return respond(404, "");
    }
    respond(404, "")
}

fn respond(status: u16, body: &str) -> String {
    format!(
        "HTTP/1.1 {status} X\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}
