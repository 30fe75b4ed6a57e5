//! The OAuth 2.0 endpoints: token (client credentials RFC 6749 §4.4, authorization code §4.1 with PKCE,
//! refresh tokens §6), dynamic client registration (RFC 7591), introspection (RFC 7662), revocation
//! (RFC 7009), discovery (RFC 8414, OpenID configuration, RFC 9728) and the JWKS; the authorization
//! endpoint's pages are `transport::signin`. Errors follow RFC 6749 §5.2, mapped to HTTP in
//! [`oauth_error_response`] only.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::audit::{AuditEvent, Outcome, Transport};
use crate::auth::registration::RegistrationRequest;
use crate::auth::user_tokens::{GrantClient, UserGrant, UserTokenRequest};
use crate::auth::{AuthError, AuthService, AuthenticatedClient, TokenRequest, retry_after_seconds};
use crate::domain::origin::Origin;

mod form;
pub(crate) mod metadata;

use form::{Form, client_authentication};

/// The OAuth routes, with their state; merge into the application router.
pub fn router(auth: AuthService) -> Router {
    Router::new()
        .route("/oauth/token", post(token))
        .route("/oauth/introspect", post(introspect))
        .route("/oauth/revoke", post(revoke))
        .route("/oauth/register", post(register))
        .route(
            "/.well-known/oauth-authorization-server",
            get(authorization_server_metadata),
        )
        .route(
            "/.well-known/openid-configuration",
            get(authorization_server_metadata),
        )
        .route(
            "/.well-known/oauth-protected-resource",
            get(protected_resource_metadata),
        )
        .route(
            "/.well-known/oauth-protected-resource/mcp",
            get(protected_resource_metadata),
        )
        .route("/.well-known/jwks.json", get(jwks))
        .with_state(auth.clone())
        .merge(super::signin::router(auth))
}

/// The RFC 6749 §5.2 error response: JSON `{error, error_description}`, 400 (401 for `invalid_client`,
/// with `WWW-Authenticate: Basic` when Basic was tried or nothing was), 429 with `Retry-After`, an opaque
/// 500; never cached.
pub fn oauth_error_response(error: &AuthError, basic_attempted: bool) -> Response {
    let (status, description) = match error {
        AuthError::InvalidClient(_) => (StatusCode::UNAUTHORIZED, error.to_string()),
        AuthError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, error.to_string()),
        AuthError::Unavailable { .. } => (StatusCode::SERVICE_UNAVAILABLE, error.to_string()),
        AuthError::Internal(_) | AuthError::Config(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "the server could not complete the request".to_owned(),
        ),
        _ => (StatusCode::BAD_REQUEST, error.to_string()),
    };
    let code = match error {
        AuthError::Internal(_) | AuthError::Config(_) => "server_error",
        AuthError::RateLimited { .. } => "slow_down",
        other => other.code(),
    };
    let mut response = (
        status,
        no_store(),
        axum::Json(json!({"error": code, "error_description": description})),
    )
        .into_response();
    if let AuthError::RateLimited { retry_after } | AuthError::Unavailable { retry_after } = error {
        if let Ok(value) = HeaderValue::from_str(&retry_after_seconds(*retry_after).to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
    }
    if status == StatusCode::UNAUTHORIZED && basic_attempted {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"ehr-mcp\", charset=\"UTF-8\""),
        );
    }
    response
}

/// `Cache-Control: no-store` and `Pragma: no-cache` (RFC 6749 §5.1).
fn no_store() -> [(header::HeaderName, HeaderValue); 2] {
    [
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (header::PRAGMA, HeaderValue::from_static("no-cache")),
    ]
}

/// The request's origin: plain HTTP and the peer's IP address (the key of failed-authentication
/// throttling, shared with the `authenticate` tool). Forwarded headers are not trusted.
fn origin_of(request: &Request) -> Origin {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip());
    Origin::new(Transport::Http, peer)
}

