//! Tokens for signed-in people: the `authorization_code` grant (single use, short-lived, bound to the
//! client, the redirect URI and the PKCE verifier; a replayed code revokes what it issued) and the
//! `refresh_token` grant (rotated on every use; reuse of a spent token revokes its whole family).
//!
//! Access tokens carry the user (`sub`, `username`), the client (`client_id`), the user's role and bound
//! patient; scopes = what the code granted ∩ what the client holds ∩ what the role allows, computed
//! again at every refresh. Every issuance and refusal writes one `token.issue` audit row naming the
//! grant, the client and (when known) the user.

use crate::domain::audit::{AuditEvent, Outcome};
use crate::domain::origin::Origin;
use crate::domain::user::Username;
use crate::store::grants::RefreshRecord;
use crate::telemetry::metrics;

use super::registration::{AuthMethod, RedirectClient};
use super::scope::ScopeSet;
use super::secret::{ClientSecret, lookup_hash};
use super::signin::pkce_matches;
use super::users::{SignedInUser, scopes_for_role};
use super::{AuthError, AuthService, ClientCredentials, IssuedToken};

/// How the client presented itself at the token endpoint.
#[derive(Debug, Clone)]
pub enum GrantClient {
    /// A public client: `client_id` only (PKCE is its proof).
    Public { client_id: String },
    /// A confidential client: secret or assertion.
    Confidential(ClientCredentials),
}

/// The grant being redeemed.
#[derive(Clone)]
pub enum UserGrant {
    AuthorizationCode {
        code: String,
        redirect_uri: Option<String>,
        code_verifier: Option<String>,
    },
    RefreshToken {
        refresh_token: String,
        scope: Option<String>,
    },
}

impl std::fmt::Debug for UserGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl UserGrant {
    pub fn name(&self) -> &'static str {
        match self {
            Self::AuthorizationCode { .. } => "authorization_code",
            Self::RefreshToken { .. } => "refresh_token",
        }
    }
}

/// A token request of the `authorization_code` or `refresh_token` grant.
#[derive(Debug, Clone)]
pub struct UserTokenRequest {
    pub client: GrantClient,
    pub grant: UserGrant,
    /// RFC 8707; when given, must be our MCP resource. Without it the audience is our MCP resource.
    pub resource: Option<String>,
    pub origin: Origin,
    pub request_id: String,
}

/// What the token endpoint answers for a user grant.
#[derive(Debug, Clone)]
pub struct UserTokens {
    pub access: IssuedToken,
    /// A new refresh token, when the client may use the `refresh_token` grant.
    pub refresh_token: Option<String>,
}

/// Who a successful grant was for, and what it issued (for the audit row).
struct Issued {
    tokens: UserTokens,
    user: SignedInUser,
    jti: String,
}

/// A refusal with what the audit row should say.
struct Refusal {
    error: AuthError,
    client_id: Option<String>,
    user: Option<String>,
}

impl From<AuthError> for Refusal {
    fn from(error: AuthError) -> Self {
        Self {
            error,
            client_id: None,
            user: None,
        }
    }
}

