//! HTTP compression: answers compressed by `Accept-Encoding` (gzip, br, zstd) and request bodies accepted
//! in those encodings (`Content-Encoding`), for every route (`/mcp`, OAuth, FHIR, metadata), plus the
//! byte counters of `ehr_mcp_wire_bytes_total` / `ehr_mcp_uncompressed_bytes_total`.
//!
//! Bounds: request bodies are inflated before the body limit (`EHR_MCP_MAX_MESSAGE_BYTES`) sees them, as a
//! stream, so an inflated body over the limit is refused with the same 413 as a plain one after at most
//! the limit was inflated. Answers under [`MIN_COMPRESSED_BYTES`] go out plain and the level is fixed at
//! [`HTTP_LEVEL`]. The encoder emits only when its buffer fills or the body ends, so a `text/event-stream`
//! is compressed only when it answers a POST (a `/mcp` call's reply, after which the stream ends); the
//! long-lived GET stream and replays stay plain and unbuffered. `EHR_MCP_COMPRESSION=off` removes the
//! layers.

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use tower::ServiceBuilder;
use tower_http::compression::predicate::{NotForContentType, Predicate, SizeAbove};
use tower_http::compression::{CompressionLayer, CompressionLevel};
use tower_http::decompression::RequestDecompressionLayer;

use crate::telemetry::metrics::ByteCounters;

/// Messages and answers smaller than this are sent uncompressed (deflate rarely shrinks them and the
/// work is wasted), on HTTP and WebSocket alike.
pub const MIN_COMPRESSED_BYTES: usize = 256;

/// The compression level of HTTP answers for every encoding (gzip 3 of 9, brotli 3 of 11, zstd 3 of 22):
/// cheap, and most of the ratio on JSON.
pub const HTTP_LEVEL: CompressionLevel = CompressionLevel::Precise(3);

/// Wraps `router` (inside the telemetry layers, outside the limits) with compression when `enabled`, and
/// with the byte counters either way.
pub fn with_http_compression(router: Router, enabled: bool) -> Router {
    if !enabled {
        return router.layer(axum::middleware::from_fn(count_plain));
    }
    let predicate = SizeAbove::new(MIN_COMPRESSED_BYTES as u64)
        .and(NotForContentType::GRPC)
        .and(NotForContentType::IMAGES)
        .and(NotALongStream);
    router.layer(
        ServiceBuilder::new()
            .layer(axum::middleware::from_fn(count_wire))
            .layer(
                CompressionLayer::new()
                    .quality(HTTP_LEVEL)
                    .compress_when(predicate),
            )
            .layer(RequestDecompressionLayer::new())
            .layer(tower::util::MapRequestLayer::new(
                into_axum_body::<tower_http::decompression::DecompressionBody<Body>>,
            ))
            .layer(axum::middleware::from_fn(count_uncompressed)),
    )
}

/// The inflating request body as the axum body the inner layers take.
fn into_axum_body<B>(request: axum::http::Request<B>) -> Request
where
    B: http_body::Body<Data = axum::body::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    request.map(Body::new)
}

#[derive(Clone, Copy)]
enum Stage {
    Wire,
    Uncompressed,
    Both,
}

/// A body that counts its data frames as they pass; its size hint is the inner one (so the compression
/// predicate still sees the exact size of small answers).
struct Counted {
    inner: Body,
    counters: ByteCounters,
    incoming: bool,
    stage: Stage,
}

impl Counted {
    fn record(&self, bytes: usize) {
        match (self.stage, self.incoming) {
            (Stage::Wire, true) => self.counters.wire_in(bytes),
            (Stage::Wire, false) => self.counters.wire_out(bytes),
            (Stage::Uncompressed, true) => self.counters.uncompressed_in(bytes),
            (Stage::Uncompressed, false) => self.counters.uncompressed_out(bytes),
            (Stage::Both, true) => {
                self.counters.wire_in(bytes);
                self.counters.uncompressed_in(bytes);
            }
            (Stage::Both, false) => {
                self.counters.wire_out(bytes);
                self.counters.uncompressed_out(bytes);
            }
        }
    }
}

impl http_body::Body for Counted {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_frame(cx);
        if let std::task::Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                self.record(data.len());
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

fn counted(inner: Body, counters: ByteCounters, incoming: bool, stage: Stage) -> Body {
    Body::new(Counted {
        inner,
        counters,
        incoming,
        stage,
    })
}

async fn count(request: Request, next: Next, stage: Stage) -> Response {
    let counters = ByteCounters::new("http");
    let request = request.map(|body| counted(body, counters.clone(), true, stage));
    let response = next.run(request).await;
    response.map(|body| counted(body, counters, false, stage))
}

async fn count_wire(request: Request, next: Next) -> Response {
    count(request, next, Stage::Wire).await
}

async fn count_uncompressed(request: Request, next: Next) -> Response {
    let post = request.method() == axum::http::Method::POST;
    let mut response = count(request, next, Stage::Uncompressed).await;
    if post {
        response.extensions_mut().insert(AnswerToAPost);
    }
    response
}

/// Marks the answer to a POST: its event stream (a `/mcp` call's reply) ends with the reply.
#[derive(Clone, Copy)]
struct AnswerToAPost;

/// Compresses an event stream only when it answers a POST (one reply, then the end: the encoder's
/// buffering costs nothing); a GET stream (`/mcp` notifications, replays) is long-lived and stays plain,
/// so no event waits in the encoder.
#[derive(Clone, Copy)]
struct NotALongStream;

impl Predicate for NotALongStream {
    fn should_compress<B>(&self, response: &axum::http::Response<B>) -> bool
    where
        B: http_body::Body,
    {
        let event_stream = response
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.starts_with("text/event-stream"));
        !event_stream || response.extensions().get::<AnswerToAPost>().is_some()
    }
}

async fn count_plain(request: Request, next: Next) -> Response {
    count(request, next, Stage::Both).await
}
