//! Token validation with a cache: the first sight of a token pays for the signature check and two
//! lookups; repeats cost a map lookup. Revocation and disabling act at once because every cache hit is
//! checked against the in-memory revocation set and client status, which local changes update
//! immediately and a background refresh keeps in step with other instances.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use dashmap::DashMap;

use super::token::{AccessClaims, TokenCodec};
use super::{AuthError, AuthService, Inner, Principal};
use crate::telemetry::metrics;

/// What validation needs to know about a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientStatus {
    pub active: bool,
    pub rate_limit: i64,
}

/// A validated token.
pub(super) struct CachedToken {
    pub principal: Principal,
    pub claims: Arc<AccessClaims>,
}

/// Most tokens kept; beyond this, expired ones are dropped first, then all.
const CACHE_CAPACITY: usize = 100_000;

/// Validated tokens by their text.
#[derive(Default)]
pub(super) struct TokenCache {
    tokens: DashMap<String, Arc<CachedToken>>,
}

impl TokenCache {
    fn get(&self, token: &str) -> Option<Arc<CachedToken>> {
        self.tokens.get(token).map(|entry| Arc::clone(&entry))
    }

    fn insert(&self, token: &str, cached: Arc<CachedToken>) {
        if self.tokens.len() >= CACHE_CAPACITY {
            let now = chrono::Utc::now().timestamp();
            self.tokens.retain(|_, entry| entry.claims.exp > now);
            if self.tokens.len() >= CACHE_CAPACITY {
                self.tokens.clear();
            }
        }
        self.tokens.insert(token.to_owned(), cached);
    }

    pub fn forget(&self, token: &str) {
        self.tokens.remove(token);
    }

    pub fn forget_client(&self, client_id: &str) {
        self.tokens
            .retain(|_, entry| entry.principal.client_id.as_str() != client_id);
    }

    pub fn forget_user(&self, username: &str) {
        self.tokens.retain(|_, entry| {
            entry
                .principal
                .user
                .as_ref()
                .is_none_or(|user| user.as_str() != username)
        });
    }

    fn drop_expired(&self, before: i64) {
        self.tokens.retain(|_, entry| entry.claims.exp >= before);
    }
}

impl AuthService {
    /// Validates an access token: algorithm allow-list, signature, `iss`, `aud`, `exp`/`nbf` (with a small
    /// leeway), revocation, and that the client is still active. Every transport calls this.
    /// An API key (`ehrk_…`) is checked as one instead.
    pub async fn validate(&self, token: &str) -> Result<Principal, AuthError> {
        if let Some(key) = token.strip_prefix(super::api_keys::API_KEY_PREFIX) {
            return self.validate_api_key(key).await;
        }
        self.validate_with_claims(token)
            .await
            .map(|cached| cached.principal.clone())
            .inspect_err(|error| {
                if matches!(error, AuthError::Unauthenticated(_)) {
                    metrics::token_refused("invalid_token");
                }
            })
    }

    pub(super) async fn validate_with_claims(
        &self,
        token: &str,
    ) -> Result<Arc<CachedToken>, AuthError> {
        let inner = &self.inner;
        if let Some(cached) = inner.cache.get(token) {
            self.check_still_valid(&cached.principal)?;
            return Ok(cached);
        }
        let claims = match inner.codec.decode(token, &inner.keys) {
            Err(error) if TokenCodec::is_unknown_key_error(&error) => {
                // Another instance may have rotated the key a moment ago.
                inner.keys.reload(&inner.store).await?;
                inner.codec.decode(token, &inner.keys)?
            }
            other => other?,
        };
        let principal = claims.principal()?;
        if inner.revoked.contains_key(&claims.jti)
            || inner.store.is_token_revoked(&claims.jti).await?
        {
            inner.revoked.insert(claims.jti.clone(), claims.exp);
            return Err(revoked());
        }
        let client = inner.store.find_client(&principal.client_id).await?;
        let Some(client) = client else {
            return Err(client_inactive());
        };
        inner.clients.insert(
            client.client_id.as_str().to_owned(),
            ClientStatus {
                active: client.is_active,
                rate_limit: client.rate_limit,
            },
        );
        if !client.is_active {
            return Err(client_inactive());
        }
        if let Some(user) = &principal.user {
            if self.active_user(user).await?.is_none() {
                return Err(user_inactive());
            }
        }
        let cached = Arc::new(CachedToken {
            principal,
            claims: Arc::new(claims),
        });
        inner.cache.insert(token, Arc::clone(&cached));
        Ok(cached)
    }

    /// Re-checks a principal validated earlier (a WebSocket connection's, a session's) without its
    /// token: expiry, revocation, and that its client and user are still active — the in-memory checks
    /// every cached token gets, so revocation and disabling act at once on open connections too. An
    /// API key's row is read again, as on every use of the key.
    pub async fn recheck(&self, principal: Principal) -> Result<Principal, AuthError> {
        if let Some(key_id) = principal
            .token_id
            .strip_prefix(super::api_keys::API_KEY_TOKEN_ID_PREFIX)
        {
            return self.recheck_api_key(key_id).await;
        }
        self.check_still_valid(&principal).inspect_err(|_| {
            metrics::token_refused("invalid_token");
        })?;
        Ok(principal)
    }

