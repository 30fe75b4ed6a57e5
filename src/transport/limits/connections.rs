//! The concurrent-connection limits, enforced where connections are accepted (before TLS): a connection
//! within the limits holds a permit for as long as its socket lives (an upgraded WebSocket included).
//!
//! - Per address: at most `max_connections_per_address` from one IP; more are answered `503`.
//! - In total: at most `max_connections`. Past it, up to [`RESERVED_CONNECTIONS`] more are admitted for the
//!   essential paths only ([`ESSENTIAL_PATHS`]: health, readiness, metrics, the token endpoint), so a flood
//!   of idle sockets cannot take those away; anything else on them gets `503` with `Connection: close`.
//! - Past that, up to `max_connections` more get the `503`; beyond, connections are dropped at once.
//!
//! The header read deadline (`EHR_MCP_HEADER_READ_TIMEOUT_SECONDS`, set on the HTTP builder in `app`) frees
//! slowloris sockets quickly.

use std::future::{Ready, ready};
use std::io;
use std::net::IpAddr;
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

/// Connections admitted past the total limit for [`ESSENTIAL_PATHS`] only.
pub const RESERVED_CONNECTIONS: usize = 32;

/// The paths a reserved connection may use.
pub const ESSENTIAL_PATHS: &[&str] = &["/healthz", "/readyz", "/metrics", "/oauth/token"];

/// An `axum-server` acceptor that admits at most `max_connections` connections at a time, and at most
/// `max_per_address` from one address.
#[derive(Debug, Clone)]
pub struct ConnectionLimitAcceptor {
    admitted: Arc<Semaphore>,
    reserved: Arc<Semaphore>,
    refused: Arc<Semaphore>,
    per_address: Arc<AddressCounts>,
}

impl ConnectionLimitAcceptor {
    pub fn new(max_connections: usize, max_per_address: usize) -> Self {
        let max_connections = max_connections.clamp(1, Semaphore::MAX_PERMITS);
        Self {
            admitted: Arc::new(Semaphore::new(max_connections)),
            reserved: Arc::new(Semaphore::new(RESERVED_CONNECTIONS)),
            refused: Arc::new(Semaphore::new(max_connections)),
            per_address: Arc::new(AddressCounts {
                counts: dashmap::DashMap::new(),
                max: max_per_address.max(1),
            }),
        }
    }
}

/// Open connections per peer address.
#[derive(Debug)]
struct AddressCounts {
    counts: dashmap::DashMap<IpAddr, usize>,
    max: usize,
}

impl AddressCounts {
    /// Counts one more connection from `address`, unless it already has the most allowed.
    fn admit(self: &Arc<Self>, address: IpAddr) -> Option<AddressPermit> {
        let mut count = self.counts.entry(address).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(AddressPermit {
            counts: self.clone(),
            address,
        })
    }
}

/// One connection's place in its address's count, given back on drop.
#[derive(Debug)]
struct AddressPermit {
    counts: Arc<AddressCounts>,
    address: IpAddr,
}

impl Drop for AddressPermit {
    fn drop(&mut self) {
        self.counts.counts.remove_if_mut(&self.address, |_, count| {
            *count = count.saturating_sub(1);
            *count == 0
        });
    }
}

/// What an accepted connection may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Admission {
    /// Everything.
    Full,
    /// Only [`ESSENTIAL_PATHS`] (the total limit is reached).
    Essential,
    /// Nothing: every request gets the 503.
    Refused(LimitKind),
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
        let address_permit = match stream.peer_addr() {
            Ok(peer) => self.per_address.admit(peer.ip()),
            Err(_) => None,
        };
        if let Some(address_permit) = address_permit {
            if let Ok(permit) = self.admitted.clone().try_acquire_owned() {
                metrics::tcp_connections_changed(1.0);
                return ready(Ok((
                    CountedStream::new(stream, permit, Some(address_permit), true),
                    AdmissionService::new(service, Admission::Full),
                )));
            }
            LimitKind::TooManyConnections.record();
            if let Ok(permit) = self.reserved.clone().try_acquire_owned() {
                return ready(Ok((
                    CountedStream::new(stream, permit, Some(address_permit), false),
                    AdmissionService::new(service, Admission::Essential),
                )));
            }
        } else {
            LimitKind::TooManyConnectionsFromAddress.record();
        }
        let kind = if self.admitted.available_permits() == 0 {
            LimitKind::TooManyConnections
        } else {
            LimitKind::TooManyConnectionsFromAddress
        };
        match self.refused.clone().try_acquire_owned() {
            Ok(permit) => {
                tracing::warn!(
                    limit = kind.as_str(),
                    "connection limit reached; answering 503"
                );
                ready(Ok((
                    CountedStream::new(stream, permit, None, false),
                    AdmissionService::new(service, Admission::Refused(kind)),
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
    _address: Option<AddressPermit>,
}

impl<I> CountedStream<I> {
    fn new(
        inner: I,
        permit: OwnedSemaphorePermit,
        address: Option<AddressPermit>,
        admitted: bool,
    ) -> Self {
        Self {
            inner,
            admitted,
            _permit: permit,
            _address: address,
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

/// The per-connection service: the application for an admitted connection (only the essential paths on a
/// reserved one), a `503` otherwise.
#[derive(Debug, Clone)]
pub struct AdmissionService<S> {
    inner: S,
    admission: Admission,
}

impl<S> AdmissionService<S> {
    fn new(inner: S, admission: Admission) -> Self {
        Self { inner, admission }
    }

    fn passes<B>(&self, request: &Request<B>) -> Result<(), LimitKind> {
        match self.admission {
            Admission::Full => Ok(()),
            Admission::Essential if ESSENTIAL_PATHS.contains(&request.uri().path()) => Ok(()),
            Admission::Essential => Err(LimitKind::TooManyConnections),
            Admission::Refused(kind) => Err(kind),
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
        if matches!(self.admission, Admission::Refused(_)) {
            Poll::Ready(Ok(()))
        } else {
            self.inner.poll_ready(cx)
        }
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        match self.passes(&request) {
            Ok(()) => Either::Left(self.inner.call(request)),
            Err(kind) => Either::Right(ready(Ok(too_many_connections(kind)))),
        }
    }
}

fn too_many_connections(kind: LimitKind) -> Response {
    let description = if kind == LimitKind::TooManyConnectionsFromAddress {
        "too many connections from your address (EHR_MCP_MAX_CONNECTIONS_PER_ADDRESS); retry shortly"
    } else {
        "the server is at its connection limit (EHR_MCP_MAX_CONNECTIONS); retry shortly"
    };
    let mut response = limit_error_response(
        StatusCode::SERVICE_UNAVAILABLE,
        kind,
        description.to_owned(),
    );
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}
