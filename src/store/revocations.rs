//! Revoked access tokens and seen `private_key_jwt` assertion ids, both kept until they would expire.

use sqlx::Row;

use super::{Store, StoreError, now_text};

/// A revoked token id with its expiry (Unix seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedToken {
    pub jti: String,
    pub expires_at: i64,
}

impl Store {
    /// Records a revoked token id. Revoking twice is not an error.
    pub async fn revoke_token(
        &self,
        jti: &str,
        client_id: &str,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO revoked_tokens (jti, client_id, expires_at, revoked_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (jti) DO NOTHING",
        )
        .bind(jti.to_owned())
        .bind(client_id.to_owned())
        .bind(expires_at)
        .bind(now_text())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn is_token_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        let found = sqlx::query("SELECT 1 FROM revoked_tokens WHERE jti = $1")
            .bind(jti.to_owned())
            .fetch_optional(self.pool())
            .await?;
        Ok(found.is_some())
    }

    /// Tokens revoked at or after `since` (ISO text), or all when `None`.
    pub async fn revoked_tokens_since(
        &self,
        since: Option<&str>,
    ) -> Result<Vec<RevokedToken>, StoreError> {
        let rows = match since {
            Some(since) => {
                sqlx::query("SELECT jti, expires_at FROM revoked_tokens WHERE revoked_at >= $1")
                    .bind(since.to_owned())
                    .fetch_all(self.pool())
                    .await?
            }
            None => {
                sqlx::query("SELECT jti, expires_at FROM revoked_tokens")
                    .fetch_all(self.pool())
                    .await?
            }
        };
        rows.iter()
            .map(|row| {
                Ok(RevokedToken {
                    jti: row.try_get(0)?,
                    expires_at: row.try_get(1)?,
                })
            })
            .collect()
    }

    /// Remembers an assertion id; `Ok(false)` when it was already seen (a replay).
    pub async fn remember_client_assertion(
        &self,
        key: &str,
        client_id: &str,
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "INSERT INTO client_assertions (jti, client_id, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (jti) DO NOTHING",
        )
        .bind(key.to_owned())
        .bind(client_id.to_owned())
        .bind(expires_at)
        .execute(self.pool())
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Deletes revocations and assertion ids whose tokens have expired (before `now`, Unix seconds).
    pub async fn purge_expired_token_records(&self, now: i64) -> Result<u64, StoreError> {
        let revoked = sqlx::query("DELETE FROM revoked_tokens WHERE expires_at < $1")
            .bind(now)
            .execute(self.pool())
            .await?;
        let assertions = sqlx::query("DELETE FROM client_assertions WHERE expires_at < $1")
            .bind(now)
            .execute(self.pool())
            .await?;
        Ok(revoked.rows_affected() + assertions.rows_affected())
    }
}