    fn check_still_valid(&self, principal: &Principal) -> Result<(), AuthError> {
        let inner = &self.inner;
        let now = chrono::Utc::now().timestamp();
        let leeway = i64::try_from(inner.settings.leeway.as_secs()).unwrap_or(0);
        if principal.expires_at < now - leeway {
            return Err(AuthError::Unauthenticated(
                "invalid access token: expired".to_owned(),
            ));
        }
        if inner.revoked.contains_key(&principal.token_id) {
            return Err(revoked());
        }
        let active = inner
            .clients
            .get(principal.client_id.as_str())
            .is_some_and(|status| status.active);
        if !active {
            return Err(client_inactive());
        }
        if let Some(user) = &principal.user {
            let active = inner.users.get(user.as_str()).is_some_and(|active| *active);
            if !active {
                return Err(user_inactive());
            }
        }
        Ok(())
    }

    /// Takes one request from the caller's hourly allowance (its client's `rate_limit`).
    pub fn check_rate_limit(&self, principal: &Principal) -> Result<(), AuthError> {
        let per_hour = self
            .inner
            .clients
            .get(principal.client_id.as_str())
            .map_or(super::clients::DEFAULT_RATE_LIMIT, |status| {
                status.rate_limit
            });
        self.inner
            .limits
            .check_client(principal.client_id.as_str(), per_hour)
            .map_err(|retry_after| {
                metrics::rate_limited("client_requests");
                AuthError::RateLimited { retry_after }
            })
    }

    /// Picks up client status and revocations changed since `since` (ISO text; everything when `None`)
    /// and re-reads the signing keys if they changed.
    pub(super) async fn refresh_status(&self, since: Option<&str>) -> Result<(), AuthError> {
        let inner = &self.inner;
        for status in inner.store.client_statuses_since(since).await? {
            if !status.is_active {
                inner.cache.forget_client(&status.client_id);
            }
            if let Some(existing) = inner.clients.get(&status.client_id) {
                if existing.rate_limit != status.rate_limit {
                    inner.limits.forget_client(&status.client_id);
                }
            }
            inner.clients.insert(
                status.client_id,
                ClientStatus {
                    active: status.is_active,
                    rate_limit: status.rate_limit,
                },
            );
        }
        if let Some(since) = since {
            for (username, active) in inner.store.user_statuses_since(since).await? {
                if !active {
                    inner.cache.forget_user(&username);
                }
                inner.users.insert(username, active);
            }
        }
        for revoked in inner.store.revoked_tokens_since(since).await? {
            inner.revoked.insert(revoked.jti, revoked.expires_at);
        }
        inner.keys.reload(&inner.store).await?;
        Ok(())
    }

    /// Forgets expired state (cache entries, revocations, throttles) and purges expired rows.
    async fn housekeeping(&self, purge_database: bool) {
        let inner = &self.inner;
        let leeway = i64::try_from(inner.settings.leeway.as_secs()).unwrap_or(0);
        let horizon = chrono::Utc::now().timestamp() - leeway;
        inner.cache.drop_expired(horizon);
        inner.revoked.retain(|_, expires_at| *expires_at >= horizon);
        inner.limits.housekeeping();
        if purge_database {
            if let Err(error) = inner.store.purge_expired_token_records(horizon).await {
                tracing::warn!(error = %error, "could not purge expired revocations");
            }
        }
    }
}

fn revoked() -> AuthError {
    AuthError::Unauthenticated("invalid access token: revoked".to_owned())
}

fn user_inactive() -> AuthError {
    AuthError::Unauthenticated("invalid access token: user disabled".to_owned())
}

fn client_inactive() -> AuthError {
    AuthError::Unauthenticated("invalid access token: client disabled".to_owned())
}

/// How far back each refresh looks, beyond the interval (tolerates clock skew between instances).
const REFRESH_OVERLAP: Duration = Duration::from_secs(5);
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(60);
const PURGE_EVERY: Duration = Duration::from_secs(600);

/// Starts the background refresh; it ends when the last `AuthService` clone is dropped.
pub(super) fn spawn_status_refresh(service: &AuthService) {
    let weak: Weak<Inner> = Arc::downgrade(&service.inner);
    let interval = service
        .inner
        .settings
        .status_refresh
        .max(Duration::from_millis(50));
    tokio::spawn(async move {
        let mut last_housekeeping = Instant::now();
        let mut last_purge = Instant::now();
        loop {
            tokio::time::sleep(interval).await;
            let Some(inner) = weak.upgrade() else {
                break;
            };
            let service = AuthService { inner };
            let since = chrono::Utc::now().naive_utc()
                - chrono::Duration::from_std(interval + REFRESH_OVERLAP).unwrap_or_default();
            let since = since.format("%Y-%m-%dT%H:%M:%S%.6f").to_string();
            if let Err(error) = service.refresh_status(Some(&since)).await {
                tracing::warn!(error = %error, "auth status refresh failed");
            }
            if last_housekeeping.elapsed() >= HOUSEKEEPING_EVERY {
                let purge = last_purge.elapsed() >= PURGE_EVERY;
                service.housekeeping(purge).await;
                last_housekeeping = Instant::now();
                if purge {
                    last_purge = Instant::now();
                }
            }
        }
    });
}
