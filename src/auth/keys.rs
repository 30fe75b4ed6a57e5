//! Signing keys: ES256 (P-256) key pairs generated on first start and kept in the `signing_keys` table so
//! every instance signs and verifies with the same keys; the JWKS; rotation that keeps a retired public
//! key published until every token it signed has expired. Private keys are stored sealed with the
//! key-encryption key ([`super::key_encryption`]) when one is configured; clear keys found at start-up
//! are sealed in place.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{DecodingKey, EncodingKey};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::pkcs8::{EncodePrivateKey, LineEnding};
use rand_core::OsRng;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::store::Store;
use crate::store::keys::SigningKeyRecord;

use super::AuthError;
use super::key_encryption::{KeyEncryptionKey, is_sealed, sealed_by};

const ES256: &str = "ES256";
const STORED_TIME_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.f";

/// The key tokens are signed with now.
#[derive(Clone)]
pub struct ActiveKey {
    pub kid: String,
    pub key: EncodingKey,
}

#[derive(Default)]
struct KeyRingState {
    active: Option<ActiveKey>,
    verifying: HashMap<String, DecodingKey>,
    jwks: Value,
    /// kid and retirement of every stored key: a change means the ring must be rebuilt.
    fingerprint: Vec<(String, Option<String>)>,
}

/// The published keys and the active signing key, shared by every request.
pub struct KeyRing {
    state: RwLock<KeyRingState>,
    /// How long a retired key stays published: the longest token lifetime plus leeway.
    publish_retired_for: Duration,
    /// Opens sealed private keys; `None` only in `--demo` (keys then stay in clear).
    kek: Option<KeyEncryptionKey>,
}

impl KeyRing {
    /// Loads the keys, generating and storing the first one when there is none.
    /// With a KEK, clear private keys already stored are sealed in place first.
    pub async fn load(
        store: &Store,
        publish_retired_for: Duration,
        kek: Option<KeyEncryptionKey>,
    ) -> Result<Self, AuthError> {
        let ring = Self {
            state: RwLock::new(KeyRingState {
                jwks: json!({"keys": []}),
                ..KeyRingState::default()
            }),
            publish_retired_for,
            kek,
        };
        let records = store.signing_keys().await?;
        if let Some(kek) = &ring.kek {
            let clear: Vec<(String, String)> = records
                .iter()
                .filter(|record| !is_sealed(&record.private_pem))
                .map(|record| {
                    Ok((
                        record.kid.clone(),
                        kek.seal(&record.kid, &record.private_pem)?,
                    ))
                })
                .collect::<Result<_, AuthError>>()?;
            if !clear.is_empty() {
                store.replace_signing_key_privates(&clear).await?;
                tracing::info!(
                    keys = clear.len(),
                    kek = kek.id(),
                    "sealed clear signing keys with the key-encryption key"
                );
            }
        }
        if !records.iter().any(is_usable_active) {
            store
                .insert_signing_key(&generate_es256(ring.kek.as_ref())?)
                .await?;
            tracing::info!("generated the first ES256 signing key");
        }
        ring.reload(store).await?;
        Ok(ring)
    }

    /// Re-reads the stored keys and rebuilds the ring if they changed (a rotation by another process).
    pub async fn reload(&self, store: &Store) -> Result<(), AuthError> {
        let records = store.signing_keys().await?;
        let fingerprint: Vec<(String, Option<String>)> = records
            .iter()
            .map(|record| (record.kid.clone(), record.retired_at.clone()))
            .collect();
        if self.read_state().fingerprint == fingerprint && self.read_state().active.is_some() {
            return Ok(());
        }
        let rebuilt = build_state(
            &records,
            self.publish_retired_for,
            fingerprint,
            self.kek.as_ref(),
        )?;
        *self
            .state
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = rebuilt;
        Ok(())
    }

    fn read_state(&self) -> std::sync::RwLockReadGuard<'_, KeyRingState> {
        self.state
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn active(&self) -> Option<ActiveKey> {
        self.read_state().active.clone()
    }

    /// The verification key with this `kid`, if it is published.
    pub fn verifying_key(&self, kid: &str) -> Option<DecodingKey> {
        self.read_state().verifying.get(kid).cloned()
    }

    /// The JWKS document (`{"keys": [...]}`).
    pub fn jwks(&self) -> Value {
        self.read_state().jwks.clone()
    }
}

