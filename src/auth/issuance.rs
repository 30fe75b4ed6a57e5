//! Client authentication (secret or `private_key_jwt`, with failure throttling) and token issuance,
//! introspection and revocation. Every issuance, refusal and revocation writes an audit row.

use std::fmt;

use serde_json::{Value, json};

use crate::audit::{AuditEvent, Outcome};
use crate::domain::access::Role;
use crate::domain::ids::ClientId;
use crate::domain::origin::Origin;
use crate::store::clients::ClientRecord;
use crate::telemetry::metrics;

use super::scope::ScopeSet;
use super::{AuthError, AuthService, IssuedToken, assertion, secret};

/// Every failed client authentication answers no sooner than this after it began. A known client id
/// (its row read and decoded) and an unknown one (no row) otherwise differ by ~14 µs — enough, over many
/// samples, to tell which ids exist (z ≈ 20 over 20,000 samples each); padding to a fixed deadline from
/// the start hides the difference, as long as the work itself stays under it (it takes ~0.1 ms).
pub const FAILED_AUTHENTICATION_FLOOR: std::time::Duration = std::time::Duration::from_millis(3);

/// How a client proves who it is.
#[derive(Clone)]
pub enum ClientCredentials {
    /// `client_secret_basic`, `client_secret_post`, or the `authenticate` tool.
    Secret {
        client_id: String,
        client_secret: String,
    },
    /// `private_key_jwt` (RFC 7523); `client_id` is optional on the wire.
    Assertion {
        client_id: Option<String>,
        assertion: String,
    },
}

impl ClientCredentials {
    /// The client id the caller claims (not yet verified).
    fn claimed_client_id(&self) -> Result<String, AuthError> {
        match self {
            Self::Secret { client_id, .. } => Ok(client_id.clone()),
            Self::Assertion {
                client_id,
                assertion,
            } => {
                let from_assertion = assertion::claimed_client_id(assertion)?;
                match client_id {
                    Some(given) if *given != from_assertion => Err(AuthError::InvalidClient(
                        "client_id does not match the client assertion".to_owned(),
                    )),
                    _ => Ok(from_assertion),
                }
            }
        }
    }
}

impl fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Secret { client_id, .. } => write!(f, "Secret({client_id}, <redacted>)"),
            Self::Assertion { client_id, .. } => write!(f, "Assertion({client_id:?}, <redacted>)"),
        }
    }
}

/// A `client_credentials` token request, from the token endpoint or the `authenticate` tool.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    pub credentials: ClientCredentials,
    /// When given, must equal the client's `app_id`.
    pub app_id: Option<String>,
    /// Requested scopes; granted = requested ∩ allowed. All allowed scopes when absent.
    pub scope: Option<String>,
    /// RFC 8707 resource indicator; when given, must be our MCP resource URL.
    pub resource: Option<String>,
    /// Transport and peer address: the audit row's transport and the key of failed-authentication throttling.
    pub origin: Origin,
    pub request_id: String,
}

/// The generic refusal: which check failed goes to the audit row, not to the caller.
fn authentication_failed() -> AuthError {
    AuthError::InvalidClient("client authentication failed".to_owned())
}

impl AuthService {
    /// Issues a token for a client id and secret (the `authenticate` tool shares this with the token
    /// endpoint). `origin` keys failure throttling (one budget per peer address) and names the transport in
    /// the audit row.
    pub async fn issue_for_client_secret(
        &self,
        client_id: &str,
        client_secret: &str,
        app_id: Option<&str>,
        scope: Option<&str>,
        origin: Origin,
    ) -> Result<IssuedToken, AuthError> {
        self.issue(TokenRequest {
            credentials: ClientCredentials::Secret {
                client_id: client_id.to_owned(),
                client_secret: client_secret.to_owned(),
            },
            app_id: app_id.map(str::to_owned),
            scope: scope.map(str::to_owned),
            resource: None,
            origin,
            request_id: crate::audit::new_request_id(),
        })
        .await
    }

    /// Authenticates the client and issues a token; audits the outcome either way (`token.issue`).
    pub async fn issue(&self, request: TokenRequest) -> Result<IssuedToken, AuthError> {
        self.issue_audited_as(request, "token.issue").await
    }

    /// The `authenticate` tool's token request: as [`Self::issue`], but its one audit row is the tool
    /// call's row (action `authenticate`, the call's request id), so the call writes one row, not two.
    pub async fn issue_for_authenticate_tool(
        &self,
        request: TokenRequest,
    ) -> Result<IssuedToken, AuthError> {
        self.issue_audited_as(request, "authenticate").await
    }

