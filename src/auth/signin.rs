//! The authorization endpoint's rules (RFC 6749 §4.1, RFC 7636, RFC 8707, RFC 9207): checking an
//! authorization request, browser sessions with CSRF tokens, remembered consent and single-use codes.
//!
//! Order of checks: the client and its redirect URI first. Until both are known, every error is shown to
//! the person ([`AuthorizeError::Page`]) and never redirected, so the endpoint cannot be used as an open
//! redirect. After that, errors go back to the client's redirect URI ([`AuthorizeError::Redirect`]).
//! PKCE with `S256` is required; `plain` and a missing challenge are refused. What a code grants is
//! requested ∩ what the client holds ∩ what the signed-in user's role allows.

use subtle::ConstantTimeEq;

use crate::domain::user::Username;
use crate::store::grants::CodeRecord;
use crate::store::users::SessionRecord;

use super::registration::RedirectClient;
use super::scope::{Scope, ScopeSet};
use super::secret::{ClientSecret, lookup_hash};
use super::users::{SignedInUser, scopes_for_role};
use super::{AuthError, AuthService};

/// How long a sign-in session (the login and consent pages' cookie) lasts.
pub const SESSION_TTL_SECONDS: i64 = 30 * 60;
/// Longest accepted `state` (it is echoed back).
const MAX_STATE_BYTES: usize = 1024;

/// The parameters of an authorization request, as received (query or form), each at most once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthorizeParams {
    pub response_type: Option<String>,
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub resource: Option<String>,
    pub prompt: Option<String>,
}

impl AuthorizeParams {
    /// The names of the parameters, in the order they are written back into forms and URLs.
    pub const NAMES: [&'static str; 9] = [
        "response_type",
        "client_id",
        "redirect_uri",
        "scope",
        "state",
        "code_challenge",
        "code_challenge_method",
        "resource",
        "prompt",
    ];

    /// Takes the known parameters from name/value pairs (others are ignored, empty means absent).
    /// A parameter given twice is an error (RFC 6749 §3.1).
    pub fn from_pairs(pairs: Vec<(String, String)>) -> Result<Self, AuthError> {
        let mut params = Self::default();
        for (name, value) in pairs {
            let Some(slot) = params.slot(&name) else {
                continue;
            };
            if value.is_empty() {
                continue;
            }
            if slot.is_some() {
                return Err(AuthError::InvalidRequest(format!(
                    "parameter {name} is repeated"
                )));
            }
            *slot = Some(value);
        }
        Ok(params)
    }

    fn slot(&mut self, name: &str) -> Option<&mut Option<String>> {
        Some(match name {
            "response_type" => &mut self.response_type,
            "client_id" => &mut self.client_id,
            "redirect_uri" => &mut self.redirect_uri,
            "scope" => &mut self.scope,
            "state" => &mut self.state,
            "code_challenge" => &mut self.code_challenge,
            "code_challenge_method" => &mut self.code_challenge_method,
            "resource" => &mut self.resource,
            "prompt" => &mut self.prompt,
            _ => return None,
        })
    }

    /// The parameters that are present, as name/value pairs (for hidden form fields and URLs).
    pub fn pairs(&self) -> Vec<(&'static str, &str)> {
        let values = [
            &self.response_type,
            &self.client_id,
            &self.redirect_uri,
            &self.scope,
            &self.state,
            &self.code_challenge,
            &self.code_challenge_method,
            &self.resource,
            &self.prompt,
        ];
        Self::NAMES
            .iter()
            .zip(values)
            .filter_map(|(name, value)| value.as_deref().map(|value| (*name, value)))
            .collect()
    }
}

/// A checked authorization request.
#[derive(Debug, Clone)]
pub struct AuthorizationRequest {
    pub client: RedirectClient,
    /// The redirect URI the code goes to (checked against the client's registration).
    pub redirect_uri: String,
    pub state: Option<String>,
    pub code_challenge: String,
    /// Requested ∩ what the client holds (the user's role is applied by [`Self::scopes_for`]).
    pub scopes: ScopeSet,
    /// `prompt=consent`: ask again even when consent is remembered.
    pub force_consent: bool,
    /// `prompt=login`: sign in again even with a signed-in session.
    pub force_login: bool,
}

impl AuthorizationRequest {
    /// What a code for `user` grants: the request's scopes cut to the user's role.
    pub fn scopes_for(&self, user: &SignedInUser) -> ScopeSet {
        self.scopes.intersection(scopes_for_role(user.role))
    }

