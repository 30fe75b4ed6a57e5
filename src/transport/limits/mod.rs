//! Network limits, each configurable (`config::LimitArgs`) and each with a clear error when hit: message
//! size (HTTP body 413, WebSocket close 1009), concurrent connections (503), WebSocket idle timeout with
//! ping/pong (close 1001), unauthenticated WebSocket lifetime (close 1008), request timeout and body read
//! deadline (408), JSON nesting depth (JSON-RPC error -32600), and per message
//! the batch length, reply size and calls in flight per connection ([`MessageBounds`], JSON-RPC errors).
//!
//! HTTP limits are layers ([`with_http_limits`]); the connection limit is an acceptor
//! ([`ConnectionLimitAcceptor`]); WebSocket handlers take their pieces from [`websocket`].

use std::time::Duration;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::config::LimitArgs;

mod connections;
mod http;
mod json_depth;
pub mod websocket;

pub use connections::{AdmissionService, ConnectionLimitAcceptor, CountedStream};
pub use http::with_http_limits;
pub use json_depth::json_depth_ok;

/// The limits in force, shared by every transport through `AppState::limits`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkLimits {
    /// Largest HTTP body or WebSocket message (and frame), bytes.
    pub max_message_bytes: usize,
    /// Most accepted TCP connections open at once (HTTP, WebSocket, TLS together).
    pub max_connections: usize,
    /// Most connections open at once from one IP address.
    pub max_connections_per_address: usize,
    /// Longest wait for a request's head (slowloris).
    pub header_read_timeout: Duration,
    /// Longest wait for a request's whole body, from the request's arrival (slowloris on the body).
    pub body_read_timeout: Duration,
    /// A WebSocket that has not authenticated within this long of opening is closed.
    pub unauthenticated_timeout: Duration,
    /// A WebSocket on which the client sent no message for this long is closed (pings and pongs do not
    /// count).
    pub idle_timeout: Duration,
    /// Longest time to a response head.
    pub request_timeout: Duration,
    /// Deepest JSON nesting accepted in one message.
    pub max_json_depth: usize,
    /// Longest wait for in-flight work at shutdown.
    pub shutdown_grace: Duration,
    /// Bounds on one JSON-RPC message's batch and reply, and on a connection's unanswered calls.
    pub messages: MessageBounds,
}

/// What one message may cost the server: batch length, reply size, calls in flight per connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageBounds {
    pub max_batch_length: usize,
    pub max_reply_bytes: usize,
    pub max_in_flight_calls: usize,
}

impl Default for MessageBounds {
    /// The defaults of `config::LimitArgs`.
    fn default() -> Self {
        Self {
            max_batch_length: 64,
            max_reply_bytes: 8 << 20,
            max_in_flight_calls: 128,
        }
    }
}

impl NetworkLimits {
    pub fn from_args(args: &LimitArgs) -> Self {
        Self {
            max_message_bytes: args.max_message_bytes,
            max_connections: args.max_connections,
            max_connections_per_address: args.max_connections_per_address,
            header_read_timeout: Duration::from_secs(args.header_read_timeout_seconds),
            body_read_timeout: Duration::from_secs(args.body_read_timeout_seconds),
            unauthenticated_timeout: Duration::from_secs(args.unauthenticated_timeout_seconds),
            idle_timeout: args.idle_timeout(),
            request_timeout: args.request_timeout(),
            max_json_depth: args.max_json_depth,
            shutdown_grace: Duration::from_secs(args.shutdown_grace_seconds),
            messages: MessageBounds {
                max_batch_length: args.max_batch_length,
                max_reply_bytes: args.max_reply_bytes,
                max_in_flight_calls: args.max_in_flight_calls,
            },
        }
    }

    /// How often an idle WebSocket is pinged: a third of the idle timeout (at least 100 ms).
    pub fn ping_interval(&self) -> Duration {
        (self.idle_timeout / 3).max(Duration::from_millis(100))
    }
}

/// Which limit refused a request; the code clients see in `error` and the `limit` label of the
/// `ehr_mcp_limit_rejections_total` metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    BodyTooLarge,
    TooManyConnections,
    TooManyConnectionsFromAddress,
    RequestTimeout,
    JsonTooDeep,
    MessageTooLarge,
    IdleTimeout,
    BatchTooLong,
    ReplyTooLarge,
    TooManyInFlight,
    BodyReadTimeout,
    UnauthenticatedTimeout,
}

impl LimitKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BodyTooLarge => "body_too_large",
            Self::TooManyConnections => "too_many_connections",
            Self::TooManyConnectionsFromAddress => "too_many_connections_from_address",
            Self::RequestTimeout => "request_timeout",
            Self::JsonTooDeep => "json_too_deep",
            Self::MessageTooLarge => "message_too_large",
            Self::IdleTimeout => "idle_timeout",
            Self::BatchTooLong => "batch_too_long",
            Self::ReplyTooLarge => "reply_too_large",
            Self::TooManyInFlight => "too_many_in_flight",
            Self::BodyReadTimeout => "body_read_timeout",
            Self::UnauthenticatedTimeout => "unauthenticated_timeout",
        }
    }

    /// Counts the rejection in the metrics.
    pub fn record(self) {
        crate::telemetry::metrics::limit_rejected(self.as_str());
    }
}

/// The JSON body of an HTTP limit error: `{"error": code, "error_description": text}` (the OAuth error shape
/// the other endpoints use).
pub fn limit_error_response(status: StatusCode, kind: LimitKind, description: String) -> Response {
    (
        status,
        Json(json!({"error": kind.as_str(), "error_description": description})),
    )
        .into_response()
}

/// The JSON-RPC error for a message nested deeper than allowed (no id: the message was not parsed).
pub fn json_too_deep_error(max_depth: usize) -> serde_json::Value {
    json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": {
            "code": -32600,
            "message": format!(
                "Invalid Request: JSON nested deeper than {max_depth} levels (EHR_MCP_MAX_JSON_DEPTH)"
            ),
        },
    })
}
