//! `private_key_jwt` client authentication (RFC 7523 §2.2, OpenID Connect Core §9): a JWT signed with a
//! key from the client's registered JWKS, `iss` = `sub` = client id, `aud` our token endpoint or issuer,
//! `exp` required, and a `jti` that is refused if seen again before it expires.

use std::time::Duration;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use crate::store::clients::ClientRecord;

use super::AuthError;

/// The `client_assertion_type` of RFC 7523.
pub const JWT_BEARER_ASSERTION_TYPE: &str =
    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Signature algorithms accepted for client assertions.
pub const ASSERTION_ALGORITHMS: [&str; 4] = ["RS256", "RS384", "ES256", "ES384"];

/// The longest lifetime we accept for an assertion (bounds the replay table).
const MAX_ASSERTION_LIFETIME: Duration = Duration::from_secs(3600);

#[derive(Debug, Deserialize)]
struct UnverifiedIdentity {
    iss: Option<String>,
    sub: Option<String>,
}

/// The verified facts of an assertion needed for replay protection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedAssertion {
    pub jti: String,
    pub expires_at: i64,
}

#[derive(Debug, Deserialize)]
struct AssertionClaims {
    exp: i64,
    jti: Option<String>,
}

fn invalid(reason: &str) -> AuthError {
    AuthError::InvalidClient(format!("client assertion rejected: {reason}"))
}

/// The client the assertion claims to come from (`sub`, which must equal `iss`). Not yet verified.
pub fn claimed_client_id(assertion: &str) -> Result<String, AuthError> {
    let identity: UnverifiedIdentity = jsonwebtoken::dangerous::insecure_decode_claims(assertion)
        .map_err(|_| invalid("malformed"))?;
    match (identity.iss, identity.sub) {
        (Some(iss), Some(sub)) if iss == sub => Ok(sub),
        _ => Err(invalid("iss and sub must both be the client id")),
    }
}

/// Verifies the assertion's signature with the client's registered keys and its claims.
pub fn verify(
    assertion: &str,
    client: &ClientRecord,
    audiences: &[&str],
    leeway: Duration,
) -> Result<VerifiedAssertion, AuthError> {
    let header = jsonwebtoken::decode_header(assertion).map_err(|_| invalid("malformed"))?;
    let alg = header.alg;
    if !matches!(
        alg,
        Algorithm::RS256 | Algorithm::RS384 | Algorithm::ES256 | Algorithm::ES384
    ) {
        return Err(invalid("algorithm not accepted"));
    }
    let jwks = client
        .jwks
        .as_deref()
        .ok_or_else(|| invalid("the client has no registered keys"))?;
    let set: JwkSet =
        serde_json::from_str(jwks).map_err(|_| invalid("registered keys unreadable"))?;
    let candidates: Vec<DecodingKey> = set
        .keys
        .iter()
        .filter(|jwk| match (&header.kid, &jwk.common.key_id) {
            (Some(wanted), Some(kid)) => wanted == kid,
            (Some(_), None) => false,
            (None, _) => true,
        })
        .filter(|jwk| {
            jwk.common
                .key_algorithm
                .is_none_or(|key_alg| key_alg == KeyAlgorithm::from(alg))
        })
        .filter(|jwk| key_fits(&jwk.algorithm, alg))
        .filter_map(|jwk| DecodingKey::from_jwk(jwk).ok())
        .collect();
    if candidates.is_empty() {
        return Err(invalid("no registered key matches"));
    }
    let client_id = client.client_id.as_str();
    let mut validation = Validation::new(alg);
    validation.leeway = leeway.as_secs();
    validation.validate_nbf = true;
    validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
    validation.set_issuer(&[client_id]);
    validation.sub = Some(client_id.to_owned());
    validation.set_audience(audiences);
    let mut last_error = invalid("bad signature");
    for key in &candidates {
        match jsonwebtoken::decode::<AssertionClaims>(assertion, key, &validation) {
            Ok(data) => return check_claims(data.claims, leeway),
            Err(error) => {
                use jsonwebtoken::errors::ErrorKind;
                last_error = match error.kind() {
                    ErrorKind::InvalidSignature => invalid("bad signature"),
                    ErrorKind::ExpiredSignature => invalid("expired"),
                    ErrorKind::ImmatureSignature => invalid("not yet valid"),
                    ErrorKind::InvalidAudience => {
                        return Err(invalid("aud must be the token endpoint or the issuer"));
                    }
                    ErrorKind::InvalidIssuer | ErrorKind::InvalidSubject => {
                        return Err(invalid("iss and sub must be the client id"));
                    }
                    ErrorKind::MissingRequiredClaim(_) => {
                        return Err(invalid("exp, iss, sub and aud are required"));
                    }
                    _ => invalid("rejected"),
                };
            }
        }
    }
    Err(last_error)
}

fn key_fits(parameters: &AlgorithmParameters, alg: Algorithm) -> bool {
    match (parameters, alg) {
        (AlgorithmParameters::RSA(_), Algorithm::RS256 | Algorithm::RS384) => true,
        (AlgorithmParameters::EllipticCurve(ec), Algorithm::ES256) => {
            ec.curve == EllipticCurve::P256
        }
        (AlgorithmParameters::EllipticCurve(ec), Algorithm::ES384) => {
            ec.curve == EllipticCurve::P384
        }
        _ => false,
    }
}

fn check_claims(claims: AssertionClaims, leeway: Duration) -> Result<VerifiedAssertion, AuthError> {
    let jti = claims
        .jti
        .filter(|jti| !jti.is_empty() && jti.len() <= 256)
        .ok_or_else(|| invalid("jti is required (1-256 characters)"))?;
    let now = chrono::Utc::now().timestamp();
    let longest = i64::try_from((MAX_ASSERTION_LIFETIME + leeway).as_secs()).unwrap_or(i64::MAX);
    if claims.exp > now.saturating_add(longest) {
        return Err(invalid("exp is too far in the future (at most one hour)"));
    }
    Ok(VerifiedAssertion {
        jti,
        expires_at: claims.exp,
    })
}