fn is_usable_active(record: &SigningKeyRecord) -> bool {
    record.retired_at.is_none() && record.algorithm == ES256
}

fn build_state(
    records: &[SigningKeyRecord],
    publish_retired_for: Duration,
    fingerprint: Vec<(String, Option<String>)>,
    kek: Option<&KeyEncryptionKey>,
) -> Result<KeyRingState, AuthError> {
    let now = chrono::Utc::now().naive_utc();
    let window = chrono::Duration::from_std(publish_retired_for)
        .map_err(|_| AuthError::Config("token lifetime out of range".to_owned()))?;
    let mut state = KeyRingState {
        fingerprint,
        ..KeyRingState::default()
    };
    let mut published = Vec::new();
    // Records are oldest first: the last active one wins.
    for record in records.iter().filter(|record| record.algorithm == ES256) {
        let still_published = match &record.retired_at {
            None => true,
            Some(retired_at) => {
                chrono::NaiveDateTime::parse_from_str(retired_at, STORED_TIME_FORMAT)
                    .map(|retired| retired + window > now)
                    .unwrap_or(false)
            }
        };
        if !still_published {
            continue;
        }
        let jwk: Value = serde_json::from_str(&record.public_jwk)
            .map_err(|_| AuthError::Internal("stored public key is unreadable".to_owned()))?;
        let (Some(x), Some(y)) = (jwk["x"].as_str(), jwk["y"].as_str()) else {
            return Err(AuthError::Internal(
                "stored public key lacks x or y".to_owned(),
            ));
        };
        let decoding = DecodingKey::from_ec_components(x, y)
            .map_err(|_| AuthError::Internal("stored public key is invalid".to_owned()))?;
        state.verifying.insert(record.kid.clone(), decoding);
        published.push(jwk);
        if record.retired_at.is_none() {
            let pem = private_pem(record, kek)?;
            let key = EncodingKey::from_ec_pem(pem.as_bytes())
                .map_err(|_| AuthError::Internal("stored signing key is invalid".to_owned()))?;
            state.active = Some(ActiveKey {
                kid: record.kid.clone(),
                key,
            });
        }
    }
    if state.active.is_none() {
        return Err(AuthError::Internal("no active signing key".to_owned()));
    }
    state.jwks = json!({ "keys": published });
    Ok(state)
}

/// The clear PEM of a stored key: opened with the KEK when sealed. A sealed key without a KEK is a
/// configuration error naming the KEK that sealed it.
fn private_pem(
    record: &SigningKeyRecord,
    kek: Option<&KeyEncryptionKey>,
) -> Result<String, AuthError> {
    match (kek, is_sealed(&record.private_pem)) {
        (Some(kek), true) => kek.open(&record.kid, &record.private_pem),
        (None, true) => Err(AuthError::Config(format!(
            "signing key {} is sealed with key-encryption key {}; set EHR_MCP_KEY_ENCRYPTION_KEY \
             (or EHR_MCP_KEY_ENCRYPTION_KEY_FILE) to that key",
            record.kid,
            sealed_by(&record.private_pem).unwrap_or("?")
        ))),
        (_, false) => Ok(record.private_pem.clone()),
    }
}

/// A fresh P-256 key pair as a storable record, its private key sealed with `kek` when given. `kid` is
/// the RFC 7638 JWK thumbprint.
pub fn generate_es256(kek: Option<&KeyEncryptionKey>) -> Result<SigningKeyRecord, AuthError> {
    let secret = p256::SecretKey::random(&mut OsRng);
    let private_pem = secret
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|_| AuthError::Internal("cannot encode the new signing key".to_owned()))?;
    let point = secret.public_key().to_encoded_point(false);
    let (Some(x), Some(y)) = (point.x(), point.y()) else {
        return Err(AuthError::Internal(
            "cannot encode the new public key".to_owned(),
        ));
    };
    let x = URL_SAFE_NO_PAD.encode(x);
    let y = URL_SAFE_NO_PAD.encode(y);
    let kid = ec_thumbprint("P-256", &x, &y);
    let public_jwk = json!({
        "kty": "EC", "crv": "P-256", "x": x, "y": y,
        "kid": kid, "alg": ES256, "use": "sig",
    });
    let private_pem = match kek {
        Some(kek) => kek.seal(&kid, &private_pem)?,
        None => private_pem.to_string(),
    };
    Ok(SigningKeyRecord {
        kid,
        algorithm: ES256.to_owned(),
        private_pem,
        public_jwk: public_jwk.to_string(),
        created_at: crate::store::now_text(),
        retired_at: None,
    })
}

