//! The FHIR R4 HTTP API at `/fhir/r4/` (`application/fhir+json`): `metadata`, read, search and
//! `Patient/{id}/$everything`, plus the SMART configuration (`/.well-known/smart-configuration`, also
//! under the FHIR base). This file only parses HTTP and maps errors: every read is handed to the tool
//! layer's [`EhrServer::fhir`], which runs the tools' lifecycle (identity, rate limit, policy, audit).
//! Errors are OperationOutcomes: 400 invalid, 401 (with `WWW-Authenticate`), 403, 404, 405, 429 (with
//! `Retry-After`), an opaque 500.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, Path, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use super::bearer::token_from_headers;
use crate::domain::origin::Transport;
use crate::fhir::capability::{OAuthUris, capability_statement};
use crate::tools::fhir::FhirRequest;
use crate::tools::{EhrServer, Session, ToolError, ToolServices};

const FHIR_JSON: &str = "application/fhir+json; charset=utf-8";
/// Most query parameters one request may carry.
const MAX_PARAMS: usize = 32;

#[derive(Clone)]
struct FhirState {
    tools: Arc<ToolServices>,
    /// `{public base}/fhir/r4`.
    base: String,
    public_base_url: String,
}

/// The FHIR routes with their state; merge into the application router.
pub fn router(tools: Arc<ToolServices>, public_base_url: &str) -> Router {
    let state = FhirState {
        tools,
        base: format!("{public_base_url}/fhir/r4"),
        public_base_url: public_base_url.to_owned(),
    };
    Router::new()
        .route("/.well-known/smart-configuration", get(smart_configuration))
        .route(
            "/fhir/r4/.well-known/smart-configuration",
            get(smart_configuration),
        )
        .route("/fhir/r4/metadata", get(metadata))
        .route("/fhir/r4/{resource_type}", get(search))
        .route("/fhir/r4/{resource_type}/{id}", get(read))
        .route("/fhir/r4/{resource_type}/{id}/{operation}", get(operation))
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

/// The `authorization_server` metadata fields SMART App Launch 2.x asks for, plus its own.
fn smart_document(state: &FhirState) -> Value {
    let server = super::oauth::metadata::authorization_server(&state.tools.auth);
    let grants = server["grant_types_supported"].clone();
    let has_grant = |grant: &str| {
        grants
            .as_array()
            .is_some_and(|list| list.iter().any(|g| g == grant))
    };
    let mut capabilities = vec![
        "client-confidential-symmetric",
        "client-confidential-asymmetric",
        "permission-v1",
        "permission-v2",
        "permission-patient",
        "permission-user",
    ];
    if has_grant("authorization_code") {
        capabilities.extend([
            "launch-standalone",
            "client-public",
            "context-standalone-patient",
        ]);
    }
    if has_grant("refresh_token") {
        capabilities.push("permission-offline");
    }
    let mut scopes: Vec<Value> = server["scopes_supported"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    scopes.extend(
        [
            "patient/*.rs",
            "patient/*.read",
            "user/*.rs",
            "user/*.read",
            "system/*.rs",
            "system/*.read",
            "user/Observation.rs",
        ]
        .map(Value::from),
    );
    json!({
        "issuer": server["issuer"],
        "jwks_uri": server["jwks_uri"],
        "authorization_endpoint": server["authorization_endpoint"],
        "token_endpoint": server["token_endpoint"],
        "token_endpoint_auth_methods_supported": server["token_endpoint_auth_methods_supported"],
        "token_endpoint_auth_signing_alg_values_supported": server["token_endpoint_auth_signing_alg_values_supported"],
        "registration_endpoint": server.get("registration_endpoint"),
        "introspection_endpoint": server["introspection_endpoint"],
        "revocation_endpoint": server["revocation_endpoint"],
        "grant_types_supported": grants,
        "response_types_supported": server["response_types_supported"],
        "scopes_supported": scopes,
        "code_challenge_methods_supported": ["S256"],
        "capabilities": capabilities,
    })
}

async fn smart_configuration(State(state): State<FhirState>) -> Response {
    let mut document = smart_document(&state);
    if let Value::Object(fields) = &mut document {
        fields.retain(|_, value| !value.is_null());
    }
    let mut response = axum::Json(document).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}

async fn metadata(State(state): State<FhirState>) -> Response {
    let smart = smart_document(&state);
    let oauth = OAuthUris {
        token: smart["token_endpoint"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        authorize: smart["authorization_endpoint"].as_str().map(str::to_owned),
    };
    let statement = capability_statement(
        &state.base,
        env!("CARGO_PKG_VERSION"),
        &oauth,
        chrono::Utc::now().naive_utc(),
    );
    fhir_response(StatusCode::OK, &statement)
}

async fn read(
    State(state): State<FhirState>,
    Path((resource_type, id)): Path<(String, String)>,
    request: Request,
) -> Response {
    let request_for = FhirRequest::Read { resource_type, id };
    serve(&state, request, request_for).await
}

async fn search(
    State(state): State<FhirState>,
    Path(resource_type): Path<String>,
    RawQuery(query): RawQuery,
    request: Request,
) -> Response {
    let params = match parse_query(query.as_deref()) {
        Ok(params) => params,
        Err(message) => return outcome(StatusCode::BAD_REQUEST, "invalid", &message),
    };
    let request_for = FhirRequest::Search {
        resource_type,
        params,
    };
    serve(&state, request, request_for).await
}

async fn operation(
    State(state): State<FhirState>,
    Path((resource_type, id, operation)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
    request: Request,
) -> Response {
    if resource_type != "Patient" || operation != "$everything" {
        return not_found("the only operation served is Patient/{id}/$everything");
    }
    let params = match parse_query(query.as_deref()) {
        Ok(params) => params,
        Err(message) => return outcome(StatusCode::BAD_REQUEST, "invalid", &message),
    };
    serve(&state, request, FhirRequest::Everything { id, params }).await
}

/// Decoded `name=value` pairs, at most [`MAX_PARAMS`].
fn parse_query(query: Option<&str>) -> Result<Vec<(String, String)>, String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query.unwrap_or(""))
        .map_err(|_| "the query string is not valid form encoding".to_owned())?;
    if pairs.len() > MAX_PARAMS {
        return Err(format!("at most {MAX_PARAMS} query parameters"));
    }
    Ok(pairs)
}

/// Hands the request to the tool layer as the caller its `Authorization` header names.
async fn serve(state: &FhirState, request: Request, fhir_request: FhirRequest) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(address)| address.ip());
    let session = match token_from_headers(request.headers()) {
        Ok(Some(token)) => Session::with_token(Transport::Http, token),
        Ok(None) => Session::anonymous(Transport::Http),
        Err(reason) => {
            return error_response(state, ToolError::Unauthenticated(reason.to_owned()));
        }
    }
    .with_peer(peer);
    let server = EhrServer::new(state.tools.clone(), Arc::new(session));
    match server.fhir(None, fhir_request, &state.base).await {
        Ok(resource) => fhir_response(StatusCode::OK, &resource),
        Err(error) => error_response(state, error),
    }
}

