//! A fault-injecting HTTP proxy. In front of moto it refuses spot launches
//! with InsufficientInstanceCapacity and throttles RunInstances for a while,
//! the way EC2 does, so the provider's fallback and retries run for real. In
//! front of the master's API it loses answers, so client retries do.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Largest request or response relayed; EC2 calls here are small.
const MAX_MESSAGE: usize = 8 * 1024 * 1024;
const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// What the proxy does to requests, changed by the test as it goes.
#[derive(Default)]
pub struct Faults {
    /// Refuse RunInstances with InstanceMarketOptions (spot).
    pub refuse_spot: AtomicBool,
    /// Answer this many more RunInstances with RequestLimitExceeded.
    pub throttle_run_instances: AtomicUsize,
    /// Answer every RunInstances with this permanent error code (HTTP 400).
    pub permanent_error: std::sync::Mutex<Option<String>>,
    /// Forward this many more requests, then close the connection instead
    /// of relaying the answer (the request took effect; the client never
    /// hears of it).
    pub drop_answers: AtomicUsize,
    /// Counters, for asserts.
    pub forwarded: AtomicUsize,
    pub answers_dropped: AtomicUsize,
    pub spot_refused: AtomicUsize,
    pub throttled: AtomicUsize,
    pub run_instances_forwarded: AtomicUsize,
}

pub struct FaultProxy {
    pub url: String,
    pub faults: Arc<Faults>,
    task: JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FaultProxy {
    /// Listens on 127.0.0.1 and forwards to `upstream` (http://host:port).
    pub async fn start(upstream: &str) -> Result<FaultProxy> {
        let upstream = upstream
            .strip_prefix("http://")
            .context("upstream must be http://")?
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let faults = Arc::new(Faults::default());
        let shared = faults.clone();
        let task = tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let (faults, upstream) = (shared.clone(), upstream.clone());
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(IO_TIMEOUT, serve(conn, &upstream, &faults)).await;
                });
            }
        });
        Ok(FaultProxy { url, faults, task })
    }
}

/// One request per connection (answers say `Connection: close`).
async fn serve(mut conn: TcpStream, upstream: &str, faults: &Faults) -> Result<()> {
    let (head, body) = read_request(&mut conn).await?;
    let form = String::from_utf8_lossy(&body);
    let run_instances = form.split('&').any(|kv| kv == "Action=RunInstances");
    if run_instances {
        let spot = form.contains("InstanceMarketOptions.MarketType=spot");
        let permanent = faults.permanent_error.lock().ok().and_then(|c| c.clone());
        if let Some(code) = permanent {
            return reply_error(&mut conn, 400, &code, "Injected by the fault proxy.").await;
        }
        if faults
            .throttle_run_instances
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            faults.throttled.fetch_add(1, Ordering::SeqCst);
            return reply_error(
                &mut conn,
                503,
                "RequestLimitExceeded",
                "Request limit exceeded.",
            )
            .await;
        }
        if spot && faults.refuse_spot.load(Ordering::SeqCst) {
            faults.spot_refused.fetch_add(1, Ordering::SeqCst);
            return reply_error(
                &mut conn,
                500,
                "InsufficientInstanceCapacity",
                "There is no Spot capacity available that matches your request.",
            )
            .await;
        }
        faults
            .run_instances_forwarded
            .fetch_add(1, Ordering::SeqCst);
    }
    let mut up = TcpStream::connect(upstream)
        .await
        .context("connect to the upstream")?;
    up.write_all(&rewrite_head(&head)).await?;
    up.write_all(&body).await?;
    let mut answer = Vec::new();
    (&mut up)
        .take(MAX_MESSAGE as u64)
        .read_to_end(&mut answer)
        .await?;
    faults.forwarded.fetch_add(1, Ordering::SeqCst);
    let drop_answer = faults
        .drop_answers
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if drop_answer {
        faults.answers_dropped.fetch_add(1, Ordering::SeqCst);
        // Dropping `conn` closes it with no answer at all.
        return Ok(());
    }
    conn.write_all(&answer).await?;
    conn.shutdown().await?;
    Ok(())
}

/// The request head with `Connection: close`, so moto ends its answer with EOF.
fn rewrite_head(head: &str) -> Vec<u8> {
    let mut out = String::new();
    for line in head.split("\r\n").filter(|l| !l.is_empty()) {
        let lower = line.to_ascii_lowercase();
        if lower.starts_with("connection:") || lower.starts_with("keep-alive:") {
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str("Connection: close\r\n\r\n");
    out.into_bytes()
}

async fn read_request(conn: &mut TcpStream) -> Result<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i;
        }
        let n = conn.read(&mut chunk).await?;
        if n == 0 {
            bail!("client closed before the request head ended");
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > MAX_MESSAGE {
            bail!("request head too large");
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let length: usize = head
        .split("\r\n")
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0);
    if length > MAX_MESSAGE {
        bail!("request body too large");
    }
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        let n = conn.read(&mut chunk).await?;
        if n == 0 {
            bail!("client closed mid-body");
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(length);
    Ok((head, body))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// An EC2 (query protocol) error answer.
async fn reply_error(conn: &mut TcpStream, status: u16, code: &str, message: &str) -> Result<()> {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{code}</Code>\
         <Message>{message}</Message></Error></Errors><RequestID>fault-proxy</RequestID></Response>"
    );
    let reason = match status {
        400 => "Bad Request",
        503 => "Service Unavailable",
        _ => "Internal Server Error",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/xml;charset=UTF-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).await?;
    conn.write_all(body.as_bytes()).await?;
    conn.shutdown().await?;
    Ok(())
}