fn invalid_grant(message: &str) -> AuthError {
    AuthError::InvalidGrant(message.to_owned())
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

impl AuthService {
    /// Redeems an authorization code or refresh token; audits the outcome either way.
    pub async fn issue_for_user(&self, request: UserTokenRequest) -> Result<UserTokens, AuthError> {
        let grant = request.grant.name();
        let outcome = self.try_issue_for_user(&request).await;
        let event = AuditEvent {
            request_id: request.request_id.clone(),
            transport: request.origin.transport,
            ..AuditEvent::new(request.origin.transport, "token.issue", Outcome::Success)
        };
        let event = match &outcome {
            Ok(issued) => AuditEvent {
                client_id: Some(issued.tokens.access.client_id.as_str().to_owned()),
                app_id: Some(issued.tokens.access.app_id.clone()),
                role: Some(issued.user.role.as_str().to_owned()),
                patient_mrn: issued.user.patient_mrn.clone(),
                detail: Some(format!(
                    "grant={grant} user={} jti={} scope={}",
                    issued.user.username, issued.jti, issued.tokens.access.scope
                )),
                ..event
            },
            Err(refusal) => AuditEvent {
                client_id: refusal.client_id.clone(),
                outcome: if matches!(refusal.error, AuthError::Internal(_)) {
                    Outcome::Failed
                } else {
                    Outcome::Denied
                },
                detail: Some(format!(
                    "grant={grant}{} {}: {}",
                    refusal
                        .user
                        .as_ref()
                        .map(|user| format!(" user={user}"))
                        .unwrap_or_default(),
                    refusal.error.code(),
                    refusal.error
                )),
                ..event
            },
        };
        self.audit().record(event).await?;
        match &outcome {
            Ok(_) => metrics::token_issued(),
            Err(refusal) => metrics::token_refused(refusal.error.code()),
        }
        outcome
            .map(|issued| issued.tokens)
            .map_err(|refusal| refusal.error)
    }

    async fn try_issue_for_user(&self, request: &UserTokenRequest) -> Result<Issued, Refusal> {
        let client = self
            .grant_client(&request.client, request.origin)
            .await
            .map_err(Refusal::from)?;
        let refuse = |error: AuthError, user: Option<&str>| Refusal {
            error,
            client_id: Some(client.client_id.as_str().to_owned()),
            user: user.map(str::to_owned),
        };
        if !client.allows_grant(request.grant.name()) {
            return Err(refuse(
                AuthError::UnauthorizedClient(format!(
                    "this client may not use the {} grant",
                    request.grant.name()
                )),
                None,
            ));
        }
        if let Some(resource) = &request.resource {
            if resource.trim_end_matches('/') != self.resource_url() {
                return Err(refuse(
                    AuthError::InvalidTarget(format!("resource must be {}", self.resource_url())),
                    None,
                ));
            }
        }
        match &request.grant {
            UserGrant::AuthorizationCode {
                code,
                redirect_uri,
                code_verifier,
            } => {
                self.redeem_code(
                    &client,
                    code,
                    redirect_uri.as_deref(),
                    code_verifier.as_deref(),
                )
                .await
            }
            UserGrant::RefreshToken {
                refresh_token,
                scope,
            } => {
                self.redeem_refresh(&client, refresh_token, scope.as_deref())
                    .await
            }
        }
        .map_err(|(error, user)| refuse(error, user.as_deref()))
    }

    /// The client of a user grant: a public client by id, or a confidential one by its credentials.
    async fn grant_client(
        &self,
        presented: &GrantClient,
        origin: Origin,
    ) -> Result<RedirectClient, AuthError> {
        let unknown = || AuthError::InvalidClient("client authentication failed".to_owned());
        match presented {
            GrantClient::Public { client_id } => {
                let client = self
                    .resolve_redirect_client(client_id)
                    .await
                    .map_err(|_| unknown())?
                    .ok_or_else(unknown)?;
                if client.auth_method != AuthMethod::None {
                    return Err(AuthError::InvalidClient(
                        "this client must authenticate (client_secret_basic or client_secret_post)"
                            .to_owned(),
                    ));
                }
                Ok(client)
            }
            GrantClient::Confidential(credentials) => {
                let record = self
                    .authenticate_client(credentials, origin)
                    .await
                    .map_err(|(error, _)| error)?;
                self.redirect_client_by_id(&record.client_id)
                    .await?
                    .ok_or_else(|| {
                        AuthError::UnauthorizedClient(
                            "this client has no redirect URIs: it may use client_credentials only"
                                .to_owned(),
                        )
                    })
            }
        }
    }

    async fn redeem_code(
        &self,
        client: &RedirectClient,
        code: &str,
        redirect_uri: Option<&str>,
        code_verifier: Option<&str>,
    ) -> Result<Issued, (AuthError, Option<String>)> {
        let code_hash = lookup_hash(code);
        let record = match self.store().take_code(&code_hash).await {
            Err(error) => return Err((error.into(), None)),
            Ok(Ok(Some(record))) => record,
            Ok(Ok(None)) => return Err((invalid_grant("the authorization code is unknown"), None)),
            Ok(Err((family, access_jti))) => {
                // A replayed code: whatever it issued may be in an attacker's hands.
                let mut jtis: Vec<String> = access_jti.into_iter().collect();
                if let Some(family) = family {
                    jtis.extend(
                        self.store()
                            .revoke_refresh_family(&family)
                            .await
                            .map_err(|error| (error.into(), None))?,
                    );
                }
                self.revoke_jtis(&jtis, client.client_id.as_str())
                    .await
                    .map_err(|error| (error, None))?;
                return Err((
                    invalid_grant(
                        "the authorization code was already used; the tokens it issued are revoked",
                    ),
                    None,
                ));
            }
        };
        let user_name = Some(record.username.clone());
        let refuse = |message: &str| (invalid_grant(message), user_name.clone());
        if record.expires_at < now() {
            return Err(refuse("the authorization code has expired"));
        }
        if record.client_id != client.client_id.as_str() {
            return Err(refuse(
                "the authorization code was issued to another client",
            ));
        }
        if redirect_uri.is_some_and(|uri| uri != record.redirect_uri) {
            return Err(refuse(
                "redirect_uri differs from the one of the authorization request",
            ));
        }
        let Some(verifier) = code_verifier else {
            return Err((
                AuthError::InvalidRequest("code_verifier is required (PKCE)".to_owned()),
                user_name,
            ));
        };
        if !pkce_matches(&record.code_challenge, verifier) {
            return Err(refuse(
                "the PKCE code_verifier does not match the code_challenge",
            ));
        }
        let user = self.user_of(&record.username).await?;
        let granted = ScopeSet::parse_canonical(&record.scopes).map_err(|_| {
            (
                AuthError::Internal("stored scopes are invalid".to_owned()),
                None,
            )
        })?;
        let family = uuid::Uuid::new_v4().to_string();
        let issued = self
            .issue_user_tokens(client, user, granted, &family)
            .await?;
        self.store()
            .record_code_issue(&code_hash, Some(&family), &issued.jti)
            .await
            .map_err(|error| (error.into(), None))?;
        Ok(issued)
    }

    async fn redeem_refresh(
        &self,
        client: &RedirectClient,
        refresh_token: &str,
        scope: Option<&str>,
    ) -> Result<Issued, (AuthError, Option<String>)> {
        let record = self
            .store()
            .take_refresh(&lookup_hash(refresh_token))
            .await
            .map_err(|error| (error.into(), None))?
            .ok_or_else(|| (invalid_grant("the refresh token is unknown"), None))?;
        let user_name = Some(record.username.clone());
        if record.used || record.revoked {
            if record.used && !record.revoked {
                // Reuse of a rotated token: the family is compromised.
                let jtis = self
                    .store()
                    .revoke_refresh_family(&record.family_id)
                    .await
                    .map_err(|error| (error.into(), None))?;
                self.revoke_jtis(&jtis, &record.client_id)
                    .await
                    .map_err(|error| (error, None))?;
            }
            return Err((
                invalid_grant(
                    "the refresh token was already used or revoked; its whole family is revoked",
                ),
                user_name,
            ));
        }
        if record.expires_at < now() {
            return Err((invalid_grant("the refresh token has expired"), user_name));
        }
        if record.client_id != client.client_id.as_str() {
            return Err((
                invalid_grant("the refresh token was issued to another client"),
                user_name,
            ));
        }
        let held = ScopeSet::parse_canonical(&record.scopes).map_err(|_| {
            (
                AuthError::Internal("stored scopes are invalid".to_owned()),
                None,
            )
        })?;
        let granted = match scope.map(str::trim) {
            None | Some("") => held,
            Some(raw) => ScopeSet::parse_request(raw)
                .and_then(|asked| asked.grant(held))
                .map_err(|error| (error, user_name.clone()))?,
        };
        let user = self.user_of(&record.username).await?;
        self.issue_user_tokens(client, user, granted, &record.family_id)
            .await
    }

    async fn user_of(&self, username: &str) -> Result<SignedInUser, (AuthError, Option<String>)> {
        let gone = || {
            (
                invalid_grant("the user is disabled or no longer exists"),
                Some(username.to_owned()),
            )
        };
        let parsed = Username::parse(username).map_err(|_| gone())?;
        self.active_user(&parsed)
            .await
            .map_err(|error| (error, None))?
            .ok_or_else(gone)
    }

    /// Signs the access token (and a new refresh token of `family` when the client may refresh).
    async fn issue_user_tokens(
        &self,
        client: &RedirectClient,
        user: SignedInUser,
        granted: ScopeSet,
        family: &str,
    ) -> Result<Issued, (AuthError, Option<String>)> {
        let user_name = Some(user.username.as_str().to_owned());
        let scopes = granted
            .intersection(client.scopes)
            .intersection(scopes_for_role(user.role));
        if scopes.is_empty() {
            return Err((
                AuthError::InvalidScope(
                    "none of the granted access is still available to this user and client"
                        .to_owned(),
                ),
                user_name,
            ));
        }
        let inner = &self.inner;
        let claims = inner.codec.claims_for_user(
            &client.client_id,
            &client.app_id,
            &client.app_name,
            &user,
            scopes,
        );
        let access_token = inner
            .codec
            .sign(&claims, &inner.keys)
            .map_err(|error| (error, user_name.clone()))?;
        let refresh_token = if client.allows_grant("refresh_token") {
            let token = ClientSecret::generate().expose().to_owned();
            let ttl = i64::try_from(inner.settings.refresh_ttl.as_secs()).unwrap_or(86_400);
            let record = RefreshRecord {
                family_id: family.to_owned(),
                client_id: client.client_id.as_str().to_owned(),
                username: user.username.as_str().to_owned(),
                scopes: scopes.to_string(),
                access_jti: claims.jti.clone(),
                expires_at: now() + ttl,
                used: false,
                revoked: false,
            };
            self.store()
                .insert_refresh(&lookup_hash(&token), &record)
                .await
                .map_err(|error| (error.into(), user_name.clone()))?;
            Some(token)
        } else {
            None
        };
        Ok(Issued {
            tokens: UserTokens {
                access: IssuedToken {
                    access_token,
                    token_type: "Bearer",
                    expires_in: inner.settings.token_ttl.as_secs(),
                    scope: scopes.to_string(),
                    client_id: client.client_id.clone(),
                    app_id: client.app_id.clone(),
                    app_name: client.app_name.clone(),
                    role: user.role,
                },
                refresh_token,
            },
            jti: claims.jti,
            user,
        })
    }

    /// Revokes access tokens by id, here at once and (through the store) on every instance.
    async fn revoke_jtis(&self, jtis: &[String], client_id: &str) -> Result<(), AuthError> {
        let ttl = i64::try_from(self.settings().token_ttl.as_secs()).unwrap_or(3600);
        let expires_at = now() + ttl + 60;
        for jti in jtis {
            self.store()
                .revoke_token(jti, client_id, expires_at)
                .await?;
            self.inner.revoked.insert(jti.clone(), expires_at);
        }
        Ok(())
    }
}
