//! Transports: the axum router on one port (WebSocket `/` and `/ws`, Streamable HTTP `/mcp`, OAuth, health,
//! metrics), the JSON-RPC framing the message transports share, limits, TLS and the shutdown signal.
//! stdio lives in `cli::stdio`. Transports resolve identity and hand the same tool server a `Principal`;
//! they hold no policy.

pub mod bearer;
pub mod jsonrpc;
pub mod limits;
pub mod mcp_http;
pub mod metrics_endpoint;
pub mod oauth;
pub mod shutdown;
pub mod sse_replay;
pub mod tls;
pub mod websocket;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;

use crate::config::ServeArgs;
use crate::tools::ToolServices;

/// The MCP routes: WebSocket at `/` and `/ws`, Streamable HTTP at `/mcp`.
pub fn mcp_routes(
    tools: Arc<ToolServices>,
    args: &ServeArgs,
    public_base_url: &str,
    limits: Arc<limits::NetworkLimits>,
    shutdown: shutdown::Shutdown,
) -> Router {
    let resource_metadata_url =
        format!("{public_base_url}/.well-known/oauth-protected-resource/mcp");
    let websocket_state = websocket::WebSocketState {
        tools: tools.clone(),
        limits,
        shutdown: shutdown.clone(),
        resource_metadata_url: resource_metadata_url.clone(),
    };
    let guard = bearer::BearerGuard {
        auth: tools.auth.clone(),
        resource_metadata_url,
        allow_in_band: args.http_in_band_auth,
    };
    let http_settings = mcp_http::McpHttpSettings {
        public_base_url: public_base_url.to_owned(),
        bind_host: args.host.clone(),
        allowed_origins: args.allowed_origins.clone(),
        max_message_bytes: args.limits.max_message_bytes,
        shutdown: shutdown.token().clone(),
    };
    Router::new()
        .route("/", get(websocket::upgrade))
        .route("/ws", get(websocket::upgrade))
        .with_state(websocket_state)
        .merge(mcp_http::routes(tools, guard, &http_settings))
}
