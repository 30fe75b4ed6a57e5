//! Transports: the axum router on one port (WebSocket `/` and `/ws`, Streamable HTTP `/mcp`, the FHIR API
//! `/fhir/r4/`, OAuth, health,
//! metrics), the JSON-RPC framing the message transports share, limits, TLS and the shutdown signal.
//! stdio lives in `cli::stdio`. Transports resolve identity and hand the same tool server a `Principal`;
//! they hold no policy.

pub mod bearer;
pub mod compression;
pub mod fhir;
pub mod health;
pub mod jsonrpc;
pub mod limits;
pub mod mcp_http;
pub mod metrics_endpoint;
pub mod oauth;
pub mod shutdown;
pub mod signin;
pub mod sse_replay;
pub mod tls;
pub mod websocket;
mod ws_calls;
pub mod ws_codec;
pub mod ws_handshake;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;

use crate::audit::AuditLog;
use crate::auth::AuthService;
use crate::config::ServeArgs;
use crate::store::Store;
use crate::tools::ToolServices;

pub use crate::domain::origin::{Origin, Transport};

/// Shared state of the running server. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub auth: AuthService,
    pub audit: AuditLog,
    /// Limits every transport applies (message size, idle timeout, JSON depth, …).
    pub limits: Arc<limits::NetworkLimits>,
    /// Cancelled when shutdown begins; long-lived connections select on it and are tracked by it.
    pub shutdown: shutdown::Shutdown,
}

/// The whole HTTP router on one port: health, metrics, OAuth, the MCP routes, then the HTTP limits and
/// telemetry around all of them.
pub fn router(state: &AppState, args: &ServeArgs, public_base_url: &str) -> Router {
    let tools = Arc::new(ToolServices {
        store: state.store.clone(),
        auth: state.auth.clone(),
        audit: state.audit.clone(),
        result_budget: crate::tools::views::ResultBudget::new(args.results.result_budget_bytes),
    });
    let router = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics_endpoint::metrics))
        .with_state(state.clone())
        .merge(oauth::router(state.auth.clone()))
        .merge(fhir::router(tools.clone(), public_base_url))
        .merge(mcp_routes(
            tools,
            args,
            public_base_url,
            state.limits.clone(),
            state.shutdown.clone(),
        ));
    let router = limits::with_http_limits(router, &state.limits);
    let router = compression::with_http_compression(router, args.compression.enabled());
    crate::telemetry::http::with_http_telemetry(router)
}

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
        compression: args.compression.enabled(),
    };
    let guard = bearer::BearerGuard {
        auth: tools.auth.clone(),
        audit: tools.audit.clone(),
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