    /// The redirect host, shown on the consent page.
    pub fn redirect_host(&self) -> &str {
        let rest = self
            .redirect_uri
            .split_once("://")
            .map_or(self.redirect_uri.as_str(), |(_, rest)| rest);
        rest.split(['/', '?']).next().unwrap_or(rest)
    }

    /// An error for the client, sent to its redirect URI.
    pub fn error(&self, error: &'static str, description: impl Into<String>) -> AuthorizeError {
        AuthorizeError::Redirect(RedirectError {
            redirect_uri: self.redirect_uri.clone(),
            state: self.state.clone(),
            error,
            description: description.into(),
        })
    }
}

/// An error sent back to a trusted redirect URI (RFC 6749 §4.1.2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectError {
    pub redirect_uri: String,
    pub state: Option<String>,
    pub error: &'static str,
    pub description: String,
}

/// Why an authorization request cannot go on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizeError {
    /// The client or redirect URI is unknown or wrong: shown to the person, never redirected.
    Page(String),
    /// Sent to the client's redirect URI with `error`, `error_description`, `state` and `iss`.
    Redirect(RedirectError),
    /// The server failed; shown as a generic page.
    Internal,
}

impl From<AuthError> for AuthorizeError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::Internal(_) | AuthError::Config(_) => Self::Internal,
            other => Self::Page(other.to_string()),
        }
    }
}

/// A sign-in session of the browser: who signed in (if anyone yet) and its CSRF token.
#[derive(Clone)]
pub struct SigninSession {
    /// The cookie value (a 256-bit random token); stored only as its hash.
    pub cookie: String,
    pub user: Option<Username>,
    pub csrf_token: String,
}

impl std::fmt::Debug for SigninSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigninSession")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl SigninSession {
    /// Whether `presented` is this session's CSRF token (constant time).
    pub fn csrf_matches(&self, presented: Option<&str>) -> bool {
        presented.is_some_and(|presented| {
            bool::from(presented.as_bytes().ct_eq(self.csrf_token.as_bytes()))
        })
    }

    /// The token the consent form carries: binds an approval to this session and to exactly the
    /// request the consent page showed, so an approval cannot be posted for another request.
    pub fn consent_ticket(&self, params: &AuthorizeParams) -> String {
        let mut material = format!("consent\u{0}{}", self.csrf_token);
        for (name, value) in params.pairs() {
            material.push('\u{0}');
            material.push_str(name);
            material.push('=');
            material.push_str(value);
        }
        lookup_hash(&material)
    }

    pub fn consent_ticket_matches(
        &self,
        params: &AuthorizeParams,
        presented: Option<&str>,
    ) -> bool {
        let expected = self.consent_ticket(params);
        presented
            .is_some_and(|presented| bool::from(presented.as_bytes().ct_eq(expected.as_bytes())))
    }
}

/// `true` for a PKCE `code_challenge` / `code_verifier` of 43-128 unreserved characters (RFC 7636 §4.1).
fn is_pkce_text(value: &str) -> bool {
    (43..=128).contains(&value.len())
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~'))
}

/// Whether `verifier` hashes to `challenge` under S256 (constant-time comparison).
pub fn pkce_matches(challenge: &str, verifier: &str) -> bool {
    use base64::Engine as _;
    use sha2::{Digest, Sha256};
    if !is_pkce_text(verifier) {
        return false;
    }
    let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(verifier.as_bytes()));
    bool::from(computed.as_bytes().ct_eq(challenge.as_bytes()))
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

