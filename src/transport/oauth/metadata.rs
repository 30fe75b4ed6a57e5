//! Discovery documents: RFC 8414 authorization server metadata, RFC 9728 protected resource metadata.

use serde_json::{Value, json};

use crate::auth::AuthService;
use crate::auth::assertion::ASSERTION_ALGORITHMS;
use crate::auth::scope::Scope;

/// Token endpoint authentication: public clients of the authorization-code flow use `none` (PKCE).
const TOKEN_AUTH_METHODS: [&str; 4] = [
    "none",
    "client_secret_basic",
    "client_secret_post",
    "private_key_jwt",
];

const CLIENT_AUTH_METHODS: [&str; 3] = [
    "client_secret_basic",
    "client_secret_post",
    "private_key_jwt",
];

fn scopes_supported() -> Vec<&'static str> {
    Scope::ALL.iter().map(|scope| scope.as_str()).collect()
}

/// RFC 8414 (served at `/.well-known/openid-configuration` too): the authorization code flow with
/// PKCE S256, refresh tokens, dynamic registration, client ID metadata documents, RFC 9207 `iss`.
pub fn authorization_server(auth: &AuthService) -> Value {
    let issuer = auth.issuer();
    json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/oauth/authorize"),
        "token_endpoint": auth.token_endpoint(),
        "introspection_endpoint": format!("{issuer}/oauth/introspect"),
        "revocation_endpoint": format!("{issuer}/oauth/revoke"),
        "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
        "registration_endpoint": format!("{issuer}/oauth/register"),
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "code_challenge_methods_supported": ["S256"],
        "client_id_metadata_document_supported": true,
        "authorization_response_iss_parameter_supported": true,
        "scopes_supported": scopes_supported(),
        "token_endpoint_auth_methods_supported": TOKEN_AUTH_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGORITHMS,
        "introspection_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS,
        "introspection_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGORITHMS,
        "revocation_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS,
        "revocation_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGORITHMS,
        "protected_resources": [auth.resource_url()],
    })
}

/// RFC 9728 metadata of the MCP resource (`{base}/mcp`).
pub fn protected_resource(auth: &AuthService) -> Value {
    json!({
        "resource": auth.resource_url(),
        "authorization_servers": [auth.issuer()],
        "jwks_uri": format!("{}/.well-known/jwks.json", auth.issuer()),
        "scopes_supported": scopes_supported(),
        "bearer_methods_supported": ["header"],
        "resource_signing_alg_values_supported": auth.accepted_token_algorithms(),
        "resource_name": "EHR MCP server",
    })
}
