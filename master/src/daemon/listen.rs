//! The accept loops of both endpoints: a cap on open connections each, a
//! deadline for the first bytes (with TLS: for the whole handshake, so a
//! silent client cannot hold a place), and a logged (rate-limited) back-off
//! when the process runs out of descriptors, instead of a spin or silence.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tonic::transport::server::{Connected, TcpConnectInfo};

/// How long a new connection may stay silent (no request header, no HTTP/2
/// preface), and how long an HTTP keep-alive connection may idle.
pub const FIRST_BYTES_TIMEOUT: Duration = Duration::from_secs(10);
/// Back-off after a failed accept (e.g. EMFILE), so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// At most one line per this period for each kind of shed connection.
const LOG_EVERY: Duration = Duration::from_secs(10);
/// Descriptors kept free for the store, step logs and providers.
const RESERVED_FDS: u64 = 128;

/// Raises the soft RLIMIT_NOFILE to the hard limit; returns the soft limit
/// now in force.
pub fn raise_nofile_limit() -> u64 {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => {
                tracing::info!(from = soft, to = hard, "raised the open-file limit");
                hard
            }
            Err(e) => {
                tracing::warn!(soft, hard, error = %e, "failed to raise the open-file limit");
                soft
            }
        },
        Ok((soft, _)) => soft,
        Err(e) => {
            tracing::warn!(error = %e, "failed to read the open-file limit");
            1024
        }
    }
}

/// Connections each endpoint may hold: the configured cap, lowered so both
/// endpoints together leave descriptors for everything else.
pub fn connection_cap(configured: usize, nofile: u64) -> usize {
    let fit = usize::try_from(nofile.saturating_sub(RESERVED_FDS) / 2).unwrap_or(usize::MAX);
    let cap = configured.min(fit).max(8);
    if cap < configured {
        tracing::warn!(
            configured,
            cap,
            nofile,
            "max_connections lowered to fit the open-file limit"
        );
    }
    cap
}

/// One line per period, saying how many events it stands for.
struct RateLog {
    what: &'static str,
    endpoint: &'static str,
    count: AtomicU64,
    last: std::sync::Mutex<Option<Instant>>,
}

impl RateLog {
    fn new(endpoint: &'static str, what: &'static str) -> Self {
        Self {
            what,
            endpoint,
            count: AtomicU64::new(0),
            last: std::sync::Mutex::new(None),
        }
    }

    fn hit(&self, detail: &dyn std::fmt::Display) {
        let count = self.count.fetch_add(1, Ordering::Relaxed) + 1;
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_none_or(|t| t.elapsed() >= LOG_EVERY) {
            *last = Some(Instant::now());
            self.count.store(0, Ordering::Relaxed);
            tracing::warn!(endpoint = self.endpoint, count, %detail, "{}", self.what);
        }
    }
}

/// Accepts connections, holding a permit for each; sheds those past the cap.
struct Acceptor {
    listener: TcpListener,
    permits: Arc<Semaphore>,
    failed: RateLog,
    shed: RateLog,
}

impl Acceptor {
    fn new(listener: TcpListener, cap: usize, endpoint: &'static str) -> Self {
        Self {
            listener,
            permits: Arc::new(Semaphore::new(cap)),
            failed: RateLog::new(endpoint, "failed to accept connections; backing off"),
            shed: RateLog::new(endpoint, "connection limit reached; closed new connections"),
        }
    }