impl AuthService {
    /// Checks an authorization request in the order described at the top of this module.
    pub async fn check_authorization(
        &self,
        params: &AuthorizeParams,
    ) -> Result<AuthorizationRequest, AuthorizeError> {
        let page = |message: &str| AuthorizeError::Page(message.to_owned());
        let raw_client_id = params
            .client_id
            .as_deref()
            .ok_or_else(|| page("the request names no application (client_id is missing)"))?;
        let client = self
            .resolve_redirect_client(raw_client_id)
            .await?
            .ok_or_else(|| page("the application is not registered with this server"))?;
        let redirect_uri = match params.redirect_uri.as_deref() {
            Some(uri) if client.accepts_redirect(uri) => uri.to_owned(),
            Some(_) => {
                return Err(page(
                    "the redirect URI is not registered for this application; nothing was sent to it",
                ));
            }
            None if client.redirect_uris.len() == 1 => client.redirect_uris[0].clone(),
            None => return Err(page("the request names no redirect URI (redirect_uri)")),
        };
        let mut request = AuthorizationRequest {
            client,
            redirect_uri,
            state: None,
            code_challenge: String::new(),
            scopes: ScopeSet::empty(),
            force_consent: false,
            force_login: false,
        };
        // The redirect URI is trusted from here on; the state goes back with every error.
        match params.state.as_deref() {
            Some(state) if state.len() > MAX_STATE_BYTES => {
                return Err(page("the state parameter is too long"));
            }
            state => request.state = state.map(str::to_owned),
        }
        match params.response_type.as_deref() {
            Some("code") => {}
            None => return Err(request.error("invalid_request", "response_type is required")),
            Some(_) => {
                return Err(request.error(
                    "unsupported_response_type",
                    "only response_type=code is supported",
                ));
            }
        }
        if !request.client.allows_grant("authorization_code") {
            return Err(request.error(
                "unauthorized_client",
                "this application may not use the authorization code flow",
            ));
        }
        match params.code_challenge_method.as_deref() {
            Some("S256") => {}
            _ => {
                return Err(request.error(
                    "invalid_request",
                    "PKCE is required: code_challenge_method must be S256",
                ));
            }
        }
        match params.code_challenge.as_deref() {
            Some(challenge) if challenge.len() == 43 && is_pkce_text(challenge) => {
                request.code_challenge = challenge.to_owned();
            }
            _ => {
                return Err(request.error(
                    "invalid_request",
                    "code_challenge must be the 43-character S256 challenge",
                ));
            }
        }
        if let Some(resource) = params.resource.as_deref() {
            if resource.trim_end_matches('/') != self.resource_url() {
                return Err(request.error(
                    "invalid_target",
                    format!("resource must be {}", self.resource_url()),
                ));
            }
        }
        let held = request.client.scopes;
        request.scopes = match params.scope.as_deref().map(str::trim) {
            None | Some("") => held,
            Some(raw) => match ScopeSet::parse_request(raw) {
                Ok(asked) => asked.named().intersection(held),
                Err(error) => return Err(request.error("invalid_scope", error.to_string())),
            },
        };
        if request.scopes.is_empty() {
            return Err(request.error(
                "invalid_scope",
                "none of the requested access is available to this application",
            ));
        }
        for prompt in params.prompt.as_deref().unwrap_or("").split_whitespace() {
            match prompt {
                "consent" => request.force_consent = true,
                "login" => request.force_login = true,
                "none" => {
                    return Err(request.error(
                        "interaction_required",
                        "signing in needs the login and consent pages",
                    ));
                }
                _ => {}
            }
        }
        Ok(request)
    }

    /// A new sign-in session (nobody signed in yet).
    pub async fn start_signin_session(&self) -> Result<SigninSession, AuthError> {
        self.save_session(None).await
    }

    async fn save_session(&self, user: Option<Username>) -> Result<SigninSession, AuthError> {
        let session = SigninSession {
            cookie: ClientSecret::generate().expose().to_owned(),
            user,
            csrf_token: ClientSecret::generate().expose().to_owned(),
        };
        let record = SessionRecord {
            username: session.user.clone(),
            csrf_token: session.csrf_token.clone(),
            expires_at: now() + SESSION_TTL_SECONDS,
        };
        self.store()
            .insert_session(&lookup_hash(&session.cookie), &record)
            .await?;
        Ok(session)
    }

    /// The unexpired session behind a cookie value. A session of a user who has since been disabled
    /// is returned without its user.
    pub async fn find_signin_session(
        &self,
        cookie: &str,
    ) -> Result<Option<SigninSession>, AuthError> {
        if cookie.len() > 128 {
            return Ok(None);
        }
        let Some(record) = self
            .store()
            .find_session(&lookup_hash(cookie), now())
            .await?
        else {
            return Ok(None);
        };
        let user = match record.username {
            Some(username) => self.active_user(&username).await?.map(|user| user.username),
            None => None,
        };
        Ok(Some(SigninSession {
            cookie: cookie.to_owned(),
            user,
            csrf_token: record.csrf_token,
        }))
    }

    /// Replaces the session by a new one for `user` (a new cookie and CSRF token after login, so a
    /// session id planted before sign-in is worthless).
    pub async fn sign_in_session(
        &self,
        old: &SigninSession,
        user: &SignedInUser,
    ) -> Result<SigninSession, AuthError> {
        self.store()
            .delete_session(&lookup_hash(&old.cookie))
            .await?;
        self.save_session(Some(user.username.clone())).await
    }

