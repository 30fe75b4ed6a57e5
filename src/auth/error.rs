//! The auth layer's one error type. Messages are safe to show to the caller: no secrets, no SQL, no PHI.

use std::time::Duration;

/// Why authentication, authorisation or a client operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No token, or a token that is malformed, forged, expired, revoked or of a disabled client.
    #[error("{0}")]
    Unauthenticated(String),
    /// A valid caller without the role, scope or patient binding the action needs; names what is missing.
    #[error("{0}")]
    Forbidden(String),
    /// Too many requests (per-client rate limit) or too many failed authentications.
    #[error("rate limit exceeded; retry after {} s", retry_after_seconds(*retry_after))]
    RateLimited { retry_after: Duration },
    /// Client authentication failed (unknown client, wrong secret, disabled, bad assertion).
    #[error("{0}")]
    InvalidClient(String),
    /// The requested scope is unknown or exceeds what the client may hold.
    #[error("{0}")]
    InvalidScope(String),
    /// The request is malformed (missing or repeated parameter, bad value).
    #[error("{0}")]
    InvalidRequest(String),
    /// The `resource` parameter (RFC 8707) names something other than this server's MCP resource.
    #[error("{0}")]
    InvalidTarget(String),
    /// An authorization code or refresh token that is unknown, expired, used, revoked, or bound to
    /// another client, redirect URI or PKCE verifier (RFC 6749 §5.2 `invalid_grant`).
    #[error("{0}")]
    InvalidGrant(String),
    /// A redirect URI outside the registration policy (RFC 7591 `invalid_redirect_uri`).
    #[error("{0}")]
    InvalidRedirectUri(String),
    /// Unusable client metadata (RFC 7591 `invalid_client_metadata`).
    #[error("{0}")]
    InvalidClientMetadata(String),
    /// A grant type other than `client_credentials`.
    #[error("{0}")]
    UnsupportedGrantType(String),
    /// The authenticated client may not do this (for example revoke another client's token).
    #[error("{0}")]
    UnauthorizedClient(String),
    /// A client or key that was asked for does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The auth configuration is unusable (names the setting).
    #[error("{0}")]
    Config(String),
    /// The database could not answer in time (outage, restart, overload): retryable, never a verdict on
    /// the credential. HTTP 503 with `Retry-After`, tool error `unavailable`.
    #[error("the service is temporarily unavailable; retry after {} s", retry_after_seconds(*retry_after))]
    Unavailable { retry_after: Duration },
    /// Something failed inside the server. The message is generic; details are logged where they occur.
    #[error("internal error")]
    Internal(String),
}

/// Whole seconds to wait, rounded up, at least one.
pub fn retry_after_seconds(retry_after: Duration) -> u64 {
    let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
    seconds.max(1)
}

impl AuthError {
    /// The OAuth 2.0 error code (RFC 6749 §5.2, RFC 8707, RFC 6750), or our own for the rest.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthenticated(_) => "invalid_token",
            Self::Forbidden(_) => "insufficient_scope",
            Self::RateLimited { .. } => "rate_limited",
            Self::InvalidClient(_) => "invalid_client",
            Self::InvalidScope(_) => "invalid_scope",
            Self::InvalidRequest(_) => "invalid_request",
            Self::InvalidTarget(_) => "invalid_target",
            Self::InvalidGrant(_) => "invalid_grant",
            Self::InvalidRedirectUri(_) => "invalid_redirect_uri",
            Self::InvalidClientMetadata(_) => "invalid_client_metadata",
            Self::UnsupportedGrantType(_) => "unsupported_grant_type",
            Self::UnauthorizedClient(_) => "unauthorized_client",
            Self::NotFound(_) => "not_found",
            Self::Unavailable { .. } => "temporarily_unavailable",
            Self::Config(_) => "server_error",
            Self::Internal(_) => "server_error",
        }
    }

    /// A short kind for audit rows (no detail).
    pub fn kind(&self) -> &'static str {
        self.code()
    }
}

/// How long a caller is asked to wait when the database is unavailable.
pub const UNAVAILABLE_RETRY_AFTER: Duration = Duration::from_secs(2);

impl AuthError {
    /// The retryable "database unavailable" error.
    pub fn unavailable() -> Self {
        Self::Unavailable {
            retry_after: UNAVAILABLE_RETRY_AFTER,
        }
    }
}

impl From<crate::store::StoreError> for AuthError {
    fn from(error: crate::store::StoreError) -> Self {
        if matches!(error, crate::store::StoreError::Unavailable) {
            return Self::unavailable();
        }
        tracing::error!(error = %error, "store error in auth");
        Self::Internal(error.to_string())
    }
}

impl From<crate::domain::audit::RecordError> for AuthError {
    fn from(error: crate::domain::audit::RecordError) -> Self {
        if matches!(error, crate::domain::audit::RecordError::Unavailable) {
            return Self::unavailable();
        }
        tracing::error!(error = %error, "audit error in auth");
        Self::Internal(error.to_string())
    }
}
