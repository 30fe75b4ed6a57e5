//! Who is calling. A [`Session`] is one connection's identity (WebSocket, stdio, or one Streamable HTTP
//! session); [`BearerPrincipal`] is the identity an HTTP request proved with `Authorization: Bearer`.
//! Each tool call resolves a `Principal` from, in order: the HTTP request's bearer token, its
//! `access_token` argument, then the session's identity — the `Principal` the WebSocket upgrade or
//! `authenticate` validated (re-checked per call, so revocation acts at once), or a token from the
//! environment, validated at its first use.

use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use rmcp::RoleServer;
use rmcp::service::RequestContext;
use secrecy::{ExposeSecret, SecretString};

use crate::auth::{AuthError, AuthService, Principal};
use crate::domain::origin::{Origin, Transport};

/// The principal an HTTP request authenticated with a bearer token; the HTTP layer puts it in the
/// request's extensions, and hands it to the tool through [`RequestFacts`].
#[derive(Debug, Clone)]
pub struct BearerPrincipal(pub Principal);

/// The network address of the HTTP request behind a call; the HTTP layer puts it in the request's
/// extensions (failed authentications are limited per address).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddress(pub IpAddr);

/// What the HTTP request behind one call established: its bearer principal and peer address.
#[derive(Debug, Clone, Default)]
pub struct RequestFacts {
    pub bearer: Option<BearerPrincipal>,
    pub peer: Option<IpAddr>,
}

/// Reads the [`RequestFacts`] of a call from the extensions rmcp gives it. The HTTP transport, which
/// knows how rmcp carries the HTTP request, supplies it ([`Session::with_request_facts`]).
pub type RequestFactsReader = fn(&rmcp::model::Extensions) -> RequestFacts;

/// Client credentials a stdio session re-issues its token from when the token expires.
#[derive(Clone)]
pub struct ClientCredentials {
    pub client_id: String,
    pub client_secret: SecretString,
}

/// The identity a session holds between calls.
enum Identity {
    None,
    /// A token not yet validated (`EHR_MCP_ACCESS_TOKEN`, a FHIR request's header).
    Token(SecretString),
    /// What a validated token or API key established; re-checked per call.
    Principal(Principal),
}

/// One connection's identity and origin.
pub struct Session {
    origin: Origin,
    identity: Mutex<Identity>,
    credentials: Option<ClientCredentials>,
    /// Whether the connection has proved an identity once (a token on the upgrade, `authenticate`, a call
    /// with a valid token); a WebSocket that never does is closed (`EHR_MCP_UNAUTHENTICATED_TIMEOUT_SECONDS`).
    authenticated: AtomicBool,
    request_facts: Option<RequestFactsReader>,
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
            identity: Mutex::new(Identity::None),
            credentials: None,
            authenticated: AtomicBool::new(false),
            request_facts: None,
        }
    }

    /// Records the peer's address (failed authentications are limited per address).
    pub fn with_peer(mut self, peer: Option<IpAddr>) -> Self {
        self.origin = self.origin.with_peer(peer);
        self
    }

    /// Reads each call's bearer principal and peer address with `reader` (Streamable HTTP).
    pub fn with_request_facts(mut self, reader: RequestFactsReader) -> Self {
        self.request_facts = Some(reader);
        self
    }

    /// What the HTTP request behind this call established (nothing outside Streamable HTTP).
    fn facts_of(&self, context: &RequestContext<RoleServer>) -> RequestFacts {
        self.request_facts
            .map(|read| read(&context.extensions))
            .unwrap_or_default()
    }

    /// The bearer principal of the HTTP request behind this call, if any.
    pub fn bearer_of(&self, context: &RequestContext<RoleServer>) -> Option<BearerPrincipal> {
        self.facts_of(context).bearer
    }

    /// Where this call comes from: the session's origin, with the HTTP request's peer address when the
    /// session has none (a Streamable HTTP session spans requests).
    pub fn origin_of(&self, context: &RequestContext<RoleServer>) -> Origin {
        match (self.origin.peer, self.facts_of(context).peer) {
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

    /// A session authenticated by a token not yet validated (`EHR_MCP_ACCESS_TOKEN`, a FHIR request's
    /// header); the first call validates it.
    pub fn with_token(transport: Transport, token: String) -> Self {
        let session = Self::anonymous(transport);
        session.set_identity(Identity::Token(SecretString::from(token)));
        session
    }

    /// A session whose caller a transport has already authenticated (the WebSocket upgrade).
    pub fn with_principal(transport: Transport, principal: Principal) -> Self {
        let session = Self::anonymous(transport);
        session.set_principal(principal);
        session
    }

    /// A session that authenticates with client credentials, re-issuing its token when it expires.
    pub fn with_client_credentials(transport: Transport, credentials: ClientCredentials) -> Self {
        Self {
            credentials: Some(credentials),
            ..Self::anonymous(transport)
        }
    }

    pub fn transport(&self) -> Transport {
        self.origin.transport
    }

    /// Authenticates the rest of the session as `principal` (the `authenticate` tool does this).
    pub fn set_principal(&self, principal: Principal) {
        self.set_identity(Identity::Principal(principal));
    }

    fn set_identity(&self, identity: Identity) {
        if let Ok(mut slot) = self.identity.lock() {
            *slot = identity;
        }
        self.authenticated.store(true, Ordering::Release);
    }

    /// Whether the connection ever proved an identity: a token set on it, or a call that resolved a
    /// caller (with an `access_token` argument, say).
    pub fn is_authenticated(&self) -> bool {
        self.authenticated.load(Ordering::Acquire)
    }

    /// The session's identity as it stands (cloned out of the lock).
    fn identity(&self) -> Identity {
        match self.identity.lock().as_deref() {
            Ok(Identity::Token(token)) => {
                Identity::Token(SecretString::from(token.expose_secret().to_owned()))
            }
            Ok(Identity::Principal(principal)) => Identity::Principal(principal.clone()),
            Ok(Identity::None) | Err(_) => Identity::None,
        }
    }

    /// Resolves the caller of one tool call: the HTTP request's bearer principal (see
    /// [`Self::bearer_of`]), else its own `access_token` argument, else this session's identity.
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
        let checked = match self.identity() {
            Identity::Principal(principal) => Some(auth.recheck(principal).await),
            Identity::Token(token) => {
                let validated = auth.validate(token.expose_secret()).await;
                if let Ok(principal) = &validated {
                    self.set_principal(principal.clone());
                }
                Some(validated)
            }
            Identity::None => None,
        };
        match checked {
            Some(Ok(principal)) => return Ok(principal),
            Some(Err(error)) if self.credentials.is_none() => return Err(error),
            Some(Err(_)) | None => {} // expired: re-issue below
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
                self.set_principal(principal.clone());
                Ok(principal)
            }
            None => Err(AuthError::Unauthenticated(
                "no access token was presented".to_owned(),
            )),
        }
    }
}
