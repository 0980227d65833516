//! Spot interruption watch: polls the instance metadata service (IMDSv2)
//! for `spot/instance-action` and hands the notice to the session, which
//! tells the master so the build is retried elsewhere before the instance
//! dies. Only runs when a metadata URL is configured (EC2 user-data sets
//! it); a tiny HTTP/1.1 client keeps the worker free of an HTTP stack.

use std::future::pending;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

/// One metadata request, connect to last byte.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// Metadata answers are tiny; anything bigger is not the metadata service.
const MAX_RESPONSE: usize = 64 * 1024;
/// IMDSv2 session token lifetime asked for; renewed well before it ends.
const TOKEN_TTL_SECS: u64 = 21_600;
const TOKEN_RENEW: Duration = Duration::from_secs(TOKEN_TTL_SECS / 2);

/// The interruption notice, once there is one.
pub struct Notices {
    rx: Option<watch::Receiver<Option<String>>>,
}

impl Notices {
    /// No watch: `wait` never resolves.
    pub fn disabled() -> Self {
        Self { rx: None }
    }

    /// Starts polling `base_url` (e.g. `http://169.254.169.254`) every `every`.
    pub fn spawn(base_url: &str, every: Duration) -> Result<Self> {
        let imds = Imds::parse(base_url)?;
        let (tx, rx) = watch::channel(None);
        tokio::spawn(async move { watch_loop(imds, every, tx).await });
        Ok(Self { rx: Some(rx) })
    }

    /// Resolves with the notice's detail as soon as there is one (at once if
    /// it came earlier); never resolves without a watch.
    pub async fn wait(&mut self) -> String {
        let Some(rx) = self.rx.as_mut() else {
            return pending().await;
        };
        loop {
            if let Some(detail) = rx.borrow_and_update().clone() {
                return detail;
            }
            if rx.changed().await.is_err() {
                return pending().await;
            }
        }
    }
}

async fn watch_loop(imds: Imds, every: Duration, tx: watch::Sender<Option<String>>) {
    let mut token: Option<(String, tokio::time::Instant)> = None;
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        match imds.instance_action(&mut token).await {
            Ok(Some(action)) => {
                tracing::warn!(%action, "spot interruption notice from the metadata service");
                let _ = tx.send(Some(format!("spot instance-action: {action}")));
                // One notice is all the master needs.
                return;
            }
            Ok(None) => {}
            Err(e) => tracing::debug!("failed to poll the metadata service: {e:#}"),
        }
    }
}

/// The metadata service at `http://host[:port][/prefix]`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Imds {
    host: String,
    port: u16,
    prefix: String,
}

impl Imds {
    fn parse(url: &str) -> Result<Self> {
        let Some(rest) = url.strip_prefix("http://") else {
            bail!("failed to use metadata url {url:?}: only http:// is supported");
        };
        let (authority, prefix) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        // IPv6 literals come bracketed: http://[fd00:ec2::254]:80
        let (host, port) = match authority.strip_prefix('[') {
            Some(v6) => {
                let (host, after) = v6
                    .split_once(']')
                    .with_context(|| format!("failed to parse the host of {url:?}"))?;
                (host, after.strip_prefix(':'))
            }
            None => match authority.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            },
        };
        let port = match port {
            Some(p) => p
                .parse()
                .with_context(|| format!("failed to parse the port of {url:?}"))?,
            None => 80,
        };
        if host.is_empty() {
            bail!("failed to use metadata url {url:?}: no host");
        }
        Ok(Self {
            host: host.to_owned(),
            port,
            prefix: prefix.to_owned(),
        })
    }

    /// The pending `spot/instance-action` document, if any.
    async fn instance_action(
        &self,
        token: &mut Option<(String, tokio::time::Instant)>,
    ) -> Result<Option<String>> {
        let fresh = token.as_ref().filter(|(_, at)| at.elapsed() < TOKEN_RENEW);
        let value = match fresh {
            Some((value, _)) => value.clone(),
            None => {
                let ttl = TOKEN_TTL_SECS.to_string();
                let (status, body) = self
                    .request(
                        "PUT",
                        "/latest/api/token",
                        &[("X-aws-ec2-metadata-token-ttl-seconds", &ttl)],
                    )
                    .await?;
                if status != 200 {
                    bail!("failed to get a metadata token: HTTP {status}");
                }
                let value = body.trim().to_owned();
                *token = Some((value.clone(), tokio::time::Instant::now()));
                value
            }
        };
        let (status, body) = self
            .request(
                "GET",
                "/latest/meta-data/spot/instance-action",
                &[("X-aws-ec2-metadata-token", &value)],
            )
            .await?;
        match status {
            200 => Ok(Some(body.trim().to_owned())),
            404 => Ok(None),
            // The token expired or was revoked: get a new one next time.
            401 => {
                *token = None;
                Ok(None)
            }
            other => bail!("failed to read spot/instance-action: HTTP {other}"),
        }
    }

    /// One HTTP/1.1 request with `Connection: close`; returns status and body.
    async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<(u16, String)> {
        let exchange = async {
            let mut stream = TcpStream::connect((self.host.as_str(), self.port))
                .await
                .context("failed to connect to the metadata service")?;
            let mut head = format!(
                "{method} {}{path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: 0\r\n",
                self.prefix, self.host
            );
            for (name, value) in headers {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
            head.push_str("\r\n");
            stream.write_all(head.as_bytes()).await?;
            let mut raw = Vec::new();
            (&mut stream)
                .take(MAX_RESPONSE as u64 + 1)
                .read_to_end(&mut raw)
                .await?;
            if raw.len() > MAX_RESPONSE {
                bail!("failed to read the metadata response: over {MAX_RESPONSE} bytes");
            }
            parse_response(&raw)
        };
        tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .context("failed to reach the metadata service: timed out")?
    }
}

