//! Client ID metadata documents (CIMD, draft-ietf-oauth-client-id-metadata-document): a `client_id`
//! that is an https URL names a JSON document at that URL describing the client. We fetch it (no
//! redirects, at most [`MAX_DOCUMENT_BYTES`], within [`FETCH_TIMEOUT`]), refuse hosts that resolve to
//! private, loopback or link-local addresses unless the operator allows them
//! (`EHR_MCP_CIMD_ALLOW_PRIVATE`, which also allows plain http for those addresses, for labs and tests),
//! check it like a dynamic registration (public clients only, the same redirect policy), and keep it
//! for [`CACHE_TTL`]. The client gets a local id `cimd-<hash of the URL>`: tokens, audit rows and
//! consent name that id, and the operator can disable it like any other client.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::domain::access::Role;
use crate::domain::ids::ClientId;

use super::clients::NewClient;
use super::registration::{AuthMethod, RedirectClient, RegisteredBy, save_redirect_record};
use super::scope::{Scope, ScopeSet};
use super::secret::lookup_hash;
use super::{AuthError, AuthService};

/// Largest metadata document accepted.
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024;
/// Longest wait for a document (connect and read together).
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a fetched document is reused.
pub const CACHE_TTL: Duration = Duration::from_secs(300);
/// Most documents cached.
const CACHE_CAPACITY: usize = 1000;
const MAX_URL_BYTES: usize = 2000;

/// The fields of a metadata document we use.
#[derive(Debug, Deserialize)]
struct MetadataDocument {
    client_id: String,
    client_name: Option<String>,
    #[serde(default)]
    redirect_uris: Vec<String>,
    grant_types: Option<Vec<String>>,
    token_endpoint_auth_method: Option<String>,
    client_secret: Option<serde_json::Value>,
}

/// A cached resolution.
pub(super) struct CachedClient {
    fetched: Instant,
    client: RedirectClient,
}

fn refused(why: &str) -> AuthError {
    AuthError::InvalidClient(format!("client metadata document refused: {why}"))
}

/// Whether an address is one a server on the internet cannot have: loopback, private, link-local,
/// shared (CGNAT), unique-local, unspecified, multicast, documentation or broadcast.
pub fn is_private_address(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 198 && (b == 18 || b == 19))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private_address(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || first == 0x2001 && v6.segments()[1] == 0x0db8
        }
    }
}

/// `(scheme, host, port)` of a client id URL, or why it cannot be one.
fn parse_url(url: &str) -> Result<(&str, String, u16), AuthError> {
    if url.len() > MAX_URL_BYTES || url.chars().any(|c| c.is_control() || c == ' ') {
        return Err(refused("the URL is too long or not printable"));
    }
    if url.contains('#') {
        return Err(refused("the URL has a fragment"));
    }
    let (scheme, rest) = url.split_once("://").ok_or_else(|| refused("not a URL"))?;
    let (authority, path) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    if path.is_empty() || path == "/" {
        return Err(refused("the URL needs a path"));
    }
    if authority.is_empty() || authority.contains('@') {
        return Err(refused("no host, or user information in the URL"));
    }
    let default_port = if scheme == "https" { 443 } else { 80 };
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or_else(|| refused("bad IPv6 host"))?;
        let port = match after.strip_prefix(':') {
            Some(port) => port.parse().map_err(|_| refused("bad port"))?,
            None => default_port,
        };
        (host.to_owned(), port)
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (
                host.to_owned(),
                port.parse().map_err(|_| refused("bad port"))?,
            ),
            None => (authority.to_owned(), default_port),
        }
    };
    Ok((scheme, host.to_ascii_lowercase(), port))
}

impl AuthService {
    /// The authorization-code client behind a `client_id`: a registered client, or, for an https URL,
    /// the client its metadata document describes.
    pub async fn resolve_redirect_client(
        &self,
        raw_client_id: &str,
    ) -> Result<Option<RedirectClient>, AuthError> {
        if raw_client_id.starts_with("https://") || raw_client_id.starts_with("http://") {
            return self
                .client_from_metadata_document(raw_client_id)
                .await
                .map(Some);
        }
        self.redirect_client(raw_client_id).await
    }

    /// The local client id of a metadata document URL.
    pub fn metadata_document_client_id(url: &str) -> Result<ClientId, AuthError> {
        let hash = lookup_hash(url);
        ClientId::parse(&format!("cimd-{}", &hash[..24]))
            .map_err(|_| AuthError::Internal("cannot derive a client id".to_owned()))
    }