    async fn issue_audited_as(
        &self,
        request: TokenRequest,
        action: &str,
    ) -> Result<IssuedToken, AuthError> {
        let claimed = request.credentials.claimed_client_id().ok();
        let outcome = self.try_issue(&request).await;
        let event = AuditEvent {
            request_id: request.request_id.clone(),
            transport: request.origin.transport,
            client_id: loggable_client_id(claimed.as_deref()),
            app_id: None,
            role: None,
            action: action.to_owned(),
            patient_mrn: None,
            outcome: Outcome::Success,
            detail: None,
        };
        let event = match &outcome {
            Ok((issued, jti)) => AuditEvent {
                client_id: Some(issued.client_id.as_str().to_owned()),
                app_id: Some(issued.app_id.clone()),
                role: Some(issued.role.as_str().to_owned()),
                detail: Some(format!("jti={jti} scope={}", issued.scope)),
                ..event
            },
            Err((error, detail)) => AuditEvent {
                outcome: if matches!(error, AuthError::Internal(_)) {
                    Outcome::Failed
                } else {
                    Outcome::Denied
                },
                detail: Some(format!("{}: {detail}", error.code())),
                ..event
            },
        };
        self.inner.audit.record(event).await?;
        match &outcome {
            Ok(_) => metrics::token_issued(),
            Err((error, _)) => metrics::token_refused(error.code()),
        }
        outcome
            .map(|(issued, _)| issued)
            .map_err(|(error, _)| error)
    }

    /// The checks of a token request in order. The error comes with the reason for the audit row.
    async fn try_issue(
        &self,
        request: &TokenRequest,
    ) -> Result<(IssuedToken, String), (AuthError, String)> {
        let client = self
            .authenticate_client(&request.credentials, request.origin)
            .await?;
        let refuse = |error: AuthError| {
            let detail = error.to_string();
            (error, detail)
        };
        if let Some(app_id) = &request.app_id {
            if *app_id != client.app_id {
                let failure = self.count_failure(Some(client.client_id.as_str()), &request.origin);
                return Err((
                    failure.unwrap_or_else(authentication_failed),
                    "app_id does not match".to_owned(),
                ));
            }
        }
        if let Some(resource) = &request.resource {
            if resource.trim_end_matches('/') != self.resource_url() {
                return Err(refuse(AuthError::InvalidTarget(format!(
                    "resource must be {}",
                    self.resource_url()
                ))));
            }
        }
        let allowed = ScopeSet::parse_canonical(&client.scopes)
            .map_err(|_| refuse(AuthError::Internal("stored scopes are invalid".to_owned())))?;
        let granted = match request.scope.as_deref().map(str::trim) {
            None | Some("") => allowed,
            Some(raw) => ScopeSet::parse_request(raw)
                .and_then(|requested| requested.grant(allowed))
                .map_err(refuse)?,
        };
        self.inner
            .limits
            .check_client(client.client_id.as_str(), client.rate_limit)
            .map_err(|retry_after| {
                metrics::rate_limited("token_requests");
                refuse(AuthError::RateLimited { retry_after })
            })?;
        let claims = self.inner.codec.claims_for(
            &client.client_id,
            &client.app_id,
            &client.app_name,
            client.role,
            granted,
            client.patient_mrn.as_ref(),
        );
        let access_token = self
            .inner
            .codec
            .sign(&claims, &self.inner.keys)
            .map_err(refuse)?;
        Ok((
            IssuedToken {
                access_token,
                token_type: "Bearer",
                expires_in: self.inner.settings.token_ttl.as_secs(),
                scope: granted.to_string(),
                client_id: client.client_id.clone(),
                app_id: client.app_id.clone(),
                app_name: client.app_name.clone(),
                role: client.role,
            },
            claims.jti,
        ))
    }

    /// Authenticates a client (token, introspection and revocation endpoints). Refused while the claimed
    /// client id or the source address is throttled; every failure counts toward throttling. The error
    /// for the caller is generic; the second element says what failed, for the audit row.
    pub async fn authenticate_client(
        &self,
        credentials: &ClientCredentials,
        origin: Origin,
    ) -> Result<ClientRecord, (AuthError, String)> {
        let source = origin.budget_key();
        let claimed = credentials.claimed_client_id();
        let claimed_id = claimed.as_ref().ok().map(String::as_str);
        if let Err(retry_after) = self.inner.limits.check_not_throttled(claimed_id, &source) {
            metrics::rate_limited("failed_authentication");
            return Err((
                AuthError::RateLimited { retry_after },
                "throttled after failed authentications".to_owned(),
            ));
        }
        let started = tokio::time::Instant::now();
        match self
            .verify_credentials(credentials, claimed_id.map(str::to_owned))
            .await
        {
            // A correct secret passes even while the client id is backed off (see `auth::limits`).
            Ok(client) => Ok(client),
            Err(reason) => {
                tokio::time::sleep_until(started + FAILED_AUTHENTICATION_FLOOR).await;
                // A failure of the server (or a database outage) is not a failed authentication.
                if let Some(internal @ (AuthError::Internal(_) | AuthError::Unavailable { .. })) =
                    reason.1
                {
                    return Err((internal, reason.0.to_owned()));
                }
                let backed_off = claimed_id.and_then(|id| self.inner.limits.client_backed_off(id));
                let error = self
                    .count_failure(claimed_id, &origin)
                    .or_else(|| {
                        backed_off.map(|retry_after| {
                            metrics::rate_limited("failed_authentication");
                            AuthError::RateLimited { retry_after }
                        })
                    })
                    .unwrap_or_else(authentication_failed);
                Err((error, reason.0.to_owned()))
            }
        }
    }

