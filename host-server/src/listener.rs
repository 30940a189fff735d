//! The HTTP/1.1 listener, plain or over TLS (rustls): hyper's connection builder with a
//! header-read timeout that also bounds the TLS handshake, tower-http's request and body-read
//! timeouts, an idle timeout on every connection, a cap on open connections (TLS ones
//! included), and a deadline on graceful shutdown.

use licet_engine::report::Report as _;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::time::{Instant, Sleep};
use tokio_rustls::TlsAcceptor;
use tower::{ServiceBuilder, ServiceExt as _};
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutLayer};

/// The listener's timeouts and limits (`http:` in the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    /// Seconds a connection has to send a whole request line and headers, counted from when it
    /// opens or finishes its previous request (so it also closes idle keep-alive connections).
    pub header_read_timeout_seconds: u64,
    /// Seconds the request body may go without sending data.
    pub body_read_timeout_seconds: u64,
    /// Seconds a request may take from its headers to its answer (`408` after that).
    pub request_timeout_seconds: u64,
    /// Seconds a connection may go without reading or writing anything before it is closed.
    pub idle_timeout_seconds: u64,
    /// The most connections open at once; further connections wait in the listen queue until
    /// one closes.
    pub max_connections: usize,
    /// Seconds open connections get to finish after Ctrl-C or SIGTERM before they are cut.
    pub shutdown_timeout_seconds: u64,
    /// Serve plain HTTP on an address other than loopback, without `tls` (behind a proxy that
    /// terminates TLS).
    pub allow_plain: bool,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            header_read_timeout_seconds: 10,
            body_read_timeout_seconds: 30,
            request_timeout_seconds: 30,
            idle_timeout_seconds: 60,
            max_connections: 1024,
            shutdown_timeout_seconds: 10,
            allow_plain: false,
        }
    }
}

impl HttpSettings {
    /// Checks that every timeout is 1 s to 1 h and the connection cap 1 to 1,000,000.
    pub fn check(&self) -> Result<(), String> {
        for (name, seconds) in [
            (
                "header_read_timeout_seconds",
                self.header_read_timeout_seconds,
            ),
            ("body_read_timeout_seconds", self.body_read_timeout_seconds),
            ("request_timeout_seconds", self.request_timeout_seconds),
            ("idle_timeout_seconds", self.idle_timeout_seconds),
            ("shutdown_timeout_seconds", self.shutdown_timeout_seconds),
        ] {
            if !(1..=3600).contains(&seconds) {
                return Err(format!("http.{name} must be between 1 and 3600"));
            }
        }
        if !(1..=1_000_000).contains(&self.max_connections) {
            return Err("http.max_connections must be between 1 and 1000000".to_owned());
        }
        Ok(())
    }
}

/// Marks a request that came over TLS on this listener (request extension), so pages set
/// their cookies `Secure`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArrivedOverTls;

