//! Clients of the authorization-code flow: the redirect URI policy (https on allowed hosts, or loopback
//! http per RFC 8252), RFC 7591 dynamic registration, operator pre-registration, and reading a client's
//! redirect settings back. Dynamically registered clients hold clinical scopes only, and what a token
//! grants is further cut to the signed-in user's role ([`super::users::scopes_for_role`]).

use serde::{Deserialize, Serialize};

use crate::domain::access::Role;
use crate::domain::ids::ClientId;
use crate::store::Store;
use crate::store::grants::ClientRedirectRecord;

use super::clients::NewClient;
use super::scope::{Scope, ScopeSet};
use super::{AuthError, AuthService};

/// Most redirect URIs one client may register, and the longest one.
const MAX_REDIRECT_URIS: usize = 10;
const MAX_REDIRECT_URI_BYTES: usize = 2000;

/// Which redirect URIs dynamically registered clients may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectPolicy {
    https_hosts: Vec<String>,
}

impl RedirectPolicy {
    pub fn new(hosts: &[String]) -> Self {
        Self {
            https_hosts: hosts
                .iter()
                .map(|host| host.trim().to_ascii_lowercase())
                .filter(|host| !host.is_empty())
                .collect(),
        }
    }

    /// Checks one redirect URI. `operator`: the operator registers it, so any https host is fine.
    pub fn check(&self, uri: &str, operator: bool) -> Result<(), AuthError> {
        let refuse =
            |why: &str| AuthError::InvalidRedirectUri(format!("redirect URI refused: {why}"));
        if uri.len() > MAX_REDIRECT_URI_BYTES || uri.chars().any(|c| c.is_control() || c == ' ') {
            return Err(refuse("too long or not printable"));
        }
        if uri.contains('#') {
            return Err(refuse("a fragment is not allowed"));
        }
        let (scheme, rest) = uri
            .split_once("://")
            .ok_or_else(|| refuse("not an absolute URL"))?;
        let authority = rest.split(['/', '?']).next().unwrap_or("");
        if authority.contains('@') || authority.is_empty() {
            return Err(refuse("no host, or user information in the URL"));
        }
        let host = host_of(authority).to_ascii_lowercase();
        match scheme {
            "https" if operator || self.https_hosts.contains(&host) => Ok(()),
            "https" => Err(refuse("this host is not on the operator's allowed list")),
            "http" if matches!(host.as_str(), "127.0.0.1" | "localhost" | "[::1]") => Ok(()),
            "http" => Err(refuse("plain http is only for loopback redirects")),
            _ => Err(refuse("only https, or http on loopback")),
        }
    }

    pub fn check_all(&self, uris: &[String], operator: bool) -> Result<(), AuthError> {
        if uris.is_empty() || uris.len() > MAX_REDIRECT_URIS {
            return Err(AuthError::InvalidRedirectUri(format!(
                "give 1-{MAX_REDIRECT_URIS} redirect URIs"
            )));
        }
        uris.iter().try_for_each(|uri| self.check(uri, operator))
    }
}

/// `host` of `host:port` (keeps the brackets of an IPv6 literal).
fn host_of(authority: &str) -> &str {
    if authority.starts_with('[') {
        return authority.split_inclusive(']').next().unwrap_or(authority);
    }
    authority.split(':').next().unwrap_or(authority)
}

/// Whether a registered redirect URI matches the one in a request: exactly, except that the port of a
/// loopback redirect may differ (RFC 8252 §7.3).
pub fn redirect_matches(registered: &str, requested: &str) -> bool {
    if registered == requested {
        return true;
    }
    let loopback = |uri: &str| -> Option<(String, String)> {
        let rest = uri.strip_prefix("http://")?;
        let (authority, path) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
        let host = host_of(authority);
        matches!(host, "127.0.0.1" | "localhost" | "[::1]")
            .then(|| (host.to_owned(), path.to_owned()))
    };
    matches!((loopback(registered), loopback(requested)), (Some(a), Some(b)) if a == b)
}

/// How a client of the authorization-code flow authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// A public client (PKCE only).
    None,
    ClientSecretBasic,
    ClientSecretPost,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, AuthError> {
        match raw {
            "none" => Ok(Self::None),
            "client_secret_basic" => Ok(Self::ClientSecretBasic),
            "client_secret_post" => Ok(Self::ClientSecretPost),
            _ => Err(AuthError::InvalidClientMetadata(
                "token_endpoint_auth_method must be none, client_secret_basic or client_secret_post"
                    .to_owned(),
            )),
        }
    }
}

/// The authorization-code settings of a client, parsed.
#[derive(Debug, Clone)]
pub struct RedirectClient {
    pub client_id: ClientId,
    pub app_id: String,
    pub app_name: String,
    pub redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    pub auth_method: AuthMethod,
    /// The scopes the client may hold.
    pub scopes: ScopeSet,
}