fn fhir_response(status: StatusCode, resource: &Value) -> Response {
    let body = serde_json::to_vec(resource).unwrap_or_default();
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    (status, headers, body).into_response()
}

/// An OperationOutcome with one issue.
fn outcome(status: StatusCode, code: &str, message: &str) -> Response {
    fhir_response(
        status,
        &crate::fhir::operation_outcome("error", code, message),
    )
}

fn not_found(message: &str) -> Response {
    outcome(StatusCode::NOT_FOUND, "not-found", message)
}

async fn method_not_allowed() -> Response {
    let mut response = outcome(
        StatusCode::METHOD_NOT_ALLOWED,
        "not-supported",
        "this FHIR API is read-only: GET only",
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET"));
    response
}

/// The one mapping of tool-layer errors to FHIR HTTP answers.
fn error_response(state: &FhirState, error: ToolError) -> Response {
    let message = error.to_string();
    let (status, code) = match &error {
        ToolError::Unauthenticated(_) => (StatusCode::UNAUTHORIZED, "login"),
        ToolError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
        ToolError::NotFound(_) => (StatusCode::NOT_FOUND, "not-found"),
        ToolError::InvalidInput(_) => (StatusCode::BAD_REQUEST, "invalid"),
        ToolError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
        ToolError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "throttled"),
        ToolError::Unavailable { .. } => (StatusCode::SERVICE_UNAVAILABLE, "transient"),
        ToolError::Internal { .. } => (StatusCode::INTERNAL_SERVER_ERROR, "exception"),
    };
    let message = match &error {
        ToolError::Unauthenticated(_) => {
            "a valid bearer token is required: Authorization: Bearer <token> from the token endpoint"
                .to_owned()
        }
        _ => message,
    };
    let mut response = outcome(status, code, &message);
    let headers = response.headers_mut();
    match error {
        ToolError::Unauthenticated(_) => {
            let challenge = format!(
                "Bearer realm=\"fhir\", resource_metadata=\"{}/.well-known/oauth-protected-resource\"",
                state.public_base_url
            );
            if let Ok(value) = HeaderValue::from_str(&challenge) {
                headers.insert(header::WWW_AUTHENTICATE, value);
            }
        }
        ToolError::RateLimited {
            retry_after_seconds,
        }
        | ToolError::Unavailable {
            retry_after_seconds,
        } => {
            if let Ok(value) = HeaderValue::from_str(&retry_after_seconds.to_string()) {
                headers.insert(header::RETRY_AFTER, value);
            }
        }
        _ => {}
    }
    response
}
