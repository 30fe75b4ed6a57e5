//! Client management over the store: register (the secret is returned once), list, disable, enable,
//! rotate the secret. Used by the `register_client` tool (through `AuthService`) and the CLI.

use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use serde::Serialize;

use crate::domain::access::Role;
use crate::domain::ids::{ClientId, Mrn};
use crate::store::clients::ClientRecord;
use crate::store::{Store, StoreError, Tx, now_text};

use super::AuthError;
use super::scope::{Scope, ScopeSet};
use super::secret::ClientSecret;

/// Default `rate_limit` (requests per hour), as in the earlier system.
pub const DEFAULT_RATE_LIMIT: i64 = 1000;
/// Highest accepted `rate_limit`.
pub const MAX_RATE_LIMIT: i64 = 100_000_000;

/// A client to register.
#[derive(Debug, Clone)]
pub struct NewClient {
    pub app_id: String,
    pub app_name: String,
    pub role: Role,
    /// Space-separated scopes; SMART aliases are accepted and stored as our scope names.
    pub scopes: String,
    /// Required for (and only for) role `patient`.
    pub patient_mrn: Option<Mrn>,
    /// Public keys for `private_key_jwt`, a JWKS document (`{"keys": [...]}`).
    pub jwks: Option<String>,
    /// Requests per hour; default [`DEFAULT_RATE_LIMIT`].
    pub rate_limit: Option<i64>,
    /// A chosen id (the demo clients); otherwise one is generated from the app id.
    pub client_id: Option<ClientId>,
}

/// A registered client with its secret, which is shown this once.
#[derive(Debug, Clone, Serialize)]
pub struct RegisteredClient {
    pub client_id: ClientId,
    #[serde(serialize_with = "serialize_secret")]
    pub client_secret: ClientSecret,
    pub app_id: String,
    pub app_name: String,
    pub role: Role,
    pub scopes: String,
    pub rate_limit: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patient_mrn: Option<Mrn>,
}

fn serialize_secret<S: serde::Serializer>(
    secret: &ClientSecret,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(secret.expose())
}

/// A client as listed (no secret, no hash).
#[derive(Debug, Clone, Serialize)]
pub struct ClientInfo {
    pub client_id: ClientId,
    pub app_id: String,
    pub app_name: String,
    pub role: Role,
    pub scopes: String,
    pub is_active: bool,
    pub rate_limit: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patient_mrn: Option<Mrn>,
    pub private_key_jwt: bool,
    pub created_at: String,
    pub updated_at: String,
}

impl From<ClientRecord> for ClientInfo {
    fn from(record: ClientRecord) -> Self {
        Self {
            client_id: record.client_id,
            app_id: record.app_id,
            app_name: record.app_name,
            role: record.role,
            scopes: record.scopes,
            is_active: record.is_active,
            rate_limit: record.rate_limit,
            patient_mrn: record.patient_mrn,
            private_key_jwt: record.jwks.is_some(),
            created_at: record.created_at,
            updated_at: record.updated_at,
        }
    }
}

/// A validated new client not yet stored: its row and what its registrant is shown once. Stored by
/// [`PreparedClient::insert`] inside the caller's transaction (the `register_client` tool commits it
/// with its audit row) or by [`register`].
#[derive(Debug)]
pub struct PreparedClient {
    record: ClientRecord,
    registered: RegisteredClient,
}

impl PreparedClient {
    pub fn client(&self) -> &RegisteredClient {
        &self.registered
    }

    /// Stores the client through `tx`. A taken `client_id` is `Conflict`.
    pub async fn insert(&self, tx: &mut Tx<'_>) -> Result<(), StoreError> {
        crate::store::clients::insert_client(tx, &self.record).await
    }

    /// What the audit row says was created: client id, role and scopes (never the secret).
    pub fn audit_detail(&self) -> String {
        let registered = &self.registered;
        let patient = registered
            .patient_mrn
            .as_ref()
            .map(|mrn| format!(" patient_mrn={mrn}"))
            .unwrap_or_default();
        format!(
            "created client_id={} app_id={} role={} scopes={} rate_limit={}{patient}",
            registered.client_id,
            registered.app_id,
            registered.role.as_str(),
            registered.scopes,
            registered.rate_limit,
        )
    }