    /// Whether `user` already consented to at least `scopes` for this client.
    pub async fn consent_covers(
        &self,
        user: &SignedInUser,
        request: &AuthorizationRequest,
        scopes: ScopeSet,
    ) -> Result<bool, AuthError> {
        let stored = self
            .store()
            .find_consent(&user.username, request.client.client_id.as_str())
            .await?;
        Ok(stored
            .and_then(|raw| ScopeSet::parse_canonical(&raw).ok())
            .is_some_and(|given| scopes.is_subset_of(given)))
    }

    /// Remembers the user's consent to `scopes` for this client (revocable with `user revoke-consent`).
    pub async fn remember_consent(
        &self,
        user: &SignedInUser,
        request: &AuthorizationRequest,
        scopes: ScopeSet,
    ) -> Result<(), AuthError> {
        self.store()
            .save_consent(
                &user.username,
                request.client.client_id.as_str(),
                &scopes.to_string(),
            )
            .await?;
        Ok(())
    }

    /// Issues a single-use authorization code for `user`, bound to the client, the redirect URI and
    /// the PKCE challenge, valid for `code_ttl`.
    pub async fn issue_code(
        &self,
        user: &SignedInUser,
        request: &AuthorizationRequest,
        scopes: ScopeSet,
    ) -> Result<String, AuthError> {
        let code = ClientSecret::generate().expose().to_owned();
        let ttl = i64::try_from(self.settings().code_ttl.as_secs()).unwrap_or(60);
        let record = CodeRecord {
            client_id: request.client.client_id.as_str().to_owned(),
            username: user.username.as_str().to_owned(),
            redirect_uri: request.redirect_uri.clone(),
            code_challenge: request.code_challenge.clone(),
            scopes: scopes.to_string(),
            expires_at: now() + ttl,
        };
        self.store()
            .insert_code(&lookup_hash(&code), &record)
            .await?;
        Ok(code)
    }
}

/// Plain words for what a scope lets the application do, for the consent page.
pub fn describe_scope(scope: Scope) -> &'static str {
    match scope {
        Scope::ReadPatients => "See patients' demographics and search for patients",
        Scope::WritePatients => "Create and change patient records",
        Scope::ReadAppointments => "See appointments",
        Scope::WriteAppointments => "Book, change and cancel appointments",
        Scope::ReadMedications => "See medications",
        Scope::WriteMedications => "Prescribe and discontinue medications",
        Scope::ReadLabs => "See lab orders and results",
        Scope::WriteLabs => "Order labs and record lab results",
        Scope::ReadVitals => "See vital signs",
        Scope::WriteVitals => "Record vital signs",
        Scope::ReadAllergies => "See allergies",
        Scope::WriteAllergies => "Record and change allergies",
        Scope::ReadProviders => "See the provider directory",
        Scope::ReadOwnRecords => "See your own health record",
        Scope::AdminClients => "Manage the applications registered with this server",
        Scope::ReadAudit => "Read the audit log",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_matches_the_rfc_7636_example_only() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(pkce_matches(challenge, verifier));
        assert!(!pkce_matches(
            challenge,
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXK"
        ));
        // `plain` (verifier == challenge) never passes.
        assert!(!pkce_matches(challenge, challenge));
        assert!(!pkce_matches(challenge, "short"));
    }

    #[test]
    fn repeated_parameters_are_refused_and_unknown_ones_ignored() {
        let pair = |n: &str, v: &str| (n.to_owned(), v.to_owned());
        let params = AuthorizeParams::from_pairs(vec![
            pair("client_id", "a"),
            pair("other", "x"),
            pair("state", ""),
        ])
        .unwrap();
        assert_eq!(params.client_id.as_deref(), Some("a"));
        assert_eq!(params.state, None);
        assert!(
            AuthorizeParams::from_pairs(vec![pair("client_id", "a"), pair("client_id", "b")])
                .is_err()
        );
    }

    #[test]
    fn the_consent_ticket_binds_session_and_request() {
        let session = SigninSession {
            cookie: "c".to_owned(),
            user: None,
            csrf_token: "t".to_owned(),
        };
        let params = AuthorizeParams {
            client_id: Some("a".to_owned()),
            ..AuthorizeParams::default()
        };
        let ticket = session.consent_ticket(&params);
        assert!(session.consent_ticket_matches(&params, Some(&ticket)));
        let other = AuthorizeParams {
            client_id: Some("b".to_owned()),
            ..AuthorizeParams::default()
        };
        assert!(!session.consent_ticket_matches(&other, Some(&ticket)));
        assert!(!session.consent_ticket_matches(&params, None));
    }
}
