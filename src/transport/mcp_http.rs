//! MCP Streamable HTTP at `/mcp` (POST, GET, DELETE) with rmcp's `StreamableHttpService`, serving the same
//! [`EhrServer`]. Two modes on one path: a request carrying `Mcp-Session-Id`, an `initialize`, a GET or a
//! DELETE goes to the session service (SSE streams); any other POST without a session is served
//! statelessly with a plain JSON response. Host and Origin are validated against DNS rebinding; every
//! request passes the bearer guard first ([`super::bearer::require_bearer`]).

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;

use super::bearer::{BearerGuard, require_bearer};
use super::sse_replay::{ReplayLimits, ResumableSessions};
use crate::domain::origin::Transport;
use crate::tools::{
    BearerPrincipal, ClientAddress, EhrServer, RequestFacts, Session, ToolServices,
};

/// Settings of the `/mcp` endpoint.
#[derive(Debug, Clone)]
pub struct McpHttpSettings {
    /// The public base URL (`EHR_MCP_PUBLIC_URL` or `http://host:port`); its host is always allowed.
    pub public_base_url: String,
    /// The address the server listens on.
    pub bind_host: String,
    /// Extra allowed `Origin` values (`EHR_MCP_ALLOWED_ORIGINS`).
    pub allowed_origins: Vec<String>,
    pub max_message_bytes: usize,
    /// Cancelled at shutdown: ends open SSE streams and sessions.
    pub shutdown: CancellationToken,
}

struct McpServices {
    sessions: StreamableHttpService<EhrServer, ResumableSessions>,
    stateless: StreamableHttpService<EhrServer, LocalSessionManager>,
    max_message_bytes: usize,
    owners: Arc<SessionOwners>,
    audit: crate::audit::AuditLog,
}

impl McpServices {
    /// Counts a refused `/mcp` request (413, Origin 403, parse error) into an aggregated audit row.
    async fn refused(
        &self,
        request_peer: Option<std::net::IpAddr>,
        caller: Option<&str>,
        reason: &str,
    ) {
        let reason = match caller {
            Some(client) => format!("{reason}; client={client}"),
            None => reason.to_owned(),
        };
        self.audit
            .record_refusal(crate::audit::Refusal {
                transport: Transport::StreamableHttp,
                peer: request_peer,
                action: "mcp.http".to_owned(),
                reason,
                patient: None,
            })
            .await;
    }
}

fn peer_of(request: &Request) -> Option<std::net::IpAddr> {
    request
        .extensions()
        .get::<ClientAddress>()
        .map(|address| address.0)
}

/// The bearer principal and peer address [`crate::transport::bearer::require_bearer`] put in the HTTP
/// request behind a call; rmcp hands the tools the request's parts in the call's extensions.
fn request_facts(extensions: &rmcp::model::Extensions) -> RequestFacts {
    let Some(parts) = extensions.get::<http::request::Parts>() else {
        return RequestFacts::default();
    };
    RequestFacts {
        bearer: parts.extensions.get::<BearerPrincipal>().cloned(),
        peer: parts
            .extensions
            .get::<ClientAddress>()
            .map(|ClientAddress(address)| *address),
    }
}

/// Most session bindings kept; beyond this the oldest are forgotten (their sessions then answer 404).
const MAX_SESSION_OWNERS: usize = 10_000;

/// Which client opened each MCP session: another client (or a caller without the token of that client)
/// gets 404 for it, as for a session that does not exist — it can neither use nor DELETE it.
#[derive(Default)]
struct SessionOwners {
    owners: std::sync::Mutex<std::collections::VecDeque<(String, Option<String>)>>,
}

