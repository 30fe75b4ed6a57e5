//! Who is calling. A [`Session`] is one connection's identity (WebSocket, stdio, or one Streamable HTTP
//! session); [`BearerPrincipal`] is the identity an HTTP request proved with `Authorization: Bearer`.
//! Each tool call resolves a `Principal` from, in order: the HTTP request's bearer token, its
//! `access_token` argument, then the session's token (from the WebSocket upgrade, `authenticate`, or the environment).

use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use rmcp::RoleServer;
use rmcp::service::RequestContext;
use secrecy::{ExposeSecret, SecretString};

use crate::auth::{AuthError, AuthService, Principal};
use crate::domain::origin::{Origin, Transport};

/// The principal an HTTP request authenticated with a bearer token; the HTTP layer puts it in the
/// request's extensions, rmcp hands the request parts to the tool.
#[derive(Debug, Clone)]
pub struct BearerPrincipal(pub Principal);

/// The network address of the HTTP request behind a call; the HTTP layer puts it in the request's
/// extensions (failed authentications are limited per address).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddress(pub IpAddr);

/// Client credentials a stdio session re-issues its token from when the token expires.
#[derive(Clone)]
pub struct ClientCredentials {
    pub client_id: String,
    pub client_secret: SecretString,
}

/// One connection's identity and origin.
pub struct Session {
    origin: Origin,
    token: Mutex<Option<SecretString>>,
    credentials: Option<ClientCredentials>,
    /// Whether the connection has proved an identity once (a token on the upgrade, `authenticate`, a call
    /// with a valid token); a WebSocket that never does is closed (`EHR_MCP_UNAUTHENTICATED_TIMEOUT_SECONDS`).
    authenticated: AtomicBool,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// A session with no identity yet (in-band authentication may follow).
    pub fn anonymous(transport: Transport) -> Self {
        Self {
            origin: Origin::local(transport),
            token: Mutex::new(None),
            credentials: None,
            authenticated: AtomicBool::new(false),
        }
    }

    /// Records the peer's address (failed authentications are limited per address).
    pub fn with_peer(mut self, peer: Option<IpAddr>) -> Self {
        self.origin = self.origin.with_peer(peer);
        self
    }

    /// Where this call comes from: the session's origin, with the HTTP request's peer address when the
    /// session has none (a Streamable HTTP session spans requests).
    pub fn origin_of(&self, context: &RequestContext<RoleServer>) -> Origin {
        let request_address = context
            .extensions
            .get::<http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<ClientAddress>())
            .map(|ClientAddress(address)| *address);
        match (self.origin.peer, request_address) {
            (None, Some(address)) if self.origin.transport != Transport::Stdio => {
                self.origin.with_peer(Some(address))
            }
            _ => self.origin,
        }
    }

    /// The session's own origin (transport, and the peer address of a WebSocket).
    pub fn origin(&self) -> Origin {
        self.origin
    }

    /// A session authenticated by a token (WebSocket upgrade header, `EHR_MCP_ACCESS_TOKEN`).
    pub fn with_token(transport: Transport, token: String) -> Self {
        let session = Self::anonymous(transport);
        session.set_token(token);
        session
    }

    /// A session that authenticates with client credentials, re-issuing its token when it expires.
    pub fn with_client_credentials(transport: Transport, credentials: ClientCredentials) -> Self {
        Self {
            origin: Origin::local(transport),
            token: Mutex::new(None),
            credentials: Some(credentials),
            authenticated: AtomicBool::new(false),
        }
    }

    pub fn transport(&self) -> Transport {
        self.origin.transport
    }

    /// Authenticates the rest of the session with `token` (the `authenticate` tool does this).
    pub fn set_token(&self, token: String) {
        if let Ok(mut slot) = self.token.lock() {
            *slot = Some(SecretString::from(token));
        }
        self.authenticated.store(true, Ordering::Release);
    }

    /// Whether the connection ever proved an identity: a token set on it, or a call that resolved a
    /// caller (with an `access_token` argument, say).
    pub fn is_authenticated(&self) -> bool {
        self.authenticated.load(Ordering::Acquire)
    }

    fn token(&self) -> Option<String> {
        self.token
            .lock()
            .ok()
            .and_then(|slot| slot.as_ref().map(|t| t.expose_secret().to_owned()))
    }

    /// Resolves the caller of one tool call: the HTTP request's bearer principal (see [`bearer_of`]),
    /// else its own `access_token` argument, else this session's token.
    pub async fn resolve(
        &self,
        auth: &AuthService,
        bearer: Option<BearerPrincipal>,
        access_token: Option<&str>,
    ) -> Result<Principal, AuthError> {
        let resolved = self.resolve_caller(auth, bearer, access_token).await;
        if resolved.is_ok() {
            self.authenticated.store(true, Ordering::Release);
        }
        resolved
    }

    async fn resolve_caller(
        &self,
        auth: &AuthService,
        bearer: Option<BearerPrincipal>,
        access_token: Option<&str>,
    ) -> Result<Principal, AuthError> {
        // The request's bearer token wins: an `access_token` argument cannot swap in another identity
        // on a request the HTTP layer already authenticated.
        if let Some(BearerPrincipal(principal)) = bearer {
            return Ok(principal);
        }
        if let Some(token) = access_token {
            return auth.validate(token).await;
        }
        if let Some(token) = self.token() {
            match auth.validate(&token).await {
                Ok(principal) => return Ok(principal),
                Err(error) if self.credentials.is_none() => return Err(error),
                Err(_) => {} // expired: re-issue below
            }
        }
        match &self.credentials {
            Some(credentials) => {
                let issued = auth
                    .issue_for_client_secret(
                        &credentials.client_id,
                        credentials.client_secret.expose_secret(),
                        None,
                        None,
                        self.origin,
                    )
                    .await?;
                let principal = auth.validate(&issued.access_token).await?;
                self.set_token(issued.access_token);
                Ok(principal)
            }
            None => Err(AuthError::Unauthenticated(
                "no access token was presented".to_owned(),
            )),
        }
    }
}

/// The bearer principal of the HTTP request behind this call, if any.
pub fn bearer_of(context: &RequestContext<RoleServer>) -> Option<BearerPrincipal> {
    context
        .extensions
        .get::<http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<BearerPrincipal>())
        .cloned()
}
