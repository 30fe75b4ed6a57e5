//! HTTP request telemetry: a request id on every request and response (`x-request-id`), one log line per
//! request (method, route, status, latency — never query strings, bodies or headers) and HTTP metrics.
//!
//! The request id is also in the request extensions as [`tower_http::request_id::RequestId`]; handlers and
//! the audit log take it from there (or from [`request_id_of`]).

use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderMap, HeaderValue, Method, Response, header};
use axum::middleware::Next;
use tower::ServiceBuilder;
use tower_http::request_id::RequestId;
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::trace::TraceLayer;
use tracing::Span;

use super::metrics;

/// The header carrying the request id, in and out.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Longest caller-supplied request id kept; longer or odd ones are replaced by a fresh id.
const MAX_REQUEST_ID_LEN: usize = 64;

/// Wraps `router` with the request-id, trace and metrics layers. Apply it last, so it sees every request.
pub fn with_http_telemetry(router: Router) -> Router {
    router.layer(
        ServiceBuilder::new()
            .layer(axum::middleware::from_fn(assign_request_id))
            .layer(SetSensitiveRequestHeadersLayer::new([
                header::AUTHORIZATION,
                header::PROXY_AUTHORIZATION,
                header::COOKIE,
            ]))
            .layer(
                TraceLayer::new_for_http()
                    .make_span_with(request_span)
                    .on_request(())
                    .on_response(log_response)
                    .on_body_chunk(())
                    .on_eos(())
                    .on_failure(()),
            )
            .layer(axum::middleware::from_fn(record_http_metrics)),
    )
}

/// The request id of a request: the `RequestId` extension set by [`with_http_telemetry`].
pub fn request_id_of(extensions: &axum::http::Extensions) -> Option<String> {
    extensions
        .get::<RequestId>()
        .and_then(|id| id.header_value().to_str().ok())
        .map(str::to_owned)
}

/// Keeps a well-formed caller-supplied `x-request-id` (letters, digits, `-`, `_`, `.`, at most 64), else
/// assigns a new UUID; stores it in the request (header and extension) and echoes it on the response.
async fn assign_request_id(mut request: Request, next: Next) -> Response<Body> {
    let id = acceptable_request_id(request.headers()).unwrap_or_else(new_request_id);
    request.headers_mut().insert(REQUEST_ID_HEADER, id.clone());
    request.extensions_mut().insert(RequestId::new(id.clone()));
    let mut response = next.run(request).await;
    response.headers_mut().insert(REQUEST_ID_HEADER, id);
    response
}

fn new_request_id() -> HeaderValue {
    // A UUID's text is always a valid header value; the fallback only satisfies the type.
    HeaderValue::from_str(&uuid::Uuid::new_v4().to_string())
        .unwrap_or_else(|_| HeaderValue::from_static("unassigned"))
}

fn acceptable_request_id(headers: &HeaderMap) -> Option<HeaderValue> {
    let value = headers.get(REQUEST_ID_HEADER)?;
    let text = value.to_str().ok()?;
    let well_formed = !text.is_empty()
        && text.len() <= MAX_REQUEST_ID_LEN
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    well_formed.then(|| value.clone())
}

/// The span of one request: method, route template (never the raw path or query) and request id.
fn request_span(request: &Request<Body>) -> Span {
    let request_id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    tracing::info_span!(
        "http_request",
        method = %request.method(),
        route = route_of(request),
        request_id,
    )
}

fn log_response(response: &Response<Body>, latency: Duration, _span: &Span) {
    let status = response.status().as_u16();
    let latency_ms = latency.as_secs_f64() * 1000.0;
    if response.status().is_server_error() {
        tracing::warn!(status, latency_ms, "request failed");
    } else {
        tracing::info!(status, latency_ms, "request finished");
    }
}

async fn record_http_metrics(request: Request, next: Next) -> Response<Body> {
    let method = method_label(request.method());
    let route = route_of(&request).to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    metrics::http_response(method, route, response.status().as_u16(), started.elapsed());
    response
}

/// The matched route template (`/mcp`, `/oauth/token`); `unmatched` for anything else, so a path a client
/// made up never reaches a log or a metric label.
fn route_of<B>(request: &Request<B>) -> &str {
    request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn headers_with(id: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(REQUEST_ID_HEADER, HeaderValue::from_str(id).unwrap());
        headers
    }

    #[test]
    fn well_formed_request_ids_are_kept_and_others_replaced() {
        assert!(acceptable_request_id(&headers_with("abc-123_x.y")).is_some());
        assert!(acceptable_request_id(&headers_with("John Smith")).is_none());
        assert!(acceptable_request_id(&headers_with(&"a".repeat(65))).is_none());
        assert!(acceptable_request_id(&HeaderMap::new()).is_none());
    }
}
