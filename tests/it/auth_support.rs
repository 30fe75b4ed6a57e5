//! Helpers for the auth tests: registering clients, posting OAuth forms, services over a test database.

use std::time::Duration;

use ehr_mcp::audit::{AuditLog, AuditOptions};
use ehr_mcp::auth::{AuthService, AuthSettings, NewClient, RegisteredClient, clients};
use ehr_mcp::config::AuthArgs;
use ehr_mcp::domain::access::Role;
use ehr_mcp::domain::ids::Mrn;
use ehr_mcp::store::Store;

use crate::support::TestApp;

pub const TEST_ISSUER: &str = "http://127.0.0.1:7777";

/// Auth settings for a service under test (fast status refresh so cross-instance effects show quickly).
pub fn test_settings(hs256: Option<&str>) -> AuthSettings {
    let args = AuthArgs {
        public_url: None,
        token_ttl_seconds: 3600,
        jwt_secret_key: hs256.map(|secret| secret.to_owned().into()),
        redirect_hosts: vec!["claude.ai".to_owned()],
        cimd_allow_private: false,
        refresh_ttl_days: 30,
        key_encryption: ehr_mcp::config::KeyEncryptionArgs {
            key_encryption_key: Some(crate::support::TEST_KEK.to_owned().into()),
            key_encryption_key_file: None,
        },
    };
    let mut settings = args.auth_settings(TEST_ISSUER, false).expect("settings");
    settings.status_refresh = Duration::from_millis(100);
    settings
}

/// A token service over `store`, with its own audit writer.
pub async fn service(store: &Store, hs256: Option<&str>) -> AuthService {
    let audit = AuditLog::start(store.clone(), AuditOptions::default());
    AuthService::new(store.clone(), audit, test_settings(hs256))
        .await
        .expect("auth service")
}

/// Registers a client with the given role and scopes (and MRN001 for patients).
pub async fn register(store: &Store, role: Role, scopes: &str) -> RegisteredClient {
    register_with(store, role, scopes, None, None).await
}

pub async fn register_with(
    store: &Store,
    role: Role,
    scopes: &str,
    jwks: Option<String>,
    rate_limit: Option<i64>,
) -> RegisteredClient {
    clients::register(
        store,
        NewClient {
            app_id: format!("test-{}", role.as_str()),
            app_name: format!("Test {role} app"),
            role,
            scopes: scopes.to_owned(),
            patient_mrn: (role == Role::Patient).then(|| Mrn::parse("MRN001").expect("mrn")),
            jwks,
            rate_limit,
            client_id: None,
        },
    )
    .await
    .expect("register client")
}

/// POSTs a form to `path` on the app, optionally with Basic credentials.
pub async fn post_form(
    app: &TestApp,
    path: &str,
    form: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> reqwest::Response {
    let mut request = reqwest::Client::new().post(app.url(path)).form(form);
    if let Some((id, secret)) = basic {
        request = request.basic_auth(id, Some(secret));
    }
    request.send().await.expect("request")
}

/// A token for `client` from the token endpoint (client_secret_post).
pub async fn token_via_http(app: &TestApp, client: &RegisteredClient) -> String {
    let response = post_form(
        app,
        "/oauth/token",
        &[
            ("grant_type", "client_credentials"),
            ("client_id", client.client_id.as_str()),
            ("client_secret", client.client_secret.expose()),
        ],
        None,
    )
    .await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.expect("json");
    body["access_token"].as_str().expect("token").to_owned()
}

/// The origin of an HTTP request from `address`.
pub fn http_origin(address: &str) -> ehr_mcp::domain::origin::Origin {
    ehr_mcp::domain::origin::Origin::new(
        ehr_mcp::domain::origin::Transport::Http,
        Some(address.parse().expect("an IP address")),
    )
}

/// The tests' key-encryption key ([`crate::support::TEST_KEK`]) as the auth layer's type.
pub fn test_kek() -> ehr_mcp::auth::key_encryption::KeyEncryptionKey {
    ehr_mcp::auth::key_encryption::KeyEncryptionKey::parse(crate::support::TEST_KEK, "TEST_KEK")
        .expect("test KEK")
}

/// The ES256 signature of a compact JWS.
pub fn es256_signature(token: &str) -> p256::ecdsa::Signature {
    use base64::Engine as _;
    let signature = token.rsplit_once('.').unwrap().1;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(signature)
        .unwrap();
    p256::ecdsa::Signature::from_slice(&bytes).unwrap()
}

/// `token` with its ES256 signature in the low-S form, the only form the server issues and accepts.
pub fn low_s(token: String) -> String {
    use base64::Engine as _;
    match es256_signature(&token).normalize_s() {
        Some(low) => format!(
            "{}.{}",
            token.rsplit_once('.').unwrap().0,
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(low.to_bytes())
        ),
        None => token,
    }
}