    pub fn into_registered(self) -> RegisteredClient {
        self.registered
    }
}

/// Validates and stores a new client; returns it with its secret (shown once).
pub async fn register(store: &Store, request: NewClient) -> Result<RegisteredClient, AuthError> {
    let prepared = prepare(request)?;
    store
        .insert_client(&prepared.record)
        .await
        .map_err(|error| match error {
            StoreError::Conflict { .. } => {
                AuthError::InvalidRequest("a client with this client_id already exists".to_owned())
            }
            other => AuthError::from(other),
        })?;
    Ok(prepared.registered)
}

/// Checks a new client and gives it its id and secret, without storing it.
pub fn prepare(request: NewClient) -> Result<PreparedClient, AuthError> {
    let app_id = checked_app_id(&request.app_id)?;
    let app_name = request.app_name.trim();
    if app_name.is_empty()
        || app_name.chars().count() > 200
        || app_name.chars().any(char::is_control)
    {
        return Err(AuthError::InvalidRequest(
            "app_name must be 1-200 printable characters".to_owned(),
        ));
    }
    let scopes = requested_client_scopes(&request.scopes, request.role)?;
    match (request.role, &request.patient_mrn) {
        (Role::Patient, None) => {
            return Err(AuthError::InvalidRequest(
                "a patient client needs patient_mrn".to_owned(),
            ));
        }
        (role, Some(_)) if role != Role::Patient => {
            return Err(AuthError::InvalidRequest(
                "patient_mrn is only for role patient".to_owned(),
            ));
        }
        _ => {}
    }
    let jwks = request.jwks.as_deref().map(checked_jwks).transpose()?;
    let rate_limit = request.rate_limit.unwrap_or(DEFAULT_RATE_LIMIT);
    if !(1..=MAX_RATE_LIMIT).contains(&rate_limit) {
        return Err(AuthError::InvalidRequest(format!(
            "rate_limit must be 1-{MAX_RATE_LIMIT} requests per hour"
        )));
    }
    let client_id = match request.client_id {
        Some(client_id) => client_id,
        None => generated_client_id(&app_id)?,
    };
    let secret = ClientSecret::generate();
    let now = now_text();
    let record = ClientRecord {
        client_id: client_id.clone(),
        secret_hash: secret.hash(),
        app_id: app_id.clone(),
        app_name: app_name.to_owned(),
        role: request.role,
        scopes: scopes.to_string(),
        is_active: true,
        rate_limit,
        patient_mrn: request.patient_mrn.clone(),
        jwks,
        created_at: now.clone(),
        updated_at: now,
    };
    let registered = RegisteredClient {
        client_id,
        client_secret: secret,
        app_id,
        app_name: app_name.to_owned(),
        role: request.role,
        scopes: scopes.to_string(),
        rate_limit,
        patient_mrn: request.patient_mrn,
    };
    Ok(PreparedClient { record, registered })
}

/// Every client, oldest first.
pub async fn list(store: &Store) -> Result<Vec<ClientInfo>, AuthError> {
    Ok(store
        .list_clients()
        .await?
        .into_iter()
        .map(ClientInfo::from)
        .collect())
}

/// Disables (or re-enables) a client. Its tokens stop working at once on this instance and within the
/// status refresh interval on others.
pub async fn set_active(
    store: &Store,
    client_id: &ClientId,
    active: bool,
) -> Result<(), AuthError> {
    store
        .set_client_active(client_id, active)
        .await
        .map_err(not_found_client)
}

/// A new secret for the client; the old one stops working at once. Returns the new secret (shown once).
pub async fn rotate_secret(store: &Store, client_id: &ClientId) -> Result<ClientSecret, AuthError> {
    let secret = ClientSecret::generate();
    store
        .set_client_secret_hash(client_id, &secret.hash())
        .await
        .map_err(not_found_client)?;
    Ok(secret)
}

