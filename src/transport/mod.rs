//! Transports: the axum routes of the one port (WebSocket `/` and `/ws`, Streamable HTTP `/mcp`) and
//! the JSON-RPC framing they share. stdio lives in `cli::stdio`. Transports resolve identity and hand
//! the same tool server a `Principal`; they hold no policy.

pub mod bearer;
pub mod jsonrpc;
pub mod mcp_http;
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
    shutdown: tokio_util::sync::CancellationToken,
) -> Router {
    let resource_metadata_url =
        format!("{public_base_url}/.well-known/oauth-protected-resource/mcp");
    let websocket_state = websocket::WebSocketState {
        tools: tools.clone(),
        limits: websocket::WebSocketLimits {
            max_message_bytes: args.limits.max_message_bytes,
            idle_timeout: args.limits.idle_timeout(),
        },
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
        shutdown,
    };
    Router::new()
        .route("/", get(websocket::upgrade))
        .route("/ws", get(websocket::upgrade))
        .with_state(websocket_state)
        .merge(mcp_http::routes(tools, guard, &http_settings))
}