/// RFC 7638 thumbprint of an EC public key: SHA-256 over the required members in lexicographic order.
fn ec_thumbprint(curve: &str, x: &str, y: &str) -> String {
    let canonical = format!(r#"{{"crv":"{curve}","kty":"EC","x":"{x}","y":"{y}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// `ehr-mcp keys rotate`: a new active key (sealed with `kek`); the previous one stays published until
/// its tokens expire. Returns the new `kid`.
/// The current active key must open with `kek`: a new key sealed with another KEK would leave running
/// servers unable to use it.
pub async fn rotate(store: &Store, kek: Option<&KeyEncryptionKey>) -> Result<String, AuthError> {
    for record in store
        .signing_keys()
        .await?
        .iter()
        .filter(|r| is_usable_active(r))
    {
        private_pem(record, kek)?;
    }
    let record = generate_es256(kek)?;
    store.rotate_signing_key(&record).await?;
    Ok(record.kid)
}

/// `ehr-mcp keys rewrap`: re-seals every stored private key with `new` (KEK rotation), in one
/// transaction. Rows are opened with `current` (or read as clear PEM). Returns how many keys were
/// re-sealed.
pub async fn rewrap(
    store: &Store,
    current: Option<&KeyEncryptionKey>,
    new: &KeyEncryptionKey,
) -> Result<usize, AuthError> {
    let records = store.signing_keys().await?;
    let resealed: Vec<(String, String)> = records
        .iter()
        .map(|record| {
            let pem = private_pem(record, current)?;
            Ok((record.kid.clone(), new.seal(&record.kid, &pem)?))
        })
        .collect::<Result<_, AuthError>>()?;
    store.replace_signing_key_privates(&resealed).await?;
    Ok(resealed.len())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn generated_key_signs_tokens_its_public_jwk_verifies() {
        let record = generate_es256(None).unwrap();
        let state = build_state(
            std::slice::from_ref(&record),
            Duration::from_secs(3600),
            Vec::new(),
            None,
        )
        .unwrap();
        let active = state.active.unwrap();
        assert_eq!(active.kid, record.kid);
        let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        let token =
            jsonwebtoken::encode(&header, &json!({"exp": 4_000_000_000_u64}), &active.key).unwrap();
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
        validation.validate_aud = false;
        let key = state.verifying.get(&record.kid).unwrap();
        assert!(jsonwebtoken::decode::<Value>(&token, key, &validation).is_ok());
        assert_eq!(state.jwks["keys"][0]["kid"], record.kid);
        assert!(
            state.jwks["keys"][0].get("d").is_none(),
            "no private part is published"
        );
    }

    #[test]
    fn retired_keys_stay_published_only_within_the_window() {
        let active = generate_es256(None).unwrap();
        let mut recent = generate_es256(None).unwrap();
        recent.retired_at = Some(crate::store::now_text());
        let mut old = generate_es256(None).unwrap();
        old.retired_at = Some("2000-01-01T00:00:00.000000".to_owned());
        let state = build_state(
            &[old.clone(), recent.clone(), active.clone()],
            Duration::from_secs(3600),
            Vec::new(),
            None,
        )
        .unwrap();
        assert!(state.verifying.contains_key(&recent.kid));
        assert!(!state.verifying.contains_key(&old.kid));
        assert_eq!(state.active.unwrap().kid, active.kid);
    }

    #[test]
    fn sealed_keys_need_their_kek() {
        let kek = KeyEncryptionKey::parse(&KeyEncryptionKey::generate_text(), "test").unwrap();
        let record = generate_es256(Some(&kek)).unwrap();
        assert!(is_sealed(&record.private_pem));
        let one = std::slice::from_ref(&record);
        let window = Duration::from_secs(3600);
        assert!(build_state(one, window, Vec::new(), Some(&kek)).is_ok());
        let missing = build_state(one, window, Vec::new(), None).err().unwrap();
        assert!(missing.to_string().contains(kek.id()));
    }
}