/// Serves `app` on `listener` with `settings` until `shutdown` completes, then gives open
/// connections `shutdown_timeout_seconds` to finish and cuts the rest. With `tls`, every
/// connection is HTTPS: its TLS handshake and its first request's headers share one deadline,
/// `header_read_timeout_seconds` from when it was accepted, and a handshake still under way when
/// the server stops is cut at once.
pub async fn serve_http(
    listener: TcpListener,
    app: Router,
    settings: HttpSettings,
    tls: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let seconds = Duration::from_secs;
    let service = ServiceBuilder::new()
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            seconds(settings.request_timeout_seconds),
        ))
        .layer(RequestBodyTimeoutLayer::new(seconds(
            settings.body_read_timeout_seconds,
        )))
        .service(app);
    let header_read = seconds(settings.header_read_timeout_seconds);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_read);
    let idle = seconds(settings.idle_timeout_seconds);
    let permits = Arc::new(Semaphore::new(settings.max_connections));
    let graceful = GracefulShutdown::new();
    let (stop, stopping) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => permit.map_err(io::Error::other)?,
            () = &mut shutdown => break,
        };
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!("accepting a connection failed: {error}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let header_deadline = Instant::now() + header_read;
        let service = service.clone();
        let first_request = Arc::new(AtomicBool::new(false));
        let over_tls = tls.is_some();
        let handler = {
            let first_request = first_request.clone();
            hyper::service::service_fn(move |mut request: Request<Incoming>| {
                first_request.store(true, Ordering::Relaxed);
                let extensions = request.extensions_mut();
                extensions.insert(ConnectInfo::<SocketAddr>(remote));
                if over_tls {
                    extensions.insert(ArrivedOverTls);
                }
                service.clone().oneshot(request)
            })
        };
        let stream = IdleTimeout::new(stream, idle);
        let Some(acceptor) = &tls else {
            let connection = builder.serve_connection(TokioIo::new(stream), handler);
            let watched = graceful.watch(connection);
            tokio::spawn(async move {
                if let Err(error) = watched.await {
                    tracing::debug!(%remote, "connection closed: {error}");
                }
                drop(permit);
            });
            continue;
        };
        let acceptor = acceptor.clone();
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let mut stopping = stopping.clone();
        tokio::spawn(async move {
            let handshake = tokio::select! {
                done = tokio::time::timeout_at(header_deadline, acceptor.accept(stream)) => done,
                _ = stopping.wait_for(|stopping| *stopping) => {
                    tracing::debug!(%remote, "TLS handshake cut: the server is stopping");
                    return;
                }
            };
            match handshake {
                Ok(Ok(stream)) => {
                    let connection = builder.serve_connection(TokioIo::new(stream), handler);
                    let watched = watcher.watch(connection);
                    let ended = first_headers_by(header_deadline, &first_request, watched).await;
                    if let Err(error) = ended {
                        tracing::debug!(%remote, "connection closed: {error}");
                    }
                }
                Ok(Err(error)) => tracing::debug!(%remote, "TLS handshake failed: {error}"),
                Err(_) => {
                    tracing::debug!(%remote, "no TLS handshake within the header-read timeout");
                }
            }
            drop(permit);
        });
    }
    drop(listener);
    stop.send_replace(true);
    let open = graceful.count();
    let deadline = seconds(settings.shutdown_timeout_seconds);
    if tokio::time::timeout(deadline, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            "{open} connections were open at shutdown; those not finished after {} s were cut",
            deadline.as_secs()
        );
    }
    Ok(())
}

/// Drives `connection` to its end, but cuts it at `deadline` unless a request's headers have
/// arrived by then (`first_request`): after a TLS handshake, hyper's own header-read timeout
/// starts anew, and this keeps the handshake and the first headers within one deadline.
async fn first_headers_by(
    deadline: Instant,
    first_request: &AtomicBool,
    connection: impl Future<Output = Result<(), hyper::Error>>,
) -> Result<(), String> {
    tokio::pin!(connection);
    tokio::select! {
        ended = &mut connection => ended.map_err(|error| error.report()),
        () = tokio::time::sleep_until(deadline) => {
            if first_request.load(Ordering::Relaxed) {
                connection.await.map_err(|error| error.report())
            } else {
                Err("no request headers within the header-read timeout".to_owned())
            }
        }
    }
}

/// A connection that fails with `TimedOut` once it has neither read nor written anything for
/// its idle timeout.
#[derive(Debug)]
struct IdleTimeout<T> {
    inner: T,
    timeout: Duration,
    sleep: Pin<Box<Sleep>>,
}

impl<T> IdleTimeout<T> {
    fn new(inner: T, timeout: Duration) -> Self {
        IdleTimeout {
            inner,
            timeout,
            sleep: Box::pin(tokio::time::sleep(timeout)),
        }
    }

    fn touch(&mut self) {
        let deadline = Instant::now() + self.timeout;
        self.sleep.as_mut().reset(deadline);
    }

    /// After the connection answered `Pending`: `TimedOut` when idle too long.
    fn idle<R>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<R>> {
        match self.sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the connection was idle too long",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn after<R>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<R>>,
    ) -> Poll<io::Result<R>> {
        match polled {
            Poll::Ready(result) => {
                self.touch();
                Poll::Ready(result)
            }
            Poll::Pending => self.idle(cx),
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for IdleTimeout<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        this.after(cx, polled)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for IdleTimeout<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.after(cx, polled)
    }

    // Flushing and shutting down move no data: they do not count as activity.
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_flush(cx) {
            Poll::Pending => this.idle(cx),
            ready => ready,
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_shutdown(cx) {
            Poll::Pending => this.idle(cx),
            ready => ready,
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.after(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
