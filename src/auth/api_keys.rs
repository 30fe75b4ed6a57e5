//! API keys of clients: `ehrk_<key id>_<secret>`, 256-bit secrets stored as SHA-256, compared in
//! constant time. A key acts as its client (role, scopes, bound patient, rate limit, audit). Revoking a
//! key or disabling its client stops it at once: every use reads the key's row.

use serde::Serialize;
use subtle::ConstantTimeEq;

use crate::domain::ids::ClientId;
use crate::store::grants::ApiKeyRecord;
use crate::store::{Store, StoreError, now_text};

use super::scope::ScopeSet;
use super::secret::{ClientSecret, lookup_hash};
use super::{AuthError, AuthService, Principal};

/// The prefix that tells an API key from an access token.
pub const API_KEY_PREFIX: &str = "ehrk_";
/// How the `token_id` of an API key's principal starts (then the key id).
pub const API_KEY_TOKEN_ID_PREFIX: &str = "apikey:";
/// How often `last_used_at` is written for a busy key.
const TOUCH_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// A key as listed (no secret).
#[derive(Debug, Clone, Serialize)]
pub struct ApiKeyInfo {
    pub key_id: String,
    pub client_id: String,
    pub name: String,
    pub created_at: String,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<String>,
    pub revoked: bool,
}

impl From<ApiKeyRecord> for ApiKeyInfo {
    fn from(record: ApiKeyRecord) -> Self {
        Self {
            key_id: record.key_id,
            client_id: record.client_id,
            name: record.name,
            created_at: record.created_at,
            expires_at: record.expires_at,
            last_used_at: record.last_used_at,
            revoked: record.revoked_at.is_some(),
        }
    }
}

/// Creates a key for `client_id`; returns its listing and the key text (shown once).
pub async fn create(
    store: &Store,
    client_id: &ClientId,
    name: &str,
    expires_in_days: Option<u32>,
) -> Result<(ApiKeyInfo, String), AuthError> {
    if store.find_client(client_id).await?.is_none() {
        return Err(AuthError::NotFound("no such client".to_owned()));
    }
    let name = name.trim();
    if name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(AuthError::InvalidRequest(
            "--name must be at most 100 printable characters".to_owned(),
        ));
    }
    let key_id = uuid::Uuid::new_v4().simple().to_string();
    let secret = ClientSecret::generate();
    let record = ApiKeyRecord {
        key_id: key_id.clone(),
        key_hash: lookup_hash(secret.expose()),
        client_id: client_id.as_str().to_owned(),
        name: if name.is_empty() { "api key" } else { name }.to_owned(),
        created_at: now_text(),
        expires_at: expires_in_days
            .map(|days| chrono::Utc::now().timestamp() + i64::from(days) * 86_400),
        last_used_at: None,
        revoked_at: None,
    };
    store.insert_api_key(&record).await?;
    let text = format!("{API_KEY_PREFIX}{key_id}_{}", secret.expose());
    Ok((ApiKeyInfo::from(record), text))
}

pub async fn list(
    store: &Store,
    client_id: Option<&ClientId>,
) -> Result<Vec<ApiKeyInfo>, AuthError> {
    Ok(store
        .list_api_keys(client_id.map(ClientId::as_str))
        .await?
        .into_iter()
        .map(ApiKeyInfo::from)
        .collect())
}

pub async fn revoke(store: &Store, key_id: &str) -> Result<(), AuthError> {
    store
        .revoke_api_key(key_id)
        .await
        .map_err(|error| match error {
            StoreError::NotFound { .. } => AuthError::NotFound("no such active API key".to_owned()),
            other => AuthError::from(other),
        })
}

impl AuthService {
    /// The client behind an API key (the text after [`API_KEY_PREFIX`]); [`AuthService::validate`]
    /// sends keys here.
    pub(super) async fn validate_api_key(&self, rest: &str) -> Result<Principal, AuthError> {
        let refused = || AuthError::Unauthenticated("invalid API key".to_owned());
        let (key_id, secret) = rest.split_once('_').ok_or_else(refused)?;
        if key_id.len() != 32 || !key_id.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(refused());
        }
        let Some(key) = self.store().find_api_key(key_id).await? else {
            return Err(refused());
        };
        let presented = lookup_hash(secret);
        if !bool::from(presented.as_bytes().ct_eq(key.key_hash.as_bytes())) {
            return Err(refused());
        }
        self.principal_of_key(key).await
    }

    /// The principal of an API key validated earlier ([`AuthService::recheck`]): its row is read again.
    pub(super) async fn recheck_api_key(&self, key_id: &str) -> Result<Principal, AuthError> {
        match self.store().find_api_key(key_id).await? {
            Some(key) => self.principal_of_key(key).await,
            None => Err(AuthError::Unauthenticated("invalid API key".to_owned())),
        }
    }

    /// The client behind a key whose secret matched: refused when the key is revoked or expired or its
    /// client disabled.
    async fn principal_of_key(&self, key: ApiKeyRecord) -> Result<Principal, AuthError> {
        let refused = || AuthError::Unauthenticated("invalid API key".to_owned());
        let key_id = key.key_id.as_str();
        let now = chrono::Utc::now().timestamp();
        if key.revoked_at.is_some() || key.expires_at.is_some_and(|at| at <= now) {
            return Err(refused());
        }
        let client_id = ClientId::parse(&key.client_id).map_err(|_| refused())?;
        let Some(client) = self.store().find_client(&client_id).await? else {
            return Err(refused());
        };
        if !client.is_active {
            return Err(AuthError::Unauthenticated(
                "invalid API key: client disabled".to_owned(),
            ));
        }
        let touched = self.inner.api_key_touches.get(key_id).map(|at| *at);
        if touched.is_none_or(|at| at.elapsed() >= TOUCH_EVERY) {
            self.inner
                .api_key_touches
                .insert(key_id.to_owned(), std::time::Instant::now());
            if let Err(error) = self.store().touch_api_key(key_id).await {
                tracing::warn!(error = %error, "cannot record API key use");
            }
        }
        Ok(Principal {
            client_id: client.client_id,
            app_id: client.app_id,
            app_name: client.app_name,
            role: client.role,
            scopes: ScopeSet::parse_canonical(&client.scopes)
                .map_err(|_| AuthError::Internal("stored scopes are invalid".to_owned()))?,
            patient: client.patient_mrn,
            user: None,
            token_id: format!("{API_KEY_TOKEN_ID_PREFIX}{key_id}"),
            expires_at: key.expires_at.unwrap_or(i64::MAX),
        })
    }
}