impl RedirectClient {
    pub fn allows_grant(&self, grant: &str) -> bool {
        self.grant_types.iter().any(|held| held == grant)
    }

    pub fn accepts_redirect(&self, requested: &str) -> bool {
        self.redirect_uris
            .iter()
            .any(|registered| redirect_matches(registered, requested))
    }
}

/// An RFC 7591 registration request (the fields we use; others are ignored).
#[derive(Debug, Clone, Deserialize)]
pub struct RegistrationRequest {
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    pub client_name: Option<String>,
    pub grant_types: Option<Vec<String>>,
    pub response_types: Option<Vec<String>>,
    pub token_endpoint_auth_method: Option<String>,
    pub scope: Option<String>,
}

/// The RFC 7591 answer.
#[derive(Debug, Clone, Serialize)]
pub struct RegistrationResponse {
    pub client_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    pub client_id_issued_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret_expires_at: Option<i64>,
    pub client_name: String,
    pub redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    pub response_types: Vec<&'static str>,
    pub token_endpoint_auth_method: &'static str,
    pub scope: String,
}

/// Grant types a client of the authorization-code flow may hold.
const USER_GRANTS: [&str; 2] = ["authorization_code", "refresh_token"];

/// Where a client's redirect settings came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegisteredBy {
    Dynamic,
    MetadataDocument,
    Operator,
}

impl RegisteredBy {
    fn as_str(self) -> &'static str {
        match self {
            Self::Dynamic => "dcr",
            Self::MetadataDocument => "cimd",
            Self::Operator => "operator",
        }
    }
}

/// The grant types a registration may hold (`operator`: also `client_credentials`; else
/// `authorization_code` must be among them). Absent: authorization code and refresh token.
pub fn checked_grants(
    grants: Option<Vec<String>>,
    operator: bool,
) -> Result<Vec<String>, AuthError> {
    let grants = grants.unwrap_or_else(|| USER_GRANTS.iter().map(|g| (*g).to_owned()).collect());
    for grant in &grants {
        let allowed =
            USER_GRANTS.contains(&grant.as_str()) || (operator && grant == "client_credentials");
        if !allowed {
            return Err(AuthError::InvalidClientMetadata(format!(
                "grant type {} is not available to registered clients",
                grant.chars().take(40).collect::<String>()
            )));
        }
    }
    if !grants.iter().any(|grant| grant == "authorization_code") && !operator {
        return Err(AuthError::InvalidClientMetadata(
            "grant_types must include authorization_code".to_owned(),
        ));
    }
    Ok(grants)
}

impl AuthService {
    /// RFC 7591 dynamic registration under the redirect policy. `source` keys the registration throttle.
    pub async fn register_dynamic_client(
        &self,
        request: RegistrationRequest,
        source: &str,
    ) -> Result<RegistrationResponse, AuthError> {
        self.inner
            .registration_limits
            .record_failure(None, source)
            .map_err(|retry_after| AuthError::RateLimited { retry_after })?;
        let policy = &self.settings().redirects;
        policy.check_all(&request.redirect_uris, false)?;
        let grants = checked_grants(request.grant_types, false)?;
        if let Some(types) = &request.response_types {
            if types.iter().any(|t| t != "code") {
                return Err(AuthError::InvalidClientMetadata(
                    "response_types may only be [\"code\"]".to_owned(),
                ));
            }
        }
        let method = AuthMethod::parse(
            request
                .token_endpoint_auth_method
                .as_deref()
                .unwrap_or("client_secret_basic"),
        )?;
        let allowed = ScopeSet::all_clinical().with(Scope::ReadOwnRecords);
        let scopes = match request.scope.as_deref().map(str::trim) {
            None | Some("") => allowed,
            // Clients often ask for every scope the metadata lists: they get what they may hold.
            Some(raw) => {
                let asked = ScopeSet::parse_request(raw)?;
                let held = asked.named().intersection(allowed);
                if held.is_empty() {
                    return Err(AuthError::InvalidClientMetadata(
                        "none of the requested scopes is available to registered clients"
                            .to_owned(),
                    ));
                }
                held
            }
        };
        let name = request
            .client_name
            .as_deref()
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .unwrap_or("Unnamed MCP client")
            .chars()
            .filter(|c| !c.is_control())
            .take(100)
            .collect::<String>();
        let registered = self
            .register_client(NewClient {
                app_id: "dcr".to_owned(),
                app_name: name.clone(),
                role: Role::System,
                scopes: scopes.to_string(),
                patient_mrn: None,
                jwks: None,
                rate_limit: None,
                client_id: None,
            })
            .await?;
        save_redirect_record(
            self.store(),
            &registered.client_id,
            &request.redirect_uris,
            &grants,
            method,
            RegisteredBy::Dynamic,
        )
        .await?;
        let confidential = method != AuthMethod::None;
        Ok(RegistrationResponse {
            client_id: registered.client_id.as_str().to_owned(),
            client_secret: confidential.then(|| registered.client_secret.expose().to_owned()),
            client_id_issued_at: chrono::Utc::now().timestamp(),
            client_secret_expires_at: confidential.then_some(0),
            client_name: name,
            redirect_uris: request.redirect_uris,
            grant_types: grants,
            response_types: vec!["code"],
            token_endpoint_auth_method: method.as_str(),
            scope: registered.scopes,
        })
    }