    /// Counts a failed authentication; `Some(RateLimited)` when it crossed a throttle.
    fn count_failure(&self, client_id: Option<&str>, origin: &Origin) -> Option<AuthError> {
        self.inner
            .limits
            .record_failure(client_id, &origin.budget_key())
            .err()
            .map(|retry_after| {
                metrics::rate_limited("failed_authentication");
                AuthError::RateLimited { retry_after }
            })
    }

    async fn verify_credentials(
        &self,
        credentials: &ClientCredentials,
        claimed: Option<String>,
    ) -> Result<ClientRecord, (&'static str, Option<AuthError>)> {
        let claimed = claimed.ok_or(("malformed client assertion", None))?;
        let Ok(client_id) = ClientId::parse(&claimed) else {
            if let ClientCredentials::Secret { client_secret, .. } = credentials {
                secret::verify_against_nothing(client_secret);
            }
            return Err(("malformed client_id", None));
        };
        let client = self
            .inner
            .store
            .find_client(&client_id)
            .await
            .map_err(|error| ("store error", Some(AuthError::from(error))))?;
        let Some(client) = client else {
            if let ClientCredentials::Secret { client_secret, .. } = credentials {
                secret::verify_against_nothing(client_secret);
            }
            return Err(("unknown client", None));
        };
        match credentials {
            ClientCredentials::Secret { client_secret, .. } => {
                let matches = secret::verify_secret(&client.secret_hash, client_secret);
                // One authentication method per client: a client registered with public keys
                // authenticates with `private_key_jwt` only; its secret (if any) never works.
                if client.jwks.is_some() {
                    return Err(("client authenticates with private_key_jwt only", None));
                }
                if !matches {
                    return Err(("wrong client secret", None));
                }
            }
            ClientCredentials::Assertion { assertion, .. } => {
                let audiences = [self.token_endpoint(), self.issuer()];
                let verified =
                    assertion::verify(assertion, &client, &audiences, self.inner.settings.leeway)
                        .map_err(|_| ("client assertion rejected", None))?;
                let replay_key = format!("{}:{}", client.client_id, verified.jti);
                let first_use = self
                    .inner
                    .store
                    .remember_client_assertion(
                        &replay_key,
                        client.client_id.as_str(),
                        verified.expires_at,
                    )
                    .await
                    .map_err(|error| ("store error", Some(AuthError::from(error))))?;
                if !first_use {
                    return Err(("client assertion replayed (jti seen before)", None));
                }
            }
        }
        if !client.is_active {
            return Err(("client disabled", None));
        }
        Ok(client)
    }

    /// RFC 7662 introspection by an authenticated client: active tokens of the caller itself (or any
    /// token for an admin client) are described; everything else is `{"active": false}`.
    pub async fn introspect(&self, token: &str, caller: &ClientRecord) -> Value {
        let Ok(cached) = self.validate_with_claims(token).await else {
            return json!({"active": false});
        };
        let claims = &cached.claims;
        if claims.client_id != caller.client_id.as_str() && caller.role != Role::Admin {
            return json!({"active": false});
        }
        let mut body = json!({
            "active": true,
            "scope": claims.scope,
            "client_id": claims.client_id,
            "sub": claims.sub,
            "aud": claims.aud,
            "iss": claims.iss,
            "exp": claims.exp,
            "iat": claims.iat,
            "nbf": claims.nbf,
            "jti": claims.jti,
            "token_type": "Bearer",
            "role": claims.role,
            "app_id": claims.app_id,
        });
        if let Some(patient) = &claims.patient {
            body["patient"] = json!(patient);
        }
        body
    }

    /// RFC 7009 revocation by an authenticated client: its own tokens (an admin client: any). Invalid or
    /// expired tokens are not an error. Takes effect at once on this instance.
    pub async fn revoke(&self, token: &str, caller: &ClientRecord) -> Result<(), AuthError> {
        let inner = &self.inner;
        let Ok(claims) = inner.codec.decode(token, &inner.keys) else {
            return Ok(());
        };
        if claims.client_id != caller.client_id.as_str() && caller.role != Role::Admin {
            return Err(AuthError::UnauthorizedClient(
                "the token was issued to another client".to_owned(),
            ));
        }
        inner
            .store
            .revoke_token(&claims.jti, &claims.client_id, claims.exp)
            .await?;
        inner.revoked.insert(claims.jti.clone(), claims.exp);
        inner.cache.forget(token);
        Ok(())
    }
}

/// A claimed client id is written to the audit log only if it is well-formed.
fn loggable_client_id(claimed: Option<&str>) -> Option<String> {
    claimed
        .and_then(|raw| ClientId::parse(raw).ok())
        .map(ClientId::into_string)
}