impl SessionOwners {
    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::VecDeque<(String, Option<String>)>> {
        self.owners
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn bind(&self, session: &str, owner: Option<String>) {
        let mut owners = self.lock();
        if owners.len() >= MAX_SESSION_OWNERS {
            owners.pop_front();
        }
        owners.push_back((session.to_owned(), owner));
    }

    fn is_owner(&self, session: &str, caller: Option<&str>) -> bool {
        self.lock()
            .iter()
            .any(|(id, owner)| id == session && owner.as_deref() == caller)
    }

    fn forget(&self, session: &str) {
        self.lock().retain(|(id, _)| id != session);
    }
}

/// The client id of the request's validated bearer token, if any.
fn caller_of(request: &Request) -> Option<String> {
    request
        .extensions()
        .get::<BearerPrincipal>()
        .map(|principal| principal.0.client_id.as_str().to_owned())
}

/// JSON-RPC 2.0 parse error (-32700) for a body that is not JSON: HTTP 400, `id: null`.
fn parse_error() -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(serde_json::json!({
            "jsonrpc": "2.0",
            "id": null,
            "error": {"code": -32700, "message": "Parse error: the request body is not valid JSON"},
        })),
    )
        .into_response()
}

fn session_not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(serde_json::json!({
            "jsonrpc": "2.0",
            "id": null,
            "error": {"code": -32001, "message": "Session not found"},
        })),
    )
        .into_response()
}

/// The `/mcp` routes, guarded by `guard`.
pub fn routes(tools: Arc<ToolServices>, guard: BearerGuard, settings: &McpHttpSettings) -> Router {
    let audit = tools.audit.clone();
    let factory = move || {
        Ok(EhrServer::new(
            tools.clone(),
            Arc::new(
                Session::anonymous(Transport::StreamableHttp).with_request_facts(request_facts),
            ),
        ))
    };
    let config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(allowed_hosts(settings))
        .with_allowed_origins(allowed_origins(settings))
        .enforce_origin_validation()
        .with_max_request_body_bytes(settings.max_message_bytes)
        .with_cancellation_token(settings.shutdown.clone());
    // Shared, not cloned: axum clones a route's state for every request.
    let services = Arc::new(McpServices {
        sessions: StreamableHttpService::new(
            factory.clone(),
            Arc::new(ResumableSessions::new(
                LocalSessionManager::default(),
                ReplayLimits::default(),
            )),
            config.clone(),
        ),
        stateless: StreamableHttpService::new(
            factory,
            Arc::new(LocalSessionManager::default()),
            config
                .with_legacy_session_mode(false)
                .with_json_response(true),
        ),
        max_message_bytes: settings.max_message_bytes,
        owners: Arc::new(SessionOwners::default()),
        audit,
    });
    Router::new()
        .route("/mcp", any(dispatch))
        .with_state(services)
        .route_layer(from_fn_with_state(Arc::new(guard), require_bearer))
}

async fn dispatch(State(services): State<Arc<McpServices>>, request: Request) -> Response {
    let caller = caller_of(&request);
    let peer = peer_of(&request);
    let session = request
        .headers()
        .get("mcp-session-id")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    if let Some(session) = &session {
        if !services.owners.is_owner(session, caller.as_deref()) {
            services
                .refused(peer, caller.as_deref(), "session_not_owned")
                .await;
            return session_not_found();
        }
        if request.method() == Method::DELETE {
            let response = into_axum(services.sessions.handle(request).await);
            if response.status().is_success() {
                services.owners.forget(session);
            }
            return response;
        }
    }
    if request.method() != Method::POST {
        let response = into_axum(services.sessions.handle(request).await);
        if response.status() == StatusCode::FORBIDDEN {
            services
                .refused(peer, caller.as_deref(), "origin_forbidden")
                .await;
        }
        return response;
    }
    let (parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, services.max_message_bytes).await {
        Ok(bytes) => bytes,
        Err(_) => {
            services
                .refused(peer, caller.as_deref(), "payload_too_large")
                .await;
            return (
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "Payload Too Large: the limit is {} bytes",
                    services.max_message_bytes
                ),
            )
                .into_response();
        }
    };
    if serde_json::from_slice::<serde::de::IgnoredAny>(&bytes).is_err() {
        services
            .refused(peer, caller.as_deref(), "parse_error")
            .await;
        return parse_error();
    }
    let initialize = session.is_none() && is_initialize(&bytes);
    let request = Request::from_parts(parts, Body::from(bytes));
    let response = if session.is_some() || initialize {
        into_axum(services.sessions.handle(request).await)
    } else {
        into_axum(services.stateless.handle(request).await)
    };
    if response.status() == StatusCode::FORBIDDEN {
        services
            .refused(peer, caller.as_deref(), "origin_forbidden")
            .await;
    }
    if !initialize {
        return response;
    }
    if let Some(opened) = response
        .headers()
        .get("mcp-session-id")
        .and_then(|value| value.to_str().ok())
    {
        services.owners.bind(opened, caller);
    }
    response
}