    /// The authorization-code settings of a client, or `None` for a machine-only client. A `client_id`
    /// that is not one of ours is `None`.
    pub async fn redirect_client(
        &self,
        raw_client_id: &str,
    ) -> Result<Option<RedirectClient>, AuthError> {
        let Ok(client_id) = ClientId::parse(raw_client_id) else {
            return Ok(None);
        };
        self.redirect_client_by_id(&client_id).await
    }

    pub(super) async fn redirect_client_by_id(
        &self,
        client_id: &ClientId,
    ) -> Result<Option<RedirectClient>, AuthError> {
        let Some(settings) = self
            .store()
            .find_client_redirects(client_id.as_str())
            .await?
        else {
            return Ok(None);
        };
        let Some(client) = self.store().find_client(client_id).await? else {
            return Ok(None);
        };
        if !client.is_active {
            return Ok(None);
        }
        let corrupt = || AuthError::Internal("stored client settings are invalid".to_owned());
        Ok(Some(RedirectClient {
            client_id: client.client_id,
            app_id: client.app_id,
            app_name: client.app_name,
            redirect_uris: serde_json::from_str(&settings.redirect_uris).map_err(|_| corrupt())?,
            grant_types: settings
                .grant_types
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
            auth_method: AuthMethod::parse(&settings.auth_method).map_err(|_| corrupt())?,
            scopes: ScopeSet::parse_canonical(&client.scopes).map_err(|_| corrupt())?,
        }))
    }
}

/// Gives an existing client redirect URIs and grant types: the command line's `client register
/// --redirect-uri` (the operator may name any https host; loopback http as always).
pub async fn save_operator_redirects(
    store: &Store,
    client_id: &ClientId,
    redirect_uris: &[String],
    grant_types: Vec<String>,
    method: AuthMethod,
) -> Result<(), AuthError> {
    RedirectPolicy::new(&[]).check_all(redirect_uris, true)?;
    let grants = checked_grants(Some(grant_types), true)?;
    save_redirect_record(
        store,
        client_id,
        redirect_uris,
        &grants,
        method,
        RegisteredBy::Operator,
    )
    .await
}

pub(super) async fn save_redirect_record(
    store: &Store,
    client_id: &ClientId,
    redirect_uris: &[String],
    grants: &[String],
    method: AuthMethod,
    by: RegisteredBy,
) -> Result<(), AuthError> {
    let record = ClientRedirectRecord {
        client_id: client_id.as_str().to_owned(),
        redirect_uris: serde_json::to_string(redirect_uris)
            .map_err(|_| AuthError::Internal("cannot encode redirect URIs".to_owned()))?,
        grant_types: grants.join(" "),
        auth_method: method.as_str().to_owned(),
        registered_by: by.as_str().to_owned(),
    };
    store.save_client_redirects(&record).await?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn redirect_policy_allows_listed_https_hosts_and_loopback_only() {
        let policy = RedirectPolicy::new(&["claude.ai".to_owned()]);
        assert!(
            policy
                .check("https://claude.ai/api/mcp/auth_callback", false)
                .is_ok()
        );
        assert!(
            policy
                .check("http://127.0.0.1:33418/callback", false)
                .is_ok()
        );
        assert!(policy.check("http://localhost:8080/cb", false).is_ok());
        assert!(policy.check("https://evil.example/cb", false).is_err());
        assert!(policy.check("https://evil.example/cb", true).is_ok());
        assert!(
            policy
                .check("https://claude.ai@evil.example/cb", false)
                .is_err()
        );
        assert!(policy.check("http://claude.ai/cb", false).is_err());
        assert!(policy.check("https://claude.ai/cb#frag", false).is_err());
        assert!(policy.check("javascript:alert(1)", false).is_err());
        assert!(
            policy
                .check("http://127.0.0.1.evil.example/cb", false)
                .is_err()
        );
    }

    #[test]
    fn loopback_redirects_match_on_any_port_others_exactly() {
        assert!(redirect_matches(
            "http://127.0.0.1/cb",
            "http://127.0.0.1:5000/cb"
        ));
        assert!(!redirect_matches(
            "http://127.0.0.1/cb",
            "http://127.0.0.1:5000/other"
        ));
        assert!(!redirect_matches(
            "https://claude.ai/cb",
            "https://claude.ai/cb2"
        ));
        assert!(redirect_matches(
            "https://claude.ai/cb",
            "https://claude.ai/cb"
        ));
    }
}
