//! What the authorization-code flow stores: single-use codes, refresh-token families, the redirect
//! settings of clients, and API keys. Every secret is stored as a hash computed by the auth layer; the
//! single-use rules are enforced here by conditional `UPDATE`s, so two instances cannot both win a race.

use sqlx::Row;

use super::{Store, StoreError, now_text};

/// An authorization code as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct CodeRecord {
    pub client_id: String,
    pub username: String,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub scopes: String,
    pub expires_at: i64,
}

/// A refresh token as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct RefreshRecord {
    pub family_id: String,
    pub client_id: String,
    pub username: String,
    pub scopes: String,
    pub access_jti: String,
    pub expires_at: i64,
    pub used: bool,
    pub revoked: bool,
}

/// The authorization-code settings of a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRedirectRecord {
    pub client_id: String,
    /// JSON list of URLs.
    pub redirect_uris: String,
    /// Space-separated grant types.
    pub grant_types: String,
    /// `none`, `client_secret_basic`, `client_secret_post`.
    pub auth_method: String,
    /// `dcr`, `cimd` or `operator`.
    pub registered_by: String,
}

/// An API key as stored (no secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    pub key_id: String,
    pub key_hash: String,
    pub client_id: String,
    pub name: String,
    pub created_at: String,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
}

