//! HTTP limits as layers: body size (413), request timeout and body read deadline (408) and JSON nesting
//! depth (400), each answered with a JSON error that names the limit and its setting.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::Body as _;
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
            .layer(axum::middleware::from_fn_with_state(
                limits.clone(),
                body_read_deadline,
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

/// Gives the request body a deadline (`body_read_timeout` from the request's arrival): a body still
/// arriving then fails to read, and the answer is 408 naming the setting, with `Connection: close` — the
/// unread rest makes the connection unusable, so it is closed and its slot freed.
async fn body_read_deadline(
    State(limits): State<Arc<NetworkLimits>>,
    request: Request,
    next: Next,
) -> Response {
    if request.body().is_end_stream() {
        return next.run(request).await;
    }
    let expired = Arc::new(AtomicBool::new(false));
    let (parts, body) = request.into_parts();
    let http1 = parts.version < axum::http::Version::HTTP_2;
    let body = Body::new(DeadlineBody {
        inner: body,
        deadline: Box::pin(tokio::time::sleep(limits.body_read_timeout)),
        expired: expired.clone(),
        finished: false,
    });
    let response = next.run(Request::from_parts(parts, body)).await;
    if !expired.load(Ordering::Acquire) {
        return response;
    }
    LimitKind::BodyReadTimeout.record();
    tracing::debug!(
        timeout_seconds = limits.body_read_timeout.as_secs_f64(),
        "request body not received in time; closing the connection"
    );
    let mut response = limit_error_response(
        StatusCode::REQUEST_TIMEOUT,
        LimitKind::BodyReadTimeout,
        format!(
            "the request body was not received within {} s (EHR_MCP_BODY_READ_TIMEOUT_SECONDS)",
            limits.body_read_timeout.as_secs_f64()
        ),
    );
    if http1 {
        response.headers_mut().insert(
            header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
    }
    response
}

/// The error a body past its deadline yields to whoever reads it.
#[derive(Debug)]
struct BodyReadTimedOut;

impl std::fmt::Display for BodyReadTimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("request body read deadline passed (EHR_MCP_BODY_READ_TIMEOUT_SECONDS)")
    }
}

impl std::error::Error for BodyReadTimedOut {}

/// A request body that fails once its deadline passes while the reader waits for more of it.
struct DeadlineBody {
    inner: Body,
    deadline: Pin<Box<tokio::time::Sleep>>,
    expired: Arc<AtomicBool>,
    finished: bool,
}

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        if this.finished {
            return Poll::Ready(None);
        }
        // What has arrived is read first; the deadline only cuts a wait for more.
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(None) => {
                this.finished = true;
                Poll::Ready(None)
            }
            Poll::Ready(Some(frame)) => Poll::Ready(Some(frame)),
            Poll::Pending => match this.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    this.expired.store(true, Ordering::Release);
                    Poll::Ready(Some(Err(axum::Error::new(BodyReadTimedOut))))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.finished || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
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
