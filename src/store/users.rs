//! People who sign in, their browser sessions and the consent they gave clients. `password_hash` is an
//! opaque Argon2id PHC string here; sessions are keyed by the SHA-256 of the cookie value.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError, now_text};
use crate::domain::access::Role;
use crate::domain::ids::Mrn;
use crate::domain::user::Username;

/// A stored user.
#[derive(Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub username: Username,
    pub password_hash: String,
    pub role: Role,
    pub patient_mrn: Option<Mrn>,
    pub display_name: Option<String>,
    pub is_active: bool,
    pub created_at: String,
    pub updated_at: String,
}

impl std::fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRecord")
            .field("username", &self.username)
            .field("role", &self.role)
            .field("is_active", &self.is_active)
            .finish_non_exhaustive()
    }
}

/// A browser session of the sign-in pages.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub username: Option<Username>,
    pub csrf_token: String,
    pub expires_at: i64,
}

const USER_COLUMNS: &str = "username, password_hash, role, patient_mrn, display_name, is_active, \
     created_at, updated_at";

fn user_from_row(row: &AnyRow) -> Result<UserRecord, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("users.{what}"));
    let username: String = row.try_get(0)?;
    let role: String = row.try_get(2)?;
    let patient_mrn: Option<String> = row.try_get(3)?;
    Ok(UserRecord {
        username: Username::parse(&username).map_err(|_| corrupt("username"))?,
        password_hash: row.try_get(1)?,
        role: Role::parse(&role).map_err(|_| corrupt("role"))?,
        patient_mrn: patient_mrn
            .map(|mrn| Mrn::parse(&mrn))
            .transpose()
            .map_err(|_| corrupt("patient_mrn"))?,
        display_name: row.try_get(4)?,
        is_active: row.try_get::<i64, _>(5)? != 0,
        created_at: row.try_get(6)?,
        updated_at: row.try_get(7)?,
    })
}

impl Store {
    /// Inserts a user; a taken username is `Conflict`.
    pub async fn insert_user(&self, user: &UserRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO users (username, password_hash, role, patient_mrn, display_name, is_active, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(user.username.as_str().to_owned())
        .bind(user.password_hash.clone())
        .bind(user.role.as_str())
        .bind(user.patient_mrn.as_ref().map(|mrn| mrn.as_str().to_owned()))
        .bind(user.display_name.clone())
        .bind(i64::from(user.is_active))
        .bind(user.created_at.clone())
        .bind(user.updated_at.clone())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn find_user(&self, username: &Username) -> Result<Option<UserRecord>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE username = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(username.as_str().to_owned())
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// Every user, oldest first.
    pub async fn list_users(&self) -> Result<Vec<UserRecord>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY id");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(user_from_row).collect()
    }

    pub async fn count_users(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) FROM users")
            .fetch_one(self.pool())
            .await?;
        Ok(row.try_get(0)?)
    }

    /// Users changed since `since` (ISO text): (username, active), for the token validator's status.
    pub async fn user_statuses_since(
        &self,
        since: &str,
    ) -> Result<Vec<(String, bool)>, StoreError> {
        let rows = sqlx::query("SELECT username, is_active FROM users WHERE updated_at >= $1")
            .bind(since.to_owned())
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get::<i64, _>(1)? != 0)))
            .collect()
    }

    pub async fn set_user_active(
        &self,
        username: &Username,
        active: bool,
    ) -> Result<(), StoreError> {
        let done =
            sqlx::query("UPDATE users SET is_active = $1, updated_at = $2 WHERE username = $3")
                .bind(i64::from(active))
                .bind(now_text())
                .bind(username.as_str().to_owned())
                .execute(self.pool())
                .await?;
        found(done.rows_affected())
    }

    pub async fn set_user_password_hash(
        &self,
        username: &Username,
        password_hash: &str,
    ) -> Result<(), StoreError> {
        let done =
            sqlx::query("UPDATE users SET password_hash = $1, updated_at = $2 WHERE username = $3")
                .bind(password_hash.to_owned())
                .bind(now_text())
                .bind(username.as_str().to_owned())
                .execute(self.pool())
                .await?;
        found(done.rows_affected())
    }

    pub async fn insert_session(
        &self,
        session_hash: &str,
        session: &SessionRecord,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO user_sessions (session_hash, username, csrf_token, expires_at, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(session_hash.to_owned())
        .bind(session.username.as_ref().map(|u| u.as_str().to_owned()))
        .bind(session.csrf_token.clone())
        .bind(session.expires_at)
        .bind(now_text())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The unexpired session with this hash.
    pub async fn find_session(
        &self,
        session_hash: &str,
        now: i64,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT username, csrf_token, expires_at FROM user_sessions \
             WHERE session_hash = $1 AND expires_at > $2",
        )
        .bind(session_hash.to_owned())
        .bind(now)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let username: Option<String> = row.try_get(0)?;
        Ok(Some(SessionRecord {
            username: username
                .map(|name| Username::parse(&name))
                .transpose()
                .map_err(|_| StoreError::Corrupt("user_sessions.username".to_owned()))?,
            csrf_token: row.try_get(1)?,
            expires_at: row.try_get(2)?,
        }))
    }

    pub async fn delete_session(&self, session_hash: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM user_sessions WHERE session_hash = $1 OR expires_at < $2")
            .bind(session_hash.to_owned())
            .bind(chrono::Utc::now().timestamp())
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// The scopes `username` consented to for `client_id`, if remembered.
    pub async fn find_consent(
        &self,
        username: &Username,
        client_id: &str,
    ) -> Result<Option<String>, StoreError> {
        let row =
            sqlx::query("SELECT scopes FROM user_consents WHERE username = $1 AND client_id = $2")
                .bind(username.as_str().to_owned())
                .bind(client_id.to_owned())
                .fetch_optional(self.pool())
                .await?;
        row.map(|row| row.try_get(0))
            .transpose()
            .map_err(Into::into)
    }

    /// Remembers (or widens) a consent.
    pub async fn save_consent(
        &self,
        username: &Username,
        client_id: &str,
        scopes: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO user_consents (username, client_id, scopes, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (username, client_id) DO UPDATE SET scopes = excluded.scopes",
        )
        .bind(username.as_str().to_owned())
        .bind(client_id.to_owned())
        .bind(scopes.to_owned())
        .bind(now_text())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Forgets consents of `username` (for one client, or all); returns how many were removed.
    pub async fn delete_consents(
        &self,
        username: &Username,
        client_id: Option<&str>,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM user_consents WHERE username = $1 AND ($2 = '' OR client_id = $2)",
        )
        .bind(username.as_str().to_owned())
        .bind(client_id.unwrap_or("").to_owned())
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }

    /// (client_id, scopes, created_at) of every consent of `username`.
    pub async fn list_consents(
        &self,
        username: &Username,
    ) -> Result<Vec<(String, String, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT client_id, scopes, created_at FROM user_consents WHERE username = $1 ORDER BY client_id",
        )
        .bind(username.as_str().to_owned())
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?)))
            .collect()
    }
}

fn found(rows: u64) -> Result<(), StoreError> {
    if rows == 0 {
        Err(StoreError::NotFound { what: "user" })
    } else {
        Ok(())
    }
}