/// The caller's `X-Request-Id` when it is short and printable, else a new id.
fn request_id_of(headers: &HeaderMap) -> String {
    headers
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .filter(|id| !id.is_empty() && id.len() <= 128 && id.chars().all(|c| c.is_ascii_graphic()))
        .map_or_else(crate::audit::new_request_id, str::to_owned)
}

async fn token(State(auth): State<AuthService>, request: Request) -> Response {
    let origin = origin_of(&request);
    let (parts, body) = request.into_parts();
    let request_id = request_id_of(&parts.headers);
    match token_request(&auth, &parts.headers, body, origin, request_id.clone()).await {
        Ok(response) => response,
        Err((error, basic)) => {
            // Refusals inside `AuthService::issue` are audited there; these are the earlier ones.
            let event = AuditEvent {
                request_id,
                detail: Some(format!("{}: {error}", error.code())),
                ..AuditEvent::new(Transport::Http, "token.issue", Outcome::Denied)
            };
            if let Err(audit_error) = auth.audit().record(event).await {
                tracing::error!(error = %audit_error, "cannot audit a refused token request");
                return oauth_error_response(&AuthError::Internal(String::new()), false);
            }
            oauth_error_response(&error, basic)
        }
    }
}

/// Parses and checks a token request; errors that happen before issuance carry whether Basic was used.
async fn token_request(
    auth: &AuthService,
    headers: &HeaderMap,
    body: Body,
    origin: Origin,
    request_id: String,
) -> Result<Response, (AuthError, bool)> {
    let form = Form::read(headers, body)
        .await
        .map_err(|error| (error, false))?;
    match form.get("grant_type") {
        None => {
            return Err((
                AuthError::InvalidRequest("grant_type is required".to_owned()),
                false,
            ));
        }
        Some("client_credentials") => {}
        Some(grant @ ("authorization_code" | "refresh_token")) => {
            let grant = grant.to_owned();
            return user_grant(auth, headers, &form, &grant, origin, request_id).await;
        }
        Some(_) => {
            return Err((
                AuthError::UnsupportedGrantType(
                    "supported grant types: authorization_code, refresh_token, client_credentials"
                        .to_owned(),
                ),
                false,
            ));
        }
    }
    let client = client_authentication(headers, &form)?;
    let issued = auth
        .issue(TokenRequest {
            credentials: client.credentials,
            app_id: form.get("app_id").map(str::to_owned),
            scope: form.get("scope").map(str::to_owned),
            resource: form.get("resource").map(str::to_owned),
            origin,
            request_id,
        })
        .await;
    Ok(match issued {
        Ok(issued) => (
            StatusCode::OK,
            no_store(),
            axum::Json(json!({
                "access_token": issued.access_token,
                "token_type": issued.token_type,
                "expires_in": issued.expires_in,
                "scope": issued.scope,
            })),
        )
            .into_response(),
        Err(error) => oauth_error_response(&error, client.basic),
    })
}

/// The `authorization_code` and `refresh_token` grants: a public client names itself with `client_id`
/// only; a confidential one authenticates as at the token endpoint.
async fn user_grant(
    auth: &AuthService,
    headers: &HeaderMap,
    form: &Form,
    grant: &str,
    origin: Origin,
    request_id: String,
) -> Result<Response, (AuthError, bool)> {
    let required = |name: &str| {
        form.get(name).map(str::to_owned).ok_or_else(|| {
            (
                AuthError::InvalidRequest(format!("{name} is required")),
                false,
            )
        })
    };
    let presented_credentials = headers.contains_key(header::AUTHORIZATION)
        || form.get("client_secret").is_some()
        || form.get("client_assertion").is_some();
    let (client, basic) = if presented_credentials {
        let authentication = client_authentication(headers, form)?;
        (
            GrantClient::Confidential(authentication.credentials),
            authentication.basic,
        )
    } else {
        let client_id = form.get("client_id").ok_or_else(|| {
            (
                AuthError::InvalidClient(
                    "client_id or client authentication is required".to_owned(),
                ),
                true,
            )
        })?;
        (
            GrantClient::Public {
                client_id: client_id.to_owned(),
            },
            false,
        )
    };
    let grant = if grant == "authorization_code" {
        UserGrant::AuthorizationCode {
            code: required("code")?,
            redirect_uri: form.get("redirect_uri").map(str::to_owned),
            code_verifier: form.get("code_verifier").map(str::to_owned),
        }
    } else {
        UserGrant::RefreshToken {
            refresh_token: required("refresh_token")?,
            scope: form.get("scope").map(str::to_owned),
        }
    };
    let issued = auth
        .issue_for_user(UserTokenRequest {
            client,
            grant,
            resource: form.get("resource").map(str::to_owned),
            origin,
            request_id,
        })
        .await;
    Ok(match issued {
        Ok(tokens) => {
            let mut body = json!({
                "access_token": tokens.access.access_token,
                "token_type": tokens.access.token_type,
                "expires_in": tokens.access.expires_in,
                "scope": tokens.access.scope,
            });
            if let Some(refresh_token) = tokens.refresh_token {
                body["refresh_token"] = json!(refresh_token);
            }
            (StatusCode::OK, no_store(), axum::Json(body)).into_response()
        }
        Err(error) => oauth_error_response(&error, basic),
    })
}

