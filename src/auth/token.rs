//! Access tokens: the claims we issue (PRODUCT §4), signing, and cryptographic validation — algorithm
//! allow-list, signature with the key the algorithm belongs to, `typ`, `iss`, `aud`, `exp`/`nbf` with a
//! small leeway. Revocation and client status are checked by the caller ([`super::AuthService::validate`]).

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use p256::elliptic_curve::scalar::IsHigh;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::domain::access::Role;
use crate::domain::ids::{ClientId, Mrn};
use crate::domain::user::Username;

use super::keys::KeyRing;
use super::scope::ScopeSet;
use super::{AuthError, Principal};

/// The `typ` header of our access tokens (RFC 9068), so no other JWT can pass as one.
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// The claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub nbf: i64,
    pub jti: String,
    pub client_id: String,
    pub scope: String,
    pub role: String,
    pub app_id: String,
    #[serde(default)]
    pub app_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patient: Option<String>,
    /// The signed-in person (authorization-code tokens); then `sub` is this username.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
}

impl AccessClaims {
    /// The caller these claims describe. Fails when a claim is not one of ours.
    pub fn principal(&self) -> Result<Principal, AuthError> {
        let invalid = || AuthError::Unauthenticated("access token claims are invalid".to_owned());
        let user = match &self.username {
            Some(username) if *username == self.sub => {
                Some(Username::parse(username).map_err(|_| invalid())?)
            }
            Some(_) => return Err(invalid()),
            None if self.sub == self.client_id => None,
            None => return Err(invalid()),
        };
        Ok(Principal {
            user,
            client_id: ClientId::parse(&self.client_id).map_err(|_| invalid())?,
            app_id: self.app_id.clone(),
            app_name: self.app_name.clone(),
            role: Role::parse(&self.role).map_err(|_| invalid())?,
            scopes: ScopeSet::parse_canonical(&self.scope).map_err(|_| invalid())?,
            patient: self
                .patient
                .as_deref()
                .map(Mrn::parse)
                .transpose()
                .map_err(|_| invalid())?,
            token_id: self.jti.clone(),
            expires_at: self.exp,
        })
    }
}

/// The default longest token lifetime accepted: the longest `EHR_MCP_TOKEN_TTL_SECONDS` allowed.
pub const DEFAULT_MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(86_400);

/// The ES256 signature of a compact JWS, when it is one (64 bytes, r ‖ s).
fn es256_signature(token: &str) -> Option<p256::ecdsa::Signature> {
    let (_, signature) = token.rsplit_once('.')?;
    let bytes = URL_SAFE_NO_PAD.decode(signature).ok()?;
    p256::ecdsa::Signature::from_slice(&bytes).ok()
}

/// ECDSA signatures come in two valid forms, (r, s) and (r, n − s). Only the low-S form is produced and
/// accepted, so every token has exactly one valid encoding (no malleability).
fn low_s(token: String) -> String {
    let Some(low) = es256_signature(&token).and_then(|signature| signature.normalize_s()) else {
        return token;
    };
    match token.rsplit_once('.') {
        Some((signed, _)) => format!("{signed}.{}", URL_SAFE_NO_PAD.encode(low.to_bytes())),
        None => token,
    }
}

/// Signs and verifies access tokens for one issuer and audience.
pub struct TokenCodec {
    pub issuer: String,
    pub audience: String,
    pub ttl: Duration,
    pub leeway: Duration,
    /// The longest `exp − iat` accepted (a token minted with a longer life is refused).
    pub max_lifetime: Duration,
    /// HS256 key: only when the operator set `JWT_SECRET_KEY`.
    hs256: Option<(EncodingKey, DecodingKey)>,
}

impl TokenCodec {
    pub fn new(
        issuer: String,
        audience: String,
        ttl: Duration,
        leeway: Duration,
        hs256_secret: Option<&SecretString>,
    ) -> Self {
        let hs256 = hs256_secret.map(|secret| {
            let bytes = secret.expose_secret().as_bytes();
            (
                EncodingKey::from_secret(bytes),
                DecodingKey::from_secret(bytes),
            )
        });
        Self {
            issuer,
            audience,
            ttl,
            leeway,
            max_lifetime: ttl.max(DEFAULT_MAX_TOKEN_LIFETIME),
            hs256,
        }
    }

