//! The concurrent-connection limit, enforced where connections are accepted (before TLS): a connection
//! within the limit holds a permit for as long as its socket lives (an upgraded WebSocket included); one
//! over it is answered `503` with `Connection: close`. Past twice the limit, connections are dropped at once.

use std::future::{Ready, ready};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::Response;
use axum_server::accept::Accept;
use futures::future::Either;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::Service;

use super::{LimitKind, limit_error_response};
use crate::telemetry::metrics;

/// An `axum-server` acceptor that admits at most `max_connections` connections at a time.
#[derive(Debug, Clone)]
pub struct ConnectionLimitAcceptor {
    admitted: Arc<Semaphore>,
    refused: Arc<Semaphore>,
}

impl ConnectionLimitAcceptor {
    pub fn new(max_connections: usize) -> Self {
        let max_connections = max_connections.clamp(1, Semaphore::MAX_PERMITS);
        Self {
            admitted: Arc::new(Semaphore::new(max_connections)),
            refused: Arc::new(Semaphore::new(max_connections)),
        }
    }
}

impl<S> Accept<TcpStream, S> for ConnectionLimitAcceptor {
    type Stream = CountedStream<TcpStream>;
    type Service = AdmissionService<S>;
    type Future = Ready<io::Result<(Self::Stream, Self::Service)>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        // Responses are written in several small pieces (headers, SSE events); without TCP_NODELAY,
        // Nagle's algorithm and delayed ACKs add ~40 ms to each Streamable HTTP response.
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "could not set TCP_NODELAY");
        }
        if let Ok(permit) = self.admitted.clone().try_acquire_owned() {
            metrics::tcp_connections_changed(1.0);
            return ready(Ok((
                CountedStream::admitted(stream, permit),
                AdmissionService::admitted(service),
            )));
        }
        LimitKind::TooManyConnections.record();
        match self.refused.clone().try_acquire_owned() {
            Ok(permit) => {
                tracing::warn!("connection limit reached; answering 503");
                ready(Ok((
                    CountedStream::refused(stream, permit),
                    AdmissionService::refused(service),
                )))
            }
            Err(_) => ready(Err(io::Error::other(
                "connection limit reached twice over; connection dropped",
            ))),
        }
    }
}

/// A connection's stream, holding its permit until the socket closes.
#[derive(Debug)]
pub struct CountedStream<I> {
    inner: I,
    admitted: bool,
    _permit: OwnedSemaphorePermit,
}

impl<I> CountedStream<I> {
    fn admitted(inner: I, permit: OwnedSemaphorePermit) -> Self {
        Self {
            inner,
            admitted: true,
            _permit: permit,
        }
    }

    fn refused(inner: I, permit: OwnedSemaphorePermit) -> Self {
        Self {
            inner,
            admitted: false,
            _permit: permit,
        }
    }
}

impl<I> Drop for CountedStream<I> {
    fn drop(&mut self) {
        if self.admitted {
            metrics::tcp_connections_changed(-1.0);
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for CountedStream<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for CountedStream<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// The per-connection service: the application for an admitted connection, a `503` for a refused one.
#[derive(Debug, Clone)]
pub struct AdmissionService<S> {
    inner: S,
    admitted: bool,
}

impl<S> AdmissionService<S> {
    fn admitted(inner: S) -> Self {
        Self {
            inner,
            admitted: true,
        }
    }

    fn refused(inner: S) -> Self {
        Self {
            inner,
            admitted: false,
        }
    }
}

impl<S, B> Service<Request<B>> for AdmissionService<S>
where
    S: Service<Request<B>, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Either<S::Future, Ready<Result<Response, S::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        if self.admitted {
            self.inner.poll_ready(cx)
        } else {
            Poll::Ready(Ok(()))
        }
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        if self.admitted {
            Either::Left(self.inner.call(request))
        } else {
            Either::Right(ready(Ok(too_many_connections())))
        }
    }
}

fn too_many_connections() -> Response {
    let mut response = limit_error_response(
        StatusCode::SERVICE_UNAVAILABLE,
        LimitKind::TooManyConnections,
        "the server is at its connection limit (EHR_MCP_MAX_CONNECTIONS); retry shortly".to_owned(),
    );
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}