    async fn client_from_metadata_document(&self, url: &str) -> Result<RedirectClient, AuthError> {
        let cache = &self.inner.cimd_cache;
        if let Some(cached) = cache.get(url) {
            if cached.fetched.elapsed() < CACHE_TTL {
                let local = cached.client.client_id.clone();
                drop(cached);
                // Re-read: the operator may have disabled the client since.
                return self
                    .redirect_client_by_id(&local)
                    .await?
                    .ok_or_else(|| refused("the client is disabled"));
            }
        }
        let document = self.fetch_metadata_document(url).await?;
        if document.client_id != url {
            return Err(refused("its client_id is not the URL it was fetched from"));
        }
        if document.client_secret.is_some() {
            return Err(refused("a metadata document must not hold a client_secret"));
        }
        match document.token_endpoint_auth_method.as_deref() {
            None | Some("none") => {}
            Some(_) => {
                return Err(refused(
                    "only public clients (token_endpoint_auth_method none) are supported",
                ));
            }
        }
        self.settings()
            .redirects
            .check_all(&document.redirect_uris, false)
            .map_err(|error| refused(&error.to_string()))?;
        let grants: Vec<String> = document
            .grant_types
            .unwrap_or_else(|| vec!["authorization_code".to_owned(), "refresh_token".to_owned()])
            .into_iter()
            .filter(|grant| grant == "authorization_code" || grant == "refresh_token")
            .collect();
        if !grants.iter().any(|grant| grant == "authorization_code") {
            return Err(refused("grant_types must include authorization_code"));
        }
        let name = document
            .client_name
            .as_deref()
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .unwrap_or(url)
            .chars()
            .filter(|c| !c.is_control())
            .take(100)
            .collect::<String>();
        let local = Self::metadata_document_client_id(url)?;
        if self.store().find_client(&local).await?.is_none() {
            self.register_client(NewClient {
                app_id: "cimd".to_owned(),
                app_name: name,
                role: Role::System,
                scopes: ScopeSet::all_clinical()
                    .with(Scope::ReadOwnRecords)
                    .to_string(),
                patient_mrn: None,
                jwks: None,
                rate_limit: None,
                client_id: Some(local.clone()),
            })
            .await?;
        }
        save_redirect_record(
            self.store(),
            &local,
            &document.redirect_uris,
            &grants,
            AuthMethod::None,
            RegisteredBy::MetadataDocument,
        )
        .await?;
        let client = self
            .redirect_client_by_id(&local)
            .await?
            .ok_or_else(|| refused("the client is disabled"))?;
        if cache.len() >= CACHE_CAPACITY {
            cache.retain(|_, entry| entry.fetched.elapsed() < CACHE_TTL);
            if cache.len() >= CACHE_CAPACITY {
                cache.clear();
            }
        }
        cache.insert(
            url.to_owned(),
            CachedClient {
                fetched: Instant::now(),
                client: client.clone(),
            },
        );
        Ok(client)
    }

    /// Fetches and parses the document, under the address, size and time limits.
    async fn fetch_metadata_document(&self, url: &str) -> Result<MetadataDocument, AuthError> {
        let allow_private = self.settings().cimd_allow_private;
        let (scheme, host, port) = parse_url(url)?;
        let addresses: Vec<SocketAddr> = tokio::time::timeout(
            FETCH_TIMEOUT,
            tokio::net::lookup_host((host.as_str(), port)),
        )
        .await
        .map_err(|_| refused("the host name did not resolve in time"))?
        .map_err(|_| refused("the host name does not resolve"))?
        .collect();
        let address = *addresses
            .first()
            .ok_or_else(|| refused("the host name does not resolve"))?;
        let any_private = addresses
            .iter()
            .any(|address| is_private_address(address.ip()));
        if any_private && !allow_private {
            return Err(refused(
                "the host resolves to a private or loopback address",
            ));
        }
        match scheme {
            "https" => {}
            "http"
                if allow_private
                    && !addresses.is_empty()
                    && addresses.iter().all(|a| is_private_address(a.ip())) => {}
            _ => return Err(refused("the client_id URL must be https")),
        }
        let _ = rustls::crypto::ring::default_provider().install_default();
        // The connection goes to the address checked above, not to a second lookup.
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(FETCH_TIMEOUT)
            .connect_timeout(FETCH_TIMEOUT)
            .resolve(&host, address)
            .build()
            .map_err(|_| AuthError::Internal("cannot build the HTTP client".to_owned()))?;
        let mut response = client
            .get(url)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|_| refused("the document could not be fetched"))?;
        if !response.status().is_success() {
            return Err(refused("the document URL did not answer 200"));
        }
        if response
            .content_length()
            .is_some_and(|length| length > MAX_DOCUMENT_BYTES as u64)
        {
            return Err(refused("the document is too large"));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|_| refused("the document could not be read"))?
        {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(refused("the document is too large"));
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body)
            .map_err(|_| refused("the document is not valid JSON metadata"))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn private_and_loopback_addresses_are_recognised() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.1",
            "172.16.5.5",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_private_address(private.parse().unwrap()), "{private}");
        }
        for public in ["93.184.216.34", "2606:4700::1111", "8.8.8.8"] {
            assert!(!is_private_address(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn client_id_urls_need_a_host_and_a_path() {
        assert_eq!(
            parse_url("https://vscode.dev/oauth/client.json").unwrap(),
            ("https", "vscode.dev".to_owned(), 443)
        );
        assert_eq!(parse_url("http://127.0.0.1:8080/c.json").unwrap().2, 8080);
        assert!(parse_url("https://vscode.dev").is_err());
        assert!(parse_url("https://user@evil.example/x").is_err());
        assert!(parse_url("https://a.example/x#frag").is_err());
    }
}