fn not_found_client(error: StoreError) -> AuthError {
    match error {
        StoreError::NotFound { .. } => AuthError::NotFound("no such client".to_owned()),
        other => AuthError::from(other),
    }
}

fn checked_app_id(raw: &str) -> Result<String, AuthError> {
    let app_id = raw.trim();
    let valid = (1..=48).contains(&app_id.len())
        && app_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if valid {
        Ok(app_id.to_owned())
    } else {
        Err(AuthError::InvalidRequest(
            "app_id must be 1-48 letters, digits, '-', '_' or '.'".to_owned(),
        ))
    }
}

/// The scopes a new client may hold: parsed (aliases expanded), non-empty; administrative scopes only
/// for role admin.
fn requested_client_scopes(raw: &str, role: Role) -> Result<ScopeSet, AuthError> {
    let request = ScopeSet::parse_request(raw)?;
    let scopes = request
        .wildcards
        .iter()
        .fold(request.exact, |set, group| set.union(*group));
    if scopes.is_empty() {
        return Err(AuthError::InvalidScope(
            "a client needs at least one scope".to_owned(),
        ));
    }
    let administrative = ScopeSet::of(&[Scope::AdminClients, Scope::ReadAudit]);
    if role != Role::Admin && !scopes.intersection(administrative).is_empty() {
        return Err(AuthError::InvalidScope(
            "admin:clients and read:audit are for role admin only".to_owned(),
        ));
    }
    Ok(scopes)
}

/// `{app_id}-{12 hex digits}`.
fn generated_client_id(app_id: &str) -> Result<ClientId, AuthError> {
    let random = uuid::Uuid::new_v4().simple().to_string();
    let suffix = random.get(..12).unwrap_or(&random);
    ClientId::parse(&format!("{app_id}-{suffix}"))
        .map_err(|_| AuthError::Internal("generated client id is invalid".to_owned()))
}

/// A JWKS for `private_key_jwt`: parseable, at least one RSA or EC (P-256/P-384) key, no private parts.
fn checked_jwks(raw: &str) -> Result<String, AuthError> {
    let invalid = |why: &str| AuthError::InvalidRequest(format!("jwks: {why}"));
    let value: serde_json::Value =
        serde_json::from_str(raw).map_err(|_| invalid("not valid JSON"))?;
    let keys = value
        .get("keys")
        .and_then(|keys| keys.as_array())
        .ok_or_else(|| invalid("expected {\"keys\": [...]}"))?;
    if keys.is_empty() {
        return Err(invalid("no keys"));
    }
    for key in keys {
        let private = ["d", "p", "q", "dp", "dq", "qi", "k"];
        if private.iter().any(|member| key.get(member).is_some()) {
            return Err(invalid(
                "contains private key material; register public keys only",
            ));
        }
    }
    let set: JwkSet =
        serde_json::from_value(value.clone()).map_err(|_| invalid("unreadable key"))?;
    for jwk in &set.keys {
        match &jwk.algorithm {
            AlgorithmParameters::RSA(_) | AlgorithmParameters::EllipticCurve(_) => {}
            _ => return Err(invalid("only RSA and EC keys are accepted")),
        }
    }
    Ok(value.to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn client_scopes_expand_aliases_and_keep_admin_scopes_for_admins() {
        let scopes = requested_client_scopes("system/Patient.rs read:labs", Role::System).unwrap();
        assert_eq!(scopes.to_string(), "read:patients read:labs");
        assert!(requested_client_scopes("admin:clients", Role::Doctor).is_err());
        assert!(requested_client_scopes("admin:clients read:audit", Role::Admin).is_ok());
        assert!(requested_client_scopes("", Role::Doctor).is_err());
    }

    #[test]
    fn jwks_with_private_parts_is_refused() {
        let public = r#"{"keys":[{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}"#;
        assert!(checked_jwks(public).is_ok());
        let private = r#"{"keys":[{"kty":"EC","crv":"P-256","x":"a","y":"b","d":"secret"}]}"#;
        assert!(checked_jwks(private).is_err());
        assert!(checked_jwks("{}").is_err());
    }
}
