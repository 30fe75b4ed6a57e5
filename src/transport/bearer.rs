//! Bearer tokens on HTTP requests (RFC 6750): reading `Authorization: Bearer`, the 401 answer with
//! `WWW-Authenticate: Bearer resource_metadata="…"` (RFC 9728) that lets clients discover the
//! authorization server, and the middleware that guards `/mcp`.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::auth::{AuthError, AuthService, retry_after_seconds};
use crate::tools::{BearerPrincipal, ClientAddress};

/// The bearer token (or API key) of a request: `Authorization: Bearer`, else `X-API-Key`; `Ok(None)`
/// without either, `Err` for a header that is not a well-formed credential.
pub fn token_from_headers(headers: &HeaderMap) -> Result<Option<String>, &'static str> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return match headers.get("x-api-key") {
            None => Ok(None),
            Some(key) => match key.to_str().map(str::trim) {
                Ok(key) if !key.is_empty() => Ok(Some(key.to_owned())),
                _ => Err("the X-API-Key header is not a valid key"),
            },
        };
    };
    let text = value
        .to_str()
        .map_err(|_| "the Authorization header is not valid text")?;
    let (scheme, token) = text
        .trim()
        .split_once(' ')
        .ok_or("expected Authorization: Bearer <token>")?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err("expected Authorization: Bearer <token>");
    }
    Ok(Some(token.to_owned()))
}

/// HTTP 401 with the RFC 9728 pointer to our protected-resource metadata. `problem` is set when a token
/// was presented and refused (`error="invalid_token"`).
pub fn unauthorized(resource_metadata_url: &str, problem: Option<&str>) -> Response {
    let challenge = match problem {
        None => format!("Bearer resource_metadata=\"{resource_metadata_url}\""),
        Some(_) => format!(
            "Bearer error=\"invalid_token\", error_description=\"the access token is invalid, expired or revoked\", resource_metadata=\"{resource_metadata_url}\""
        ),
    };
    let body = serde_json::json!({
        "error": if problem.is_some() { "invalid_token" } else { "unauthorized" },
        "error_description": problem.unwrap_or(
            "a bearer token is required: get one from the token endpoint named in the resource metadata"
        ),
        "resource_metadata": resource_metadata_url,
    });
    let mut response = (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The answer to a refused bearer token: 503 with `Retry-After` when the database could not answer
/// (a retryable outage is never a verdict on the token), else 401.
pub fn refused(resource_metadata_url: &str, error: &AuthError) -> Response {
    match error {
        AuthError::Unavailable { retry_after } => service_unavailable(*retry_after),
        other => unauthorized(resource_metadata_url, Some(&other.to_string())),
    }
}

/// HTTP 503 `{"error":"temporarily_unavailable"}` with `Retry-After`, never cached.
pub fn service_unavailable(retry_after: std::time::Duration) -> Response {
    let body = serde_json::json!({
        "error": "temporarily_unavailable",
        "error_description": "the database is temporarily unavailable; retry shortly",
    });
    let mut response = (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(&retry_after_seconds(retry_after).to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// What the `/mcp` guard needs.
#[derive(Clone)]
pub struct BearerGuard {
    pub auth: AuthService,
    /// Where refused requests are counted (aggregated rows, [`crate::audit::Refusal`]).
    pub audit: crate::audit::AuditLog,
    pub resource_metadata_url: String,
    /// `EHR_MCP_HTTP_IN_BAND_AUTH`: let requests without a token through (tools then apply the
    /// WebSocket rules: `authenticate` or `access_token`).
    pub allow_in_band: bool,
}

/// Middleware for `/mcp`: a valid bearer token puts its principal in the request's extensions (the tools
/// read it from there, with the client's address); a refused token is 401; no token is 401 unless in-band
/// authentication is on.
pub async fn require_bearer(
    State(guard): State<std::sync::Arc<BearerGuard>>,
    mut request: Request,
    next: Next,
) -> Response {
    let address = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(address)| address.ip());
    if let Some(address) = address {
        request.extensions_mut().insert(ClientAddress(address));
    }
    let refusal = |reason: &str| crate::audit::Refusal {
        transport: crate::audit::Transport::StreamableHttp,
        peer: address,
        action: "mcp.http".to_owned(),
        reason: reason.to_owned(),
        patient: None,
    };
    match token_from_headers(request.headers()) {
        Ok(Some(token)) => match guard.auth.validate(&token).await {
            Ok(principal) => {
                request.extensions_mut().insert(BearerPrincipal(principal));
                next.run(request).await
            }
            Err(error) => {
                guard
                    .audit
                    .record_refusal(refusal(refusal_reason(&error)))
                    .await;
                refused(&guard.resource_metadata_url, &error)
            }
        },
        Ok(None) if guard.allow_in_band => next.run(request).await,
        Ok(None) => {
            guard.audit.record_refusal(refusal("no_token")).await;
            unauthorized(&guard.resource_metadata_url, None)
        }
        Err(reason) => {
            guard
                .audit
                .record_refusal(refusal("malformed_authorization"))
                .await;
            unauthorized(&guard.resource_metadata_url, Some(reason))
        }
    }
}

/// The audit reason of a refused bearer token.
pub fn refusal_reason(error: &AuthError) -> &'static str {
    match error {
        AuthError::Unavailable { .. } => "unavailable",
        AuthError::RateLimited { .. } => "rate_limited",
        _ => "invalid_token",
    }
}
