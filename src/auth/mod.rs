//! Authentication and authorisation: OAuth clients and secrets, signing keys and JWKS, token issuance
//! and validation (one function for every transport), scopes, the policy table, rate limits.
//!
//! Invariants: every token is checked by [`AuthService::validate`]; every authorisation decision is
//! [`policy::authorize`]; every token issued or refused writes one audit row before the answer leaves.

use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use secrecy::{ExposeSecret, SecretString};

use crate::domain::access::Role;
use crate::domain::audit::AuditSink;
use crate::domain::ids::{ClientId, Mrn};
use crate::domain::user::Username;
use crate::store::Store;

pub mod api_keys;
pub mod assertion;
pub mod cimd;
pub mod clients;
pub mod demo;
mod error;
mod issuance;
pub mod key_encryption;
pub mod keys;
pub mod limits;
pub mod policy;
pub mod registration;
pub mod scope;
pub mod secret;
pub mod signin;
pub mod token;
pub mod tool;
pub mod user_tokens;
pub mod users;
mod validation;

pub use clients::{ClientInfo, NewClient, RegisteredClient};
pub use error::{AuthError, UNAVAILABLE_RETRY_AFTER, retry_after_seconds};
pub use issuance::{AuthenticatedClient, ClientCredentials, TokenRequest};
pub use scope::{Scope, ScopeSet};
pub use tool::{DataKind, Tool};

/// The authenticated caller of a request, from a validated access token.
#[derive(Clone, Debug)]
pub struct Principal {
    pub client_id: ClientId,
    pub app_id: String,
    pub app_name: String,
    pub role: Role,
    pub scopes: ScopeSet,
    /// The bound patient of a patient client (or of a signed-in patient).
    pub patient: Option<Mrn>,
    /// The person who signed in (authorization-code tokens); `None` for a machine client or API key.
    pub user: Option<Username>,
    /// The token's `jti`.
    pub token_id: String,
    /// The token's `exp`, Unix seconds.
    pub expires_at: i64,
}

/// A newly issued access token and what it grants.
#[derive(Clone, Debug)]
pub struct IssuedToken {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    pub scope: String,
    pub client_id: ClientId,
    pub app_id: String,
    pub app_name: String,
    pub role: Role,
}

/// Settings of the token service.
#[derive(Clone, Debug)]
pub struct AuthSettings {
    /// The public base URL (no trailing slash); the `iss` of our tokens.
    pub issuer: String,
    /// `{issuer}/mcp`: the `aud` of our tokens and the RFC 8707/9728 resource.
    pub resource_url: String,
    pub token_ttl: Duration,
    /// Clock skew tolerated on `exp`/`nbf`.
    pub leeway: Duration,
    /// HS256 shared key (the earlier system's mode), only when the operator sets `JWT_SECRET_KEY`.
    pub hs256_secret: Option<SecretString>,
    pub throttle: limits::ThrottleSettings,
    /// How often this instance picks up revocations, disabled clients and rotated keys made elsewhere.
    pub status_refresh: Duration,
    /// Redirect URI policy of dynamic registration and client metadata documents.
    pub redirects: registration::RedirectPolicy,
    /// Fetch client metadata documents from private and loopback addresses.
    pub cimd_allow_private: bool,
    pub refresh_ttl: Duration,
    /// Lifetime of an authorization code.
    pub code_ttl: Duration,
    /// Seals the private signing keys at rest; `None` keeps them in clear (`--demo` only).
    pub key_encryption: Option<key_encryption::KeyEncryptionKey>,
}

/// The shortest `JWT_SECRET_KEY` accepted (256 bits).
pub const MIN_HS256_SECRET_BYTES: usize = 32;

impl AuthSettings {
    /// Settings for a server whose public base URL is `public_base_url`, issuing tokens valid for
    /// `token_ttl`, signed with `hs256_secret` when given (else ES256 keys from the database).
    pub fn new(
        public_base_url: &str,
        token_ttl: Duration,
        hs256_secret: Option<SecretString>,
    ) -> Result<Self, AuthError> {
        if let Some(secret) = &hs256_secret {
            if secret.expose_secret().len() < MIN_HS256_SECRET_BYTES {
                return Err(AuthError::Config(format!(
                    "JWT_SECRET_KEY must be at least {MIN_HS256_SECRET_BYTES} bytes"
                )));
            }
        }
        let issuer = public_base_url.trim_end_matches('/').to_owned();
        Ok(Self {
            resource_url: format!("{issuer}/mcp"),
            issuer,
            token_ttl,
            leeway: Duration::from_secs(30),
            hs256_secret,
            throttle: limits::ThrottleSettings::default(),
            status_refresh: Duration::from_secs(1),
            // Only loopback redirects until the operator's allowed hosts are set (`config::AuthArgs`).
            redirects: registration::RedirectPolicy::new(&[]),
            cimd_allow_private: false,
            refresh_ttl: Duration::from_secs(30 * 86_400),
            code_ttl: Duration::from_secs(60),
            key_encryption: None,
        })
    }

    pub fn token_endpoint(&self) -> String {
        format!("{}/oauth/token", self.issuer)
    }
}

