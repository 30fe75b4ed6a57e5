//! HTTP limits as layers: body size (413), request timeout (408) and JSON nesting depth (400), each answered
//! with a JSON error that names the limit and its setting.

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower::ServiceBuilder;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use super::{LimitKind, NetworkLimits, json_depth_ok, json_too_deep_error, limit_error_response};

/// Wraps `router` with the body-size, timeout and JSON-depth limits.
pub fn with_http_limits(router: Router, limits: &NetworkLimits) -> Router {
    let limits = Arc::new(limits.clone());
    router.layer(
        ServiceBuilder::new()
            .layer(axum::middleware::from_fn_with_state(
                limits.clone(),
                explain_limit_responses,
            ))
            .layer(TimeoutLayer::with_status_code(
                StatusCode::REQUEST_TIMEOUT,
                limits.request_timeout,
            ))
            .layer(axum::middleware::from_fn_with_state(
                limits.clone(),
                check_json_messages,
            ))
            .layer(RequestBodyLimitLayer::new(limits.max_message_bytes))
            .layer(DefaultBodyLimit::max(limits.max_message_bytes)),
    )
}

/// Buffers JSON request bodies (within the size limit) and refuses ones nested too deeply, before any
/// handler parses them.
async fn check_json_messages(
    State(limits): State<Arc<NetworkLimits>>,
    request: Request,
    next: Next,
) -> Response {
    if !is_json(request.headers()) {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let bytes: Bytes = match axum::body::to_bytes(body, limits.max_message_bytes).await {
        Ok(bytes) => bytes,
        Err(error) if is_length_limit(&error) => return body_too_large(&limits),
        Err(_) => {
            return (StatusCode::BAD_REQUEST, "could not read the request body").into_response();
        }
    };
    if !json_depth_ok(&bytes, limits.max_json_depth) {
        LimitKind::JsonTooDeep.record();
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json_too_deep_error(limits.max_json_depth)),
        )
            .into_response();
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// Gives the plain 413 and 408 answers of the lower layers (tower-http, axum extractors) the JSON shape,
/// and counts them.
async fn explain_limit_responses(
    State(limits): State<Arc<NetworkLimits>>,
    request: Request,
    next: Next,
) -> Response {
    let response = next.run(request).await;
    match response.status() {
        StatusCode::PAYLOAD_TOO_LARGE if !is_json(response.headers()) => body_too_large(&limits),
        StatusCode::REQUEST_TIMEOUT if !is_json(response.headers()) => {
            LimitKind::RequestTimeout.record();
            limit_error_response(
                StatusCode::REQUEST_TIMEOUT,
                LimitKind::RequestTimeout,
                format!(
                    "the request took longer than {} s (EHR_MCP_REQUEST_TIMEOUT_SECONDS)",
                    limits.request_timeout.as_secs_f64()
                ),
            )
        }
        _ => response,
    }
}

fn body_too_large(limits: &NetworkLimits) -> Response {
    LimitKind::BodyTooLarge.record();
    limit_error_response(
        StatusCode::PAYLOAD_TOO_LARGE,
        LimitKind::BodyTooLarge,
        format!(
            "the request body exceeds {} bytes (EHR_MCP_MAX_MESSAGE_BYTES)",
            limits.max_message_bytes
        ),
    )
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .map(|media_type| {
            let media_type = media_type.trim().to_ascii_lowercase();
            media_type == "application/json" || media_type.ends_with("+json")
        })
        .unwrap_or(false)
}

/// Whether reading a body failed because it was longer than allowed (the error may be wrapped).
fn is_length_limit(error: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = source {
        if current.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = current.source();
    }
    false
}
