//! Keys at rest: the private signing keys are stored sealed with a key-encryption key (KEK) the operator
//! supplies (`EHR_MCP_KEY_ENCRYPTION_KEY` or `EHR_MCP_KEY_ENCRYPTION_KEY_FILE`), so a copy of the database
//! alone yields no key that can sign a token.
//!
//! Format of a sealed `private_pem` column: `ehr-mcp-sealed:v1:<kek id>:<base64url(nonce ‖ ciphertext)>`,
//! XChaCha20-Poly1305 with a random 192-bit nonce and the key's `kid` as associated data (a sealed key
//! moved to another row does not open). The KEK id (first 8 bytes of a SHA-256 over the KEK, in hex) names
//! which KEK sealed a row without revealing it, so a wrong KEK is reported as such.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::rand_core::RngCore;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};

use super::AuthError;

/// The marker of a sealed private key; anything else in the column is a clear PEM (a database created
/// before keys were sealed, or a `--demo` database without a KEK).
pub const SEALED_PREFIX: &str = "ehr-mcp-sealed:v1:";

/// The length of a KEK in bytes (256 bits).
pub const KEK_BYTES: usize = 32;

const NONCE_BYTES: usize = 24;

/// A key-encryption key. Its `Debug` shows only its id.
#[derive(Clone)]
pub struct KeyEncryptionKey {
    cipher: XChaCha20Poly1305,
    id: String,
}

impl std::fmt::Debug for KeyEncryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyEncryptionKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl KeyEncryptionKey {
    /// Parses a KEK: 32 random bytes as base64 (standard or URL-safe, padded or not) or 64 hex digits,
    /// surrounding whitespace ignored. `source` names the setting in the error message.
    pub fn parse(text: &str, source: &str) -> Result<Self, AuthError> {
        let text = text.trim();
        let bytes = decode_key_text(text).ok_or_else(|| {
            AuthError::Config(format!(
                "{source} must be {KEK_BYTES} random bytes as base64 or 64 hex digits \
                 (generate one with `ehr-mcp keys generate-kek`)"
            ))
        })?;
        let id = hex(&Sha256::digest([b"ehr-mcp kek id\0".as_slice(), &bytes].concat())[..8]);
        let cipher = XChaCha20Poly1305::new_from_slice(&bytes)
            .map_err(|_| AuthError::Config(format!("{source} has the wrong length")))?;
        Ok(Self { cipher, id })
    }

    /// A fresh random KEK as base64 text.
    pub fn generate_text() -> String {
        let mut bytes = [0_u8; KEK_BYTES];
        OsRng.fill_bytes(&mut bytes);
        STANDARD.encode(bytes)
    }

    /// The public identifier of this KEK (recorded in every row it sealed).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Seals the private key `plain` of key `kid`.
    pub fn seal(&self, kid: &str, plain: &str) -> Result<String, AuthError> {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let ciphertext = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plain.as_bytes(),
                    aad: aad(kid).as_bytes(),
                },
            )
            .map_err(|_| AuthError::Internal("cannot seal the signing key".to_owned()))?;
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&ciphertext);
        Ok(format!(
            "{SEALED_PREFIX}{}:{}",
            self.id,
            URL_SAFE_NO_PAD.encode(sealed)
        ))
    }

    /// Opens a sealed private key of key `kid`. A row sealed by another KEK, or altered, is refused with
    /// a message naming the KEK ids (never key material).
    pub fn open(&self, kid: &str, stored: &str) -> Result<String, AuthError> {
        let (sealed_by, payload) = sealed_parts(stored).ok_or_else(|| {
            AuthError::Config(format!("signing key {kid}: the stored key is not sealed"))
        })?;
        if sealed_by != self.id {
            return Err(AuthError::Config(format!(
                "signing key {kid} is sealed with key-encryption key {sealed_by}, but the configured \
                 EHR_MCP_KEY_ENCRYPTION_KEY is {}; configure the key it was sealed with",
                self.id
            )));
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .filter(|bytes| bytes.len() > NONCE_BYTES)
            .ok_or_else(|| corrupt(kid))?;
        let (nonce, ciphertext) = bytes.split_at(NONCE_BYTES);
        let nonce: [u8; NONCE_BYTES] = nonce.try_into().map_err(|_| corrupt(kid))?;
        let plain = self
            .cipher
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: aad(kid).as_bytes(),
                },
            )
            .map_err(|_| corrupt(kid))?;
        String::from_utf8(plain).map_err(|_| corrupt(kid))
    }
}