/// The token service shared by every transport. Cheap to clone.
#[derive(Clone)]
pub struct AuthService {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    audit: Arc<dyn AuditSink>,
    settings: AuthSettings,
    token_endpoint: String,
    keys: keys::KeyRing,
    codec: token::TokenCodec,
    limits: limits::Limits,
    cache: validation::TokenCache,
    /// client id → (active, rate limit), kept current by local changes and the status refresh.
    clients: DashMap<String, validation::ClientStatus>,
    /// Revoked token ids → their expiry.
    revoked: DashMap<String, i64>,
    /// username → active, for user tokens; kept current like `clients`.
    users: DashMap<String, bool>,
    /// Failed logins (per address, per username).
    login_limits: limits::Limits,
    /// (username, address) pairs that signed in here: exempt from the per-username login allowance.
    known_logins: DashMap<String, ()>,
    /// API key id → when its `last_used_at` was last written.
    api_key_touches: DashMap<String, std::time::Instant>,
    /// Dynamic registrations per address.
    registration_limits: limits::Limits,
    /// Client metadata documents by URL.
    cimd_cache: DashMap<String, cimd::CachedClient>,
}

impl std::fmt::Debug for AuthService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthService")
            .field("issuer", &self.inner.settings.issuer)
            .finish_non_exhaustive()
    }
}

impl AuthService {
    /// Loads (or creates) the signing keys and client statuses, and starts the status refresh task.
    /// Token issuance and refusals are recorded in `audit`.
    pub async fn new(
        store: Store,
        audit: impl AuditSink + 'static,
        settings: AuthSettings,
    ) -> Result<Self, AuthError> {
        let publish_retired_for = settings.token_ttl + settings.leeway;
        let keys =
            keys::KeyRing::load(&store, publish_retired_for, settings.key_encryption.clone())
                .await?;
        let codec = token::TokenCodec::new(
            settings.issuer.clone(),
            settings.resource_url.clone(),
            settings.token_ttl,
            settings.leeway,
            settings.hs256_secret.as_ref(),
        );
        let service = Self {
            inner: Arc::new(Inner {
                token_endpoint: settings.token_endpoint(),
                limits: limits::Limits::new(settings.throttle),
                cache: validation::TokenCache::default(),
                clients: DashMap::new(),
                revoked: DashMap::new(),
                users: DashMap::new(),
                login_limits: limits::Limits::new(settings.throttle),
                known_logins: DashMap::new(),
                api_key_touches: DashMap::new(),
                registration_limits: limits::Limits::new(limits::ThrottleSettings::default()),
                cimd_cache: DashMap::new(),
                store,
                audit: Arc::new(audit),
                keys,
                codec,
                settings,
            }),
        };
        service.refresh_status(None).await?;
        validation::spawn_status_refresh(&service);
        Ok(service)
    }

    pub fn issuer(&self) -> &str {
        &self.inner.settings.issuer
    }

    /// The MCP resource URL (`{public base}/mcp`): token audience, RFC 9728 `resource`.
    pub fn resource_url(&self) -> &str {
        &self.inner.settings.resource_url
    }

    /// The RFC 9728 metadata URL of the MCP resource, for `WWW-Authenticate: Bearer resource_metadata=…`.
    pub fn resource_metadata_url(&self) -> String {
        format!(
            "{}/.well-known/oauth-protected-resource/mcp",
            self.inner.settings.issuer
        )
    }

    pub fn token_endpoint(&self) -> &str {
        &self.inner.token_endpoint
    }

    pub fn settings(&self) -> &AuthSettings {
        &self.inner.settings
    }

    /// Where auth records its events (the audit log).
    pub fn audit(&self) -> &dyn AuditSink {
        self.inner.audit.as_ref()
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The public signing keys (`{"keys": [...]}`).
    pub fn jwks(&self) -> serde_json::Value {
        self.inner.keys.jwks()
    }

    /// Algorithms our access tokens may carry (ES256, plus HS256 when `JWT_SECRET_KEY` is set).
    pub fn accepted_token_algorithms(&self) -> Vec<&'static str> {
        self.inner.codec.accepted_algorithms()
    }

    /// Registers a client (dynamic registration, CIMD). Returns the secret once.
    pub async fn register_client(&self, request: NewClient) -> Result<RegisteredClient, AuthError> {
        let registered = clients::register(&self.inner.store, request).await?;
        self.client_registered(&registered);
        Ok(registered)
    }

    /// Checks a new client and gives it its id and secret without storing it: the `register_client`
    /// tool stores it with [`clients::PreparedClient::insert`] in the transaction of its audit row, then
    /// calls [`Self::client_registered`].
    pub fn prepare_client(&self, request: NewClient) -> Result<clients::PreparedClient, AuthError> {
        clients::prepare(request)
    }

    /// Makes a client stored by the caller known to token validation at once.
    pub fn client_registered(&self, registered: &RegisteredClient) {
        self.inner.clients.insert(
            registered.client_id.as_str().to_owned(),
            validation::ClientStatus {
                active: true,
                rate_limit: registered.rate_limit,
            },
        );
    }

    pub async fn list_clients(&self) -> Result<Vec<ClientInfo>, AuthError> {
        clients::list(&self.inner.store).await
    }

    /// Disables a client: its tokens stop working at once, here and (within the refresh interval) on
    /// every other instance.
    pub async fn disable_client(&self, client_id: &ClientId) -> Result<(), AuthError> {
        clients::set_active(&self.inner.store, client_id, false).await?;
        if let Some(mut status) = self.inner.clients.get_mut(client_id.as_str()) {
            status.active = false;
        }
        self.inner.cache.forget_client(client_id.as_str());
        Ok(())
    }

    pub async fn enable_client(&self, client_id: &ClientId) -> Result<(), AuthError> {
        clients::set_active(&self.inner.store, client_id, true).await?;
        if let Some(mut status) = self.inner.clients.get_mut(client_id.as_str()) {
            status.active = true;
        }
        Ok(())
    }

    /// A new secret for the client (shown once); the old one stops working at once.
    pub async fn rotate_client_secret(
        &self,
        client_id: &ClientId,
    ) -> Result<secret::ClientSecret, AuthError> {
        clients::rotate_secret(&self.inner.store, client_id).await
    }
}