fn into_axum<B>(response: http::Response<B>) -> Response
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    response.map(Body::new)
}

/// Whether a POST body is an `initialize` request (which opens a session).
fn is_initialize(body: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Method<'a> {
        #[serde(borrow)]
        method: Option<&'a str>,
    }
    serde_json::from_slice::<Method<'_>>(body).is_ok_and(|m| m.method == Some("initialize"))
}

fn host_of(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split('/').next()?;
    let host = match authority.rsplit_once(':') {
        Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
        _ => authority,
    };
    Some(
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned(),
    )
}

fn is_unspecified(host: &str) -> bool {
    matches!(host, "0.0.0.0" | "::" | "[::]" | "")
}

/// Hosts accepted in the `Host` header: loopback, the public URL's host, and the bind address.
fn allowed_hosts(settings: &McpHttpSettings) -> Vec<String> {
    let mut hosts = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    hosts.extend(host_of(&settings.public_base_url));
    if !is_unspecified(&settings.bind_host) {
        hosts.push(settings.bind_host.clone());
    }
    hosts.sort();
    hosts.dedup();
    hosts
}

/// Origins accepted from browsers: our own hosts (any port) and the configured extra origins.
fn allowed_origins(settings: &McpHttpSettings) -> Vec<String> {
    let mut origins: Vec<String> = allowed_hosts(settings)
        .iter()
        .flat_map(|host| {
            let host = if host.contains(':') {
                format!("[{host}]")
            } else {
                host.clone()
            };
            [format!("http://{host}:*"), format!("https://{host}:*")]
        })
        .collect();
    origins.extend(
        settings
            .allowed_origins
            .iter()
            .map(|origin| origin.trim().trim_end_matches('/').to_owned())
            .filter(|origin| !origin.is_empty()),
    );
    origins
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(public: &str, bind: &str) -> McpHttpSettings {
        McpHttpSettings {
            public_base_url: public.to_owned(),
            bind_host: bind.to_owned(),
            allowed_origins: vec!["https://copilot.example.com".to_owned()],
            max_message_bytes: 1024,
            shutdown: CancellationToken::new(),
        }
    }

    #[test]
    fn the_public_host_and_loopback_are_allowed() {
        let hosts = allowed_hosts(&settings("https://ehr.example.org", "0.0.0.0"));
        assert!(hosts.contains(&"ehr.example.org".to_owned()));
        assert!(hosts.contains(&"127.0.0.1".to_owned()));
        assert!(!hosts.contains(&"0.0.0.0".to_owned()));
        let origins = allowed_origins(&settings("https://ehr.example.org:8443/", "127.0.0.1"));
        assert!(origins.contains(&"https://ehr.example.org:*".to_owned()));
        assert!(origins.contains(&"https://copilot.example.com".to_owned()));
    }

    #[test]
    fn initialize_is_recognised() {
        assert!(is_initialize(
            br#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#
        ));
        assert!(!is_initialize(
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#
        ));
        assert!(!is_initialize(b"not json"));
    }
}