/// Whether a stored private key is sealed.
pub fn is_sealed(stored: &str) -> bool {
    stored.starts_with(SEALED_PREFIX)
}

/// The KEK id of a sealed row.
pub fn sealed_by(stored: &str) -> Option<&str> {
    sealed_parts(stored).map(|(id, _)| id)
}

fn sealed_parts(stored: &str) -> Option<(&str, &str)> {
    stored.strip_prefix(SEALED_PREFIX)?.split_once(':')
}

fn aad(kid: &str) -> String {
    format!("ehr-mcp signing key {kid}")
}

fn corrupt(kid: &str) -> AuthError {
    AuthError::Config(format!(
        "signing key {kid} does not open with the configured key-encryption key (altered row?)"
    ))
}

fn decode_key_text(text: &str) -> Option<Vec<u8>> {
    if text.len() == KEK_BYTES * 2 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return (0..KEK_BYTES)
            .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok())
            .collect();
    }
    [&STANDARD, &URL_SAFE]
        .into_iter()
        .find_map(|engine| engine.decode(text).ok())
        .or_else(|| URL_SAFE_NO_PAD.decode(text).ok())
        .or_else(|| {
            base64::engine::general_purpose::STANDARD_NO_PAD
                .decode(text)
                .ok()
        })
        .filter(|bytes| bytes.len() == KEK_BYTES)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn sealed_keys_open_only_with_their_kek_and_kid() {
        let kek = KeyEncryptionKey::parse(&KeyEncryptionKey::generate_text(), "test").unwrap();
        let other = KeyEncryptionKey::parse(&KeyEncryptionKey::generate_text(), "test").unwrap();
        let sealed = kek.seal("kid-1", "-----BEGIN PRIVATE KEY-----").unwrap();
        assert!(is_sealed(&sealed));
        assert!(!sealed.contains("PRIVATE"));
        assert_eq!(sealed_by(&sealed), Some(kek.id()));
        assert_eq!(
            kek.open("kid-1", &sealed).unwrap(),
            "-----BEGIN PRIVATE KEY-----"
        );
        assert!(kek.open("kid-2", &sealed).is_err(), "bound to its kid");
        let refused = other.open("kid-1", &sealed).unwrap_err().to_string();
        assert!(refused.contains(kek.id()) && refused.contains(other.id()));
        let mut altered = sealed.clone();
        altered.pop();
        altered.push(if sealed.ends_with('A') { 'B' } else { 'A' });
        assert!(kek.open("kid-1", &altered).is_err());
    }

    #[test]
    fn kek_text_forms() {
        let hex_text = "00".repeat(KEK_BYTES);
        let b64 = STANDARD.encode([0_u8; KEK_BYTES]);
        assert_eq!(
            KeyEncryptionKey::parse(&hex_text, "x").unwrap().id(),
            KeyEncryptionKey::parse(&format!(" {b64}\n"), "x")
                .unwrap()
                .id()
        );
        let short = KeyEncryptionKey::parse("c2hvcnQ=", "EHR_MCP_KEY_ENCRYPTION_KEY").unwrap_err();
        assert!(short.to_string().contains("EHR_MCP_KEY_ENCRYPTION_KEY"));
        assert!(format!("{:?}", KeyEncryptionKey::parse(&b64, "x").unwrap()).contains("id"));
    }
}
