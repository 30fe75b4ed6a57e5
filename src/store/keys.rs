//! Token signing keys, shared by every instance using the database: insert, list, retire.

use sqlx::Row;

use super::{Store, StoreError, now_text};

/// A stored signing key. `private_pem` is PKCS#8 PEM, sealed by the auth layer's key-encryption key
/// (`ehr-mcp-sealed:v1:…`) unless the server runs `--demo` without one; `public_jwk` is the public JWK as JSON text.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKeyRecord {
    pub kid: String,
    pub algorithm: String,
    pub private_pem: String,
    pub public_jwk: String,
    pub created_at: String,
    pub retired_at: Option<String>,
}

impl std::fmt::Debug for SigningKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyRecord")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .field("created_at", &self.created_at)
            .field("retired_at", &self.retired_at)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Every key, oldest first.
    pub async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT kid, algorithm, private_pem, public_jwk, created_at, retired_at FROM signing_keys \
             ORDER BY created_at, kid",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(SigningKeyRecord {
                    kid: row.try_get(0)?,
                    algorithm: row.try_get(1)?,
                    private_pem: row.try_get(2)?,
                    public_jwk: row.try_get(3)?,
                    created_at: row.try_get(4)?,
                    retired_at: row.try_get(5)?,
                })
            })
            .collect()
    }

    pub async fn insert_signing_key(&self, key: &SigningKeyRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO signing_keys (kid, algorithm, private_pem, public_jwk, created_at, retired_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(key.kid.clone())
        .bind(key.algorithm.clone())
        .bind(key.private_pem.clone())
        .bind(key.public_jwk.clone())
        .bind(key.created_at.clone())
        .bind(key.retired_at.clone())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Inserts `new_key` and retires every other active key, in one transaction (`keys rotate`).
    pub async fn rotate_signing_key(&self, new_key: &SigningKeyRecord) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("UPDATE signing_keys SET retired_at = $1 WHERE retired_at IS NULL")
            .bind(now_text())
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO signing_keys (kid, algorithm, private_pem, public_jwk, created_at, retired_at) \
             VALUES ($1, $2, $3, $4, $5, NULL)",
        )
        .bind(new_key.kid.clone())
        .bind(new_key.algorithm.clone())
        .bind(new_key.private_pem.clone())
        .bind(new_key.public_jwk.clone())
        .bind(new_key.created_at.clone())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Replaces the stored private part of each `(kid, private)` pair, in one transaction (sealing clear
    /// keys, re-sealing under a new key-encryption key).
    pub async fn replace_signing_key_privates(
        &self,
        privates: &[(String, String)],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        for (kid, private) in privates {
            sqlx::query("UPDATE signing_keys SET private_pem = $1 WHERE kid = $2")
                .bind(private.clone())
                .bind(kid.clone())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Deletes keys retired before `before` (ISO text): their tokens have all expired.
    pub async fn delete_signing_keys_retired_before(
        &self,
        before: &str,
    ) -> Result<u64, StoreError> {
        let result = sqlx::query(
            "DELETE FROM signing_keys WHERE retired_at IS NOT NULL AND retired_at < $1",
        )
        .bind(before.to_owned())
        .execute(self.pool())
        .await?;
        Ok(result.rows_affected())
    }
}