/// RFC 7591 dynamic registration: a JSON body, answered 201 with the client's metadata (and a secret
/// for a confidential client), or 400 `invalid_redirect_uri` / `invalid_client_metadata`.
async fn register(State(auth): State<AuthService>, request: Request) -> Response {
    let source = origin_of(&request).budget_key();
    let (parts, body) = request.into_parts();
    let request_id = request_id_of(&parts.headers);
    let is_json = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"));
    let parsed = if is_json {
        match axum::body::to_bytes(body, MAX_REGISTRATION_BYTES).await {
            Ok(bytes) => serde_json::from_slice::<RegistrationRequest>(&bytes).map_err(|_| {
                AuthError::InvalidClientMetadata("the body is not valid client metadata".to_owned())
            }),
            Err(_) => Err(AuthError::InvalidClientMetadata(
                "the body is too large".to_owned(),
            )),
        }
    } else {
        Err(AuthError::InvalidClientMetadata(
            "the body must be application/json".to_owned(),
        ))
    };
    let outcome = match parsed {
        Ok(metadata) => auth.register_dynamic_client(metadata, &source).await,
        Err(error) => Err(error),
    };
    let event = AuditEvent {
        request_id,
        client_id: outcome
            .as_ref()
            .ok()
            .map(|registered| registered.client_id.clone()),
        app_id: outcome.as_ref().ok().map(|_| "dcr".to_owned()),
        detail: Some(match &outcome {
            Ok(registered) => format!(
                "auth_method={} redirect_uris={}",
                registered.token_endpoint_auth_method,
                registered.redirect_uris.len()
            ),
            Err(error) => format!("{}: {error}", error.code()),
        }),
        ..AuditEvent::new(
            Transport::Http,
            "client.register",
            if outcome.is_ok() {
                Outcome::Success
            } else {
                Outcome::Denied
            },
        )
    };
    if let Err(error) = auth.audit().record(event).await {
        tracing::error!(error = %error, "cannot audit a registration");
        return oauth_error_response(&AuthError::Internal(String::new()), false);
    }
    match outcome {
        Ok(registered) => (StatusCode::CREATED, no_store(), axum::Json(registered)).into_response(),
        Err(error) => oauth_error_response(&error, false),
    }
}

/// Largest accepted registration request.
const MAX_REGISTRATION_BYTES: usize = 64 * 1024;

