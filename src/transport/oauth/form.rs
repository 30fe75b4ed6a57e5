//! Reading an OAuth request: the form body (RFC 6749 §3.2: urlencoded, no repeated parameters, empty
//! means absent) and the client's authentication (Basic header, form secret, or client assertion).

use std::collections::HashMap;

use axum::body::Body;
use axum::http::{HeaderMap, header};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::auth::assertion::JWT_BEARER_ASSERTION_TYPE;
use crate::auth::{AuthError, ClientCredentials};

/// Largest accepted OAuth request body.
const MAX_FORM_BYTES: usize = 64 * 1024;

/// The parameters of a form body, each at most once; empty values dropped.
#[derive(Debug, Default)]
pub struct Form(HashMap<String, String>);

impl Form {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    pub async fn read(headers: &HeaderMap, body: Body) -> Result<Self, AuthError> {
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("");
        let media_type = content_type.split(';').next().unwrap_or("").trim();
        if !media_type.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
            return Err(AuthError::InvalidRequest(
                "the body must be application/x-www-form-urlencoded".to_owned(),
            ));
        }
        let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES)
            .await
            .map_err(|_| {
                AuthError::InvalidRequest("the body is too large or unreadable".to_owned())
            })?;
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes)
            .map_err(|_| AuthError::InvalidRequest("the body is not a valid form".to_owned()))?;
        let mut parameters = HashMap::new();
        for (name, value) in pairs {
            if value.is_empty() {
                continue;
            }
            if parameters.contains_key(&name) {
                return Err(AuthError::InvalidRequest(format!(
                    "parameter {} is repeated",
                    printable(&name)
                )));
            }
            parameters.insert(name, value);
        }
        Ok(Self(parameters))
    }
}

/// How the client authenticated, as far as the request shows.
#[derive(Debug)]
pub struct ClientAuthentication {
    pub credentials: ClientCredentials,
    /// The `Authorization: Basic` header was used (a 401 then carries `WWW-Authenticate: Basic`).
    pub basic: bool,
}

/// Exactly one client authentication method, or the RFC 6749 error: none → `invalid_client`
/// (the error says whether Basic was tried), more than one → `invalid_request`.
pub fn client_authentication(
    headers: &HeaderMap,
    form: &Form,
) -> Result<ClientAuthentication, (AuthError, bool)> {
    let basic = basic_credentials(headers).map_err(|error| (error, true))?;
    let post = form.get("client_secret");
    let assertion = form.get("client_assertion");
    let assertion_type = form.get("client_assertion_type");
    let methods = usize::from(basic.is_some())
        + usize::from(post.is_some())
        + usize::from(assertion.is_some());
    if methods > 1 {
        return Err((
            AuthError::InvalidRequest(
                "use exactly one client authentication method (Basic header, client_secret or client_assertion)"
                    .to_owned(),
            ),
            basic.is_some(),
        ));
    }
    if let Some((client_id, client_secret)) = basic {
        if form
            .get("client_id")
            .is_some_and(|given| given != client_id)
        {
            return Err((
                AuthError::InvalidRequest(
                    "client_id in the body differs from the Basic credentials".to_owned(),
                ),
                true,
            ));
        }
        return Ok(ClientAuthentication {
            credentials: ClientCredentials::Secret {
                client_id,
                client_secret,
            },
            basic: true,
        });
    }
    if let Some(client_secret) = post {
        let client_id = form.get("client_id").ok_or_else(|| {
            (
                AuthError::InvalidRequest("client_secret needs client_id".to_owned()),
                false,
            )
        })?;
        return Ok(ClientAuthentication {
            credentials: ClientCredentials::Secret {
                client_id: client_id.to_owned(),
                client_secret: client_secret.to_owned(),
            },
            basic: false,
        });
    }
    if let Some(assertion) = assertion {
        if assertion_type != Some(JWT_BEARER_ASSERTION_TYPE) {
            return Err((
                AuthError::InvalidRequest(format!(
                    "client_assertion_type must be {JWT_BEARER_ASSERTION_TYPE}"
                )),
                false,
            ));
        }
        return Ok(ClientAuthentication {
            credentials: ClientCredentials::Assertion {
                client_id: form.get("client_id").map(str::to_owned),
                assertion: assertion.to_owned(),
            },
            basic: false,
        });
    }
    Err((
        AuthError::InvalidClient("client authentication is required".to_owned()),
        true,
    ))
}

/// `Authorization: Basic base64(urlencode(id) ":" urlencode(secret))` (RFC 6749 §2.3.1). Other schemes
/// are not client authentication and are ignored.
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, AuthError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let malformed = || AuthError::InvalidClient("malformed Basic credentials".to_owned());
    let value = value.to_str().map_err(|_| malformed())?;
    let Some((scheme, encoded)) = value.trim().split_once(' ') else {
        return Ok(None);
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| malformed())?;
    let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(malformed)?;
    let id = form_decode(id).ok_or_else(malformed)?;
    let secret = form_decode(secret).ok_or_else(malformed)?;
    if id.is_empty() {
        return Err(malformed());
    }
    Ok(Some((id, secret)))
}

fn form_decode(raw: &str) -> Option<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(&format!("v={raw}")).ok()?;
    pairs
        .into_iter()
        .next()
        .map(|(_, value)| value)
        .or(Some(String::new()))
}

fn printable(raw: &str) -> String {
    raw.chars()
        .filter(|c| c.is_ascii_graphic())
        .take(40)
        .collect()
}