impl Store {
    pub async fn insert_code(&self, code_hash: &str, code: &CodeRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO authorization_codes (code_hash, client_id, username, redirect_uri, code_challenge, \
             scopes, expires_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(code_hash.to_owned())
        .bind(code.client_id.clone())
        .bind(code.username.clone())
        .bind(code.redirect_uri.clone())
        .bind(code.code_challenge.clone())
        .bind(code.scopes.clone())
        .bind(code.expires_at)
        .bind(now_text())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Marks the code used and returns it, or `Err(previous)` when it had been used before: then the
    /// family and access token it issued are returned so they can be revoked. `Ok(None)`: no such code.
    pub async fn take_code(
        &self,
        code_hash: &str,
    ) -> Result<Result<Option<CodeRecord>, (Option<String>, Option<String>)>, StoreError> {
        let claimed = sqlx::query(
            "UPDATE authorization_codes SET used_at = $1 WHERE code_hash = $2 AND used_at IS NULL",
        )
        .bind(now_text())
        .bind(code_hash.to_owned())
        .execute(self.pool())
        .await?;
        let row = sqlx::query(
            "SELECT client_id, username, redirect_uri, code_challenge, scopes, expires_at, family_id, \
             access_jti FROM authorization_codes WHERE code_hash = $1",
        )
        .bind(code_hash.to_owned())
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else { return Ok(Ok(None)) };
        if claimed.rows_affected() == 0 {
            return Ok(Err((row.try_get(6)?, row.try_get(7)?)));
        }
        Ok(Ok(Some(CodeRecord {
            client_id: row.try_get(0)?,
            username: row.try_get(1)?,
            redirect_uri: row.try_get(2)?,
            code_challenge: row.try_get(3)?,
            scopes: row.try_get(4)?,
            expires_at: row.try_get(5)?,
        })))
    }

    /// Records what a code issued, so a replay can revoke it.
    pub async fn record_code_issue(
        &self,
        code_hash: &str,
        family_id: Option<&str>,
        access_jti: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE authorization_codes SET family_id = $1, access_jti = $2 WHERE code_hash = $3",
        )
        .bind(family_id.map(str::to_owned))
        .bind(access_jti.to_owned())
        .bind(code_hash.to_owned())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn insert_refresh(
        &self,
        token_hash: &str,
        record: &RefreshRecord,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, family_id, client_id, username, scopes, access_jti, \
             expires_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(token_hash.to_owned())
        .bind(record.family_id.clone())
        .bind(record.client_id.clone())
        .bind(record.username.clone())
        .bind(record.scopes.clone())
        .bind(record.access_jti.clone())
        .bind(record.expires_at)
        .bind(now_text())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The refresh token with this hash; `used` tells whether this call claimed it (false: it had been
    /// used before, which is reuse).
    pub async fn take_refresh(
        &self,
        token_hash: &str,
    ) -> Result<Option<RefreshRecord>, StoreError> {
        let claimed = sqlx::query(
            "UPDATE refresh_tokens SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL",
        )
        .bind(now_text())
        .bind(token_hash.to_owned())
        .execute(self.pool())
        .await?;
        let row = sqlx::query(
            "SELECT family_id, client_id, username, scopes, access_jti, expires_at, \
             CASE WHEN revoked_at IS NULL THEN 0 ELSE 1 END FROM refresh_tokens WHERE token_hash = $1",
        )
        .bind(token_hash.to_owned())
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(RefreshRecord {
            family_id: row.try_get(0)?,
            client_id: row.try_get(1)?,
            username: row.try_get(2)?,
            scopes: row.try_get(3)?,
            access_jti: row.try_get(4)?,
            expires_at: row.try_get(5)?,
            used: claimed.rows_affected() == 0,
            revoked: row.try_get::<i64, _>(6)? != 0,
        }))
    }

    /// Revokes every refresh token of a family; returns the access token ids they issued (with expiry).
    pub async fn revoke_refresh_family(&self, family_id: &str) -> Result<Vec<String>, StoreError> {
        sqlx::query(
            "UPDATE refresh_tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL",
        )
        .bind(now_text())
        .bind(family_id.to_owned())
        .execute(self.pool())
        .await?;
        let rows = sqlx::query("SELECT access_jti FROM refresh_tokens WHERE family_id = $1")
            .bind(family_id.to_owned())
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|row| row.try_get(0).map_err(Into::into))
            .collect()
    }

    /// Revokes the refresh tokens of a user (for one client or all); returns the families touched.
    pub async fn revoke_user_refresh_tokens(
        &self,
        username: &str,
        client_id: Option<&str>,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE refresh_tokens SET revoked_at = $1 WHERE username = $2 AND revoked_at IS NULL \
             AND ($3 = '' OR client_id = $3)",
        )
        .bind(now_text())
        .bind(username.to_owned())
        .bind(client_id.unwrap_or("").to_owned())
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }

    /// Inserts or replaces the authorization-code settings of a client.
    pub async fn save_client_redirects(
        &self,
        record: &ClientRedirectRecord,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO client_redirects (client_id, redirect_uris, grant_types, auth_method, \
             registered_by, created_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (client_id) DO UPDATE \
             SET redirect_uris = excluded.redirect_uris, grant_types = excluded.grant_types, \
             auth_method = excluded.auth_method",
        )
        .bind(record.client_id.clone())
        .bind(record.redirect_uris.clone())
        .bind(record.grant_types.clone())
        .bind(record.auth_method.clone())
        .bind(record.registered_by.clone())
        .bind(now_text())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn find_client_redirects(
        &self,
        client_id: &str,
    ) -> Result<Option<ClientRedirectRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT client_id, redirect_uris, grant_types, auth_method, registered_by \
             FROM client_redirects WHERE client_id = $1",
        )
        .bind(client_id.to_owned())
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(ClientRedirectRecord {
            client_id: row.try_get(0)?,
            redirect_uris: row.try_get(1)?,
            grant_types: row.try_get(2)?,
            auth_method: row.try_get(3)?,
            registered_by: row.try_get(4)?,
        }))
    }

    pub async fn insert_api_key(&self, key: &ApiKeyRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO api_keys (key_id, key_hash, client_id, name, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(key.key_id.clone())
        .bind(key.key_hash.clone())
        .bind(key.client_id.clone())
        .bind(key.name.clone())
        .bind(key.created_at.clone())
        .bind(key.expires_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    const API_KEY_COLUMNS: &str =
        "key_id, key_hash, client_id, name, created_at, expires_at, last_used_at, revoked_at";

    pub async fn find_api_key(&self, key_id: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        let sql = format!(
            "SELECT {} FROM api_keys WHERE key_id = $1",
            Self::API_KEY_COLUMNS
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(key_id.to_owned())
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(api_key_from_row).transpose()
    }

    /// API keys, of one client or all, oldest first.
    pub async fn list_api_keys(
        &self,
        client_id: Option<&str>,
    ) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let sql = format!(
            "SELECT {} FROM api_keys WHERE ($1 = '' OR client_id = $1) ORDER BY created_at, key_id",
            Self::API_KEY_COLUMNS
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(client_id.unwrap_or("").to_owned())
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(api_key_from_row).collect()
    }

    pub async fn revoke_api_key(&self, key_id: &str) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE api_keys SET revoked_at = $1 WHERE key_id = $2 AND revoked_at IS NULL",
        )
        .bind(now_text())
        .bind(key_id.to_owned())
        .execute(self.pool())
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound { what: "api key" });
        }
        Ok(())
    }

    pub async fn touch_api_key(&self, key_id: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE api_keys SET last_used_at = $1 WHERE key_id = $2")
            .bind(now_text())
            .bind(key_id.to_owned())
            .execute(self.pool())
            .await?;
        Ok(())
    }
}

fn api_key_from_row(row: &sqlx::any::AnyRow) -> Result<ApiKeyRecord, StoreError> {
    Ok(ApiKeyRecord {
        key_id: row.try_get(0)?,
        key_hash: row.try_get(1)?,
        client_id: row.try_get(2)?,
        name: row.try_get(3)?,
        created_at: row.try_get(4)?,
        expires_at: row.try_get(5)?,
        last_used_at: row.try_get(6)?,
        revoked_at: row.try_get(7)?,
    })
}