    async fn next(&self) -> (TcpStream, OwnedSemaphorePermit) {
        loop {
            match self.listener.accept().await {
                Ok((stream, peer)) => match self.permits.clone().try_acquire_owned() {
                    Ok(permit) => return (stream, permit),
                    // Closing at once keeps the backlog moving, so a
                    // health check behind a flood is reached quickly.
                    Err(_) => self.shed.hit(&peer),
                },
                Err(e) => {
                    // EMFILE/ENFILE: descriptors free up as connections
                    // close; meanwhile wait instead of spinning.
                    self.failed.hit(&e);
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            }
        }
    }
}

/// A connection in clear text, or TLS over it.
pub enum Conn {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// The TLS handshake (when `tls` is set) within [`FIRST_BYTES_TIMEOUT`];
/// `None` when it failed or timed out, which `failed` logs.
async fn secure(stream: TcpStream, tls: Option<&TlsAcceptor>, failed: &RateLog) -> Option<Conn> {
    let Some(tls) = tls else {
        return Some(Conn::Plain(stream));
    };
    let peer = stream.peer_addr().ok();
    match tokio::time::timeout(FIRST_BYTES_TIMEOUT, tls.accept(stream)).await {
        Ok(Ok(stream)) => Some(Conn::Tls(Box::new(stream))),
        // A clear-text client (an `http://` worker or curl) lands here.
        Ok(Err(e)) => {
            let peer = peer.map_or_else(|| "?".to_owned(), |p| p.to_string());
            failed.hit(&format!("{peer}: {e}"));
            None
        }
        Err(_) => {
            tracing::debug!(
                ?peer,
                "closed a connection that did not finish the TLS handshake"
            );
            None
        }
    }
}

/// Serves the HTTP API: HTTP/1 with a header read timeout that also bounds
/// keep-alive idling, at most `cap` connections, TLS when `tls` is set.
pub async fn serve_http(
    listener: TcpListener,
    app: axum::Router,
    cap: usize,
    tls: Option<TlsAcceptor>,
    mut stop: watch::Receiver<bool>,
) {
    let acceptor = Acceptor::new(listener, cap, "http");
    let handshake = Arc::new(RateLog::new("http", "TLS handshake failed"));
    loop {
        let (stream, permit) = tokio::select! {
            next = acceptor.next() => next,
            () = async { let _ = stop.wait_for(|s| *s).await; } => return,
        };
        // The peer address is logged with every refused request (api/guard.rs).
        let peer = stream.peer_addr().ok();
        let app = match peer {
            Some(peer) => app
                .clone()
                .layer(axum::Extension(axum::extract::ConnectInfo(peer))),
            None => app.clone(),
        };
        let service = TowerToHyperService::new(app);
        let mut stop = stop.clone();
        let (tls, handshake) = (tls.clone(), handshake.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let Some(stream) = secure(stream, tls.as_ref(), &handshake).await else {
                return;
            };
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(FIRST_BYTES_TIMEOUT)
                .max_headers(100);
            let conn = builder
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            tokio::pin!(conn);
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(error = %e, "http connection ended");
                    }
                }
                () = async { let _ = stop.wait_for(|s| *s).await; } => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
}

/// Connections for the gRPC server: at most `cap` open, and only those that
/// send something (the HTTP/2 preface; with `tls`, a whole handshake) within
/// [`FIRST_BYTES_TIMEOUT`].
pub fn grpc_incoming(
    listener: TcpListener,
    cap: usize,
    tls: Option<TlsAcceptor>,
) -> tokio_stream::wrappers::ReceiverStream<io::Result<Held>> {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        let acceptor = Acceptor::new(listener, cap, "grpc");
        let handshake = Arc::new(RateLog::new("grpc", "TLS handshake failed"));
        loop {
            let (stream, permit) = tokio::select! {
                next = acceptor.next() => next,
                _ = tx.closed() => return,
            };
            let tx = tx.clone();
            let (tls, handshake) = (tls.clone(), handshake.clone());
            tokio::spawn(async move {
                if tls.is_none() {
                    let mut byte = [0u8; 1];
                    let peeked =
                        tokio::time::timeout(FIRST_BYTES_TIMEOUT, stream.peek(&mut byte)).await;
                    if !matches!(peeked, Ok(Ok(n)) if n > 0) {
                        // Silent, closed or failed: dropped, freeing the permit.
                        tracing::debug!("closed a worker connection that sent nothing");
                        return;
                    }
                }
                if let Some(stream) = secure(stream, tls.as_ref(), &handshake).await {
                    let held = Held {
                        stream,
                        _permit: permit,
                    };
                    let _ = tx.send(Ok(held)).await;
                }
            });
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

/// A connection and its place under the cap, released when tonic drops it.
pub struct Held {
    stream: Conn,
    _permit: OwnedSemaphorePermit,
}

impl Connected for Held {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        match &self.stream {
            Conn::Plain(s) => s.connect_info(),
            Conn::Tls(s) => s.get_ref().0.connect_info(),
        }
    }
}

impl AsyncRead for Held {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Held {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Conn::Tls(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Conn::Plain(s) => s.is_write_vectored(),
            Conn::Tls(s) => s.is_write_vectored(),
        }
    }
}