/// Status and body of a whole HTTP/1.1 response (plain or chunked body).
fn parse_response(raw: &[u8]) -> Result<(u16, String)> {
    let text = String::from_utf8_lossy(raw);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        bail!("failed to parse the metadata response: no header end");
    };
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse::<u16>().ok())
        .context("failed to parse the metadata response status")?;
    let chunked = lines.any(|l| {
        l.split_once(':').is_some_and(|(n, v)| {
            n.trim().eq_ignore_ascii_case("transfer-encoding")
                && v.trim().eq_ignore_ascii_case("chunked")
        })
    });
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_owned()
    };
    Ok((status, body))
}

fn dechunk(mut body: &str) -> Result<String> {
    let mut out = String::new();
    loop {
        let (size, rest) = body
            .split_once("\r\n")
            .context("failed to parse a chunked metadata response")?;
        let size = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)
            .context("failed to parse a chunk size")?;
        if size == 0 {
            return Ok(out);
        }
        let chunk = rest
            .get(..size)
            .context("failed to parse a chunked metadata response: short chunk")?;
        out.push_str(chunk);
        body = rest.get(size..).unwrap_or("").trim_start_matches("\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use tokio::net::TcpListener;

    #[test]
    fn parses_urls() {
        assert_eq!(
            Imds::parse("http://169.254.169.254").expect("parse"),
            Imds {
                host: "169.254.169.254".into(),
                port: 80,
                prefix: String::new()
            }
        );
        assert_eq!(
            Imds::parse("http://127.0.0.1:8080/fake/").expect("parse"),
            Imds {
                host: "127.0.0.1".into(),
                port: 8080,
                prefix: "/fake".into()
            }
        );
        assert_eq!(
            Imds::parse("http://[fd00:ec2::254]").expect("parse").host,
            "fd00:ec2::254"
        );
        assert!(Imds::parse("https://x").is_err());
        assert!(Imds::parse("http://:80").is_err());
    }

    #[test]
    fn parses_plain_and_chunked_responses() {
        let (s, b) =
            parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi").expect("plain");
        assert_eq!((s, b.as_str()), (200, "hi"));
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        let (s, b) = parse_response(raw).expect("chunked");
        assert_eq!((s, b.as_str()), (200, "abcde"));
        assert!(parse_response(b"garbage").is_err());
    }

    /// A fake IMDSv2: 404 until `notice_after` GETs, then the notice; checks
    /// the token on every GET.
    async fn fake_imds(notice_after: usize) -> (String, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let gets = Arc::new(AtomicUsize::new(0));
        let counter = gets.clone();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let mut buf = vec![0u8; 4096];
                let n = conn.read(&mut buf).await.unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]).to_string();
                let reply = if req.starts_with("PUT /latest/api/token ")
                    && req.contains("X-aws-ec2-metadata-token-ttl-seconds: 21600")
                {
                    "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\ntok-1".to_owned()
                } else if req.starts_with("GET /latest/meta-data/spot/instance-action ") {
                    if !req.contains("X-aws-ec2-metadata-token: tok-1\r\n") {
                        "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n".to_owned()
                    } else if counter.fetch_add(1, Ordering::SeqCst) + 1 >= notice_after {
                        let body = r#"{"action": "terminate", "time": "2030-01-01T00:00:00Z"}"#;
                        format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                            body.len()
                        )
                    } else {
                        "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_owned()
                    }
                } else {
                    "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n".to_owned()
                };
                let _ = conn.write_all(reply.as_bytes()).await;
            }
        });
        (url, gets)
    }

    #[tokio::test]
    async fn notice_arrives_after_polls() {
        let (url, gets) = fake_imds(3).await;
        let mut notices = Notices::spawn(&url, Duration::from_millis(20)).expect("spawn");
        let detail = tokio::time::timeout(Duration::from_secs(10), notices.wait())
            .await
            .expect("notice in time");
        assert!(
            detail.starts_with("spot instance-action: {\"action\": \"terminate\""),
            "{detail}"
        );
        assert_eq!(gets.load(Ordering::SeqCst), 3);
        // Asking again answers at once with the same notice.
        let again = tokio::time::timeout(Duration::from_secs(1), notices.wait())
            .await
            .expect("again");
        assert_eq!(again, detail);
    }

    #[tokio::test]
    async fn disabled_never_resolves() {
        let mut notices = Notices::disabled();
        let waited = tokio::time::timeout(Duration::from_millis(50), notices.wait()).await;
        assert!(waited.is_err());
    }
}
