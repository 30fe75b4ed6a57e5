//! HTTP compression: answers compressed by `Accept-Encoding` (gzip, br, zstd) and request bodies accepted
//! in those encodings (`Content-Encoding`), for every route (`/mcp`, OAuth, FHIR, metadata), plus the
//! byte counters of `ehr_mcp_wire_bytes_total` / `ehr_mcp_uncompressed_bytes_total`.
//!
//! Bounds: request bodies are inflated before the body limit (`EHR_MCP_MAX_MESSAGE_BYTES`) sees them, as a
//! stream, so an inflated body over the limit is refused with the same 413 as a plain one after at most
//! the limit was inflated. Answers under [`MIN_COMPRESSED_BYTES`] go out plain, the level is fixed at
//! [`HTTP_LEVEL`], and `text/event-stream` is never compressed (the encoder would hold events back until
//! its buffer fills; SSE streams stay unbuffered). `EHR_MCP_COMPRESSION=off` removes the layers.

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use http_body_util::BodyExt;
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
        .and(NotForContentType::SSE);
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

fn counted<B>(body: B, counters: ByteCounters, incoming: bool, stage: Stage) -> Body
where
    B: http_body::Body<Data = axum::body::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    Body::new(body.map_frame(move |frame| {
        if let Some(data) = frame.data_ref() {
            let bytes = data.len();
            match (stage, incoming) {
                (Stage::Wire, true) => counters.wire_in(bytes),
                (Stage::Wire, false) => counters.wire_out(bytes),
                (Stage::Uncompressed, true) => counters.uncompressed_in(bytes),
                (Stage::Uncompressed, false) => counters.uncompressed_out(bytes),
                (Stage::Both, true) => {
                    counters.wire_in(bytes);
                    counters.uncompressed_in(bytes);
                }
                (Stage::Both, false) => {
                    counters.wire_out(bytes);
                    counters.uncompressed_out(bytes);
                }
            }
        }
        frame
    }))
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
    count(request, next, Stage::Uncompressed).await
}

async fn count_plain(request: Request, next: Next) -> Response {
    count(request, next, Stage::Both).await
}