    /// The algorithms this server signs with and so accepts (the allow-list): ES256, plus HS256 when set.
    pub fn accepted_algorithms(&self) -> Vec<&'static str> {
        let mut algorithms = vec!["ES256"];
        if self.hs256.is_some() {
            algorithms.push("HS256");
        }
        algorithms
    }

    /// Claims for a new token of this client with the granted scopes, valid from now.
    pub fn claims_for(
        &self,
        client_id: &ClientId,
        app_id: &str,
        app_name: &str,
        role: Role,
        scopes: ScopeSet,
        patient: Option<&Mrn>,
    ) -> AccessClaims {
        let now = chrono::Utc::now().timestamp();
        let ttl = i64::try_from(self.ttl.as_secs()).unwrap_or(3600);
        AccessClaims {
            iss: self.issuer.clone(),
            sub: client_id.as_str().to_owned(),
            aud: self.audience.clone(),
            exp: now + ttl,
            iat: now,
            nbf: now,
            jti: uuid::Uuid::new_v4().to_string(),
            client_id: client_id.as_str().to_owned(),
            scope: scopes.to_string(),
            role: role.as_str().to_owned(),
            app_id: app_id.to_owned(),
            app_name: app_name.to_owned(),
            patient: patient.map(|mrn| mrn.as_str().to_owned()),
            username: None,
        }
    }

    /// Claims for a signed-in person using `client_id`: `sub` is the username.
    pub fn claims_for_user(
        &self,
        client_id: &ClientId,
        app_id: &str,
        app_name: &str,
        user: &super::users::SignedInUser,
        scopes: ScopeSet,
    ) -> AccessClaims {
        let claims = self.claims_for(
            client_id,
            app_id,
            app_name,
            user.role,
            scopes,
            user.patient_mrn.as_ref(),
        );
        AccessClaims {
            sub: user.username.as_str().to_owned(),
            username: Some(user.username.as_str().to_owned()),
            ..claims
        }
    }

    /// Signs: HS256 when the operator configured a shared key, else ES256 with the active key.
    pub fn sign(&self, claims: &AccessClaims, keys: &KeyRing) -> Result<String, AuthError> {
        let (header, key) = match &self.hs256 {
            Some((encoding, _)) => (Header::new(Algorithm::HS256), encoding.clone()),
            None => {
                let active = keys
                    .active()
                    .ok_or_else(|| AuthError::Internal("no active signing key".to_owned()))?;
                let mut header = Header::new(Algorithm::ES256);
                header.kid = Some(active.kid);
                (header, active.key)
            }
        };
        let header = Header {
            typ: Some(ACCESS_TOKEN_TYP.to_owned()),
            ..header
        };
        jsonwebtoken::encode(&header, claims, &key)
            .map(low_s)
            .map_err(|_| AuthError::Internal("cannot sign the access token".to_owned()))
    }

    /// Full cryptographic and claim validation. Every failure is `Unauthenticated` with a safe reason.
    pub fn decode(&self, token: &str, keys: &KeyRing) -> Result<AccessClaims, AuthError> {
        let invalid =
            |reason: &str| AuthError::Unauthenticated(format!("invalid access token: {reason}"));
        let header = jsonwebtoken::decode_header(token).map_err(|_| invalid("malformed"))?;
        if header.typ.as_deref() != Some(ACCESS_TOKEN_TYP) {
            return Err(invalid("not an access token"));
        }
        // Each accepted algorithm is bound to its own key type: ES256 only ever verifies with our EC
        // public keys, HS256 only with the operator's shared secret. Anything else is refused here.
        let key = match header.alg {
            Algorithm::ES256 => {
                let signature = es256_signature(token).ok_or_else(|| invalid("bad signature"))?;
                if bool::from(signature.s().is_high()) {
                    return Err(invalid("high-S signature"));
                }
                let kid = header.kid.as_deref().ok_or_else(|| invalid("no key id"))?;
                keys.verifying_key(kid)
                    .ok_or_else(|| invalid("unknown signing key"))?
            }
            Algorithm::HS256 => match &self.hs256 {
                Some((_, decoding)) => decoding.clone(),
                None => return Err(invalid("algorithm not accepted")),
            },
            _ => return Err(invalid("algorithm not accepted")),
        };
        let mut validation = Validation::new(header.alg);
        validation.leeway = self.leeway.as_secs();
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        let claims = jsonwebtoken::decode::<AccessClaims>(token, &key, &validation)
            .map(|data| data.claims)
            .map_err(|error| {
                use jsonwebtoken::errors::ErrorKind;
                match error.kind() {
                    ErrorKind::ExpiredSignature => invalid("expired"),
                    ErrorKind::ImmatureSignature => invalid("not yet valid"),
                    ErrorKind::InvalidAudience => invalid("wrong audience"),
                    ErrorKind::InvalidIssuer => invalid("wrong issuer"),
                    ErrorKind::InvalidSignature => invalid("bad signature"),
                    ErrorKind::MissingRequiredClaim(_) => invalid("missing claim"),
                    _ => invalid("rejected"),
                }
            })?;
        let leeway = i64::try_from(self.leeway.as_secs()).unwrap_or(0);
        let max_lifetime = i64::try_from(self.max_lifetime.as_secs()).unwrap_or(i64::MAX);
        if claims.iat > chrono::Utc::now().timestamp().saturating_add(leeway) {
            return Err(invalid("issued in the future"));
        }
        if claims.exp.saturating_sub(claims.iat) > max_lifetime.saturating_add(leeway) {
            return Err(invalid("lifetime longer than the accepted maximum"));
        }
        Ok(claims)
    }

    /// Whether `kid` names a key this codec would look up (so an unknown one may warrant a key reload).
    pub fn is_unknown_key_error(error: &AuthError) -> bool {
        matches!(error, AuthError::Unauthenticated(message) if message.ends_with("unknown signing key"))
    }
}