/// Reads the form and authenticates the calling client, auditing a refusal under `action`.
async fn authenticated_caller(
    auth: &AuthService,
    request: Request,
    action: &str,
) -> Result<(AuthenticatedClient, Form, String), Response> {
    let origin = origin_of(&request);
    let (parts, body) = request.into_parts();
    let request_id = request_id_of(&parts.headers);
    let refused = |error: AuthError, detail: String, basic: bool| {
        let event = AuditEvent {
            request_id: request_id.clone(),
            detail: Some(format!("{}: {detail}", error.code())),
            ..AuditEvent::new(Transport::Http, action, Outcome::Denied)
        };
        async move {
            if let Err(audit_error) = auth.audit().record(event).await {
                tracing::error!(error = %audit_error, "cannot audit a refused request");
                return oauth_error_response(&AuthError::Internal(String::new()), false);
            }
            oauth_error_response(&error, basic)
        }
    };
    let form = match Form::read(&parts.headers, body).await {
        Ok(form) => form,
        Err(error) => {
            let detail = error.to_string();
            return Err(refused(error, detail, false).await);
        }
    };
    let client = match client_authentication(&parts.headers, &form) {
        Ok(client) => client,
        Err((error, basic)) => {
            let detail = error.to_string();
            return Err(refused(error, detail, basic).await);
        }
    };
    match auth.authenticate_caller(&client.credentials, origin).await {
        Ok(record) => Ok((record, form, request_id)),
        Err((error, detail)) => Err(refused(error, detail, client.basic).await),
    }
}

async fn introspect(State(auth): State<AuthService>, request: Request) -> Response {
    let (caller, form, request_id) =
        match authenticated_caller(&auth, request, "token.introspect").await {
            Ok(found) => found,
            Err(response) => return response,
        };
    let Some(token) = form.get("token") else {
        return oauth_error_response(
            &AuthError::InvalidRequest("token is required".to_owned()),
            false,
        );
    };
    let body = auth.introspect(token, &caller).await;
    let event = AuditEvent {
        request_id,
        client_id: Some(caller.client_id().as_str().to_owned()),
        app_id: Some(caller.app_id().to_owned()),
        role: Some(caller.role().as_str().to_owned()),
        detail: Some(format!("active={}", body["active"] == Value::Bool(true))),
        ..AuditEvent::new(Transport::Http, "token.introspect", Outcome::Success)
    };
    if let Err(error) = auth.audit().record(event).await {
        tracing::error!(error = %error, "cannot audit an introspection");
        return oauth_error_response(&AuthError::Internal(String::new()), false);
    }
    (StatusCode::OK, no_store(), axum::Json(body)).into_response()
}

async fn revoke(State(auth): State<AuthService>, request: Request) -> Response {
    let (caller, form, request_id) =
        match authenticated_caller(&auth, request, "token.revoke").await {
            Ok(found) => found,
            Err(response) => return response,
        };
    let Some(token) = form.get("token") else {
        return oauth_error_response(
            &AuthError::InvalidRequest("token is required".to_owned()),
            false,
        );
    };
    let result = auth.revoke(token, &caller).await;
    let event = AuditEvent {
        request_id,
        client_id: Some(caller.client_id().as_str().to_owned()),
        app_id: Some(caller.app_id().to_owned()),
        role: Some(caller.role().as_str().to_owned()),
        detail: result.as_ref().err().map(|error| error.code().to_owned()),
        ..AuditEvent::new(
            Transport::Http,
            "token.revoke",
            if result.is_ok() {
                Outcome::Success
            } else {
                Outcome::Denied
            },
        )
    };
    if let Err(error) = auth.audit().record(event).await {
        tracing::error!(error = %error, "cannot audit a revocation");
        return oauth_error_response(&AuthError::Internal(String::new()), false);
    }
    match result {
        Ok(()) => (StatusCode::OK, no_store()).into_response(),
        Err(error) => oauth_error_response(&error, false),
    }
}

/// Public, cacheable JSON readable from any origin (discovery documents and keys).
fn public_json(body: Value) -> Response {
    (
        StatusCode::OK,
        [
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=300"),
            ),
            (
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            ),
        ],
        axum::Json(body),
    )
        .into_response()
}

async fn authorization_server_metadata(State(auth): State<AuthService>) -> Response {
    public_json(metadata::authorization_server(&auth))
}

async fn protected_resource_metadata(State(auth): State<AuthService>) -> Response {
    public_json(metadata::protected_resource(&auth))
}

async fn jwks(State(auth): State<AuthService>) -> Response {
    public_json(auth.jwks())
}
