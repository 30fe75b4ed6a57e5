//! OAuth clients: insert, look up, list, enable/disable, replace the secret hash, and the changes since a
//! time (so every instance sees a disabled client quickly).

use sqlx::Row;
use sqlx::any::AnyRow;

use super::tx::Tx;
use super::{Store, StoreError, now_text};
use crate::domain::access::Role;
use crate::domain::ids::{ClientId, Mrn};

/// A stored client. `scopes` is the space-separated canonical scope list; `secret_hash` is opaque here.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientRecord {
    pub client_id: ClientId,
    pub secret_hash: String,
    pub app_id: String,
    pub app_name: String,
    pub role: Role,
    pub scopes: String,
    pub is_active: bool,
    /// Requests per hour.
    pub rate_limit: i64,
    pub patient_mrn: Option<Mrn>,
    /// The client's public keys for `private_key_jwt`, a JWKS document.
    pub jwks: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl std::fmt::Debug for ClientRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientRecord")
            .field("client_id", &self.client_id)
            .field("app_id", &self.app_id)
            .field("role", &self.role)
            .field("scopes", &self.scopes)
            .field("is_active", &self.is_active)
            .finish_non_exhaustive()
    }
}

/// What changed about a client, for the in-memory status of token validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientStatusRecord {
    pub client_id: String,
    pub is_active: bool,
    pub rate_limit: i64,
    pub updated_at: String,
}

/// `is_active` is read as 0/1: the Any driver cannot decode SQLite's BOOLEAN column type.
const COLUMNS: &str = "client_id, secret_hash, app_id, app_name, role, scopes, \
     CASE WHEN is_active THEN 1 ELSE 0 END, rate_limit, patient_mrn, jwks, created_at, updated_at";

fn client_from_row(row: &AnyRow) -> Result<ClientRecord, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("oauth_clients.{what}"));
    let client_id: String = row.try_get(0)?;
    let role: String = row.try_get(4)?;
    let patient_mrn: Option<String> = row.try_get(8)?;
    Ok(ClientRecord {
        client_id: ClientId::parse(&client_id).map_err(|_| corrupt("client_id"))?,
        secret_hash: row.try_get(1)?,
        app_id: row.try_get(2)?,
        app_name: row.try_get(3)?,
        role: Role::parse(&role).map_err(|_| corrupt("role"))?,
        scopes: row.try_get(5)?,
        is_active: row.try_get::<i64, _>(6)? != 0,
        rate_limit: row.try_get(7)?,
        patient_mrn: patient_mrn
            .map(|mrn| Mrn::parse(&mrn))
            .transpose()
            .map_err(|_| corrupt("patient_mrn"))?,
        jwks: row.try_get(9)?,
        created_at: row.try_get(10)?,
        updated_at: row.try_get(11)?,
    })
}

impl Store {
    /// Inserts a new client (see [`insert_client`]).
    pub async fn insert_client(&self, client: &ClientRecord) -> Result<(), StoreError> {
        let mut conn = self.pool().acquire().await?;
        insert_client(&mut Tx::new(&mut conn), client).await
    }

    /// The client with this id, if any.
    pub async fn find_client(
        &self,
        client_id: &ClientId,
    ) -> Result<Option<ClientRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM oauth_clients WHERE client_id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(client_id.as_str().to_owned())
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(client_from_row).transpose()
    }

    /// Every client, oldest first.
    pub async fn list_clients(&self) -> Result<Vec<ClientRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM oauth_clients ORDER BY id");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(client_from_row).collect()
    }

    pub async fn count_clients(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM oauth_clients")
            .fetch_one(self.pool())
            .await?)
    }

    /// Enables or disables a client. `NotFound` when there is no such client.
    pub async fn set_client_active(
        &self,
        client_id: &ClientId,
        active: bool,
    ) -> Result<(), StoreError> {
        let result = sqlx::query(
            "UPDATE oauth_clients SET is_active = $1, updated_at = $2 WHERE client_id = $3",
        )
        .bind(active)
        .bind(now_text())
        .bind(client_id.as_str().to_owned())
        .execute(self.pool())
        .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound { what: "client" });
        }
        Ok(())
    }

    /// Replaces a client's secret hash. `NotFound` when there is no such client.
    pub async fn set_client_secret_hash(
        &self,
        client_id: &ClientId,
        secret_hash: &str,
    ) -> Result<(), StoreError> {
        let result = sqlx::query(
            "UPDATE oauth_clients SET secret_hash = $1, updated_at = $2 WHERE client_id = $3",
        )
        .bind(secret_hash.to_owned())
        .bind(now_text())
        .bind(client_id.as_str().to_owned())
        .execute(self.pool())
        .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound { what: "client" });
        }
        Ok(())
    }

    /// Status of clients updated at or after `since` (ISO text); all clients when `since` is `None`.
    pub async fn client_statuses_since(
        &self,
        since: Option<&str>,
    ) -> Result<Vec<ClientStatusRecord>, StoreError> {
        let rows = match since {
            Some(since) => sqlx::query(
                "SELECT client_id, CASE WHEN is_active THEN 1 ELSE 0 END, rate_limit, updated_at \
                     FROM oauth_clients WHERE updated_at >= $1",
            )
            .bind(since.to_owned())
            .fetch_all(self.pool())
            .await?,
            None => sqlx::query(
                "SELECT client_id, CASE WHEN is_active THEN 1 ELSE 0 END, rate_limit, updated_at \
                     FROM oauth_clients",
            )
            .fetch_all(self.pool())
            .await?,
        };
        rows.iter()
            .map(|row| {
                Ok(ClientStatusRecord {
                    client_id: row.try_get(0)?,
                    is_active: row.try_get::<i64, _>(1)? != 0,
                    rate_limit: row.try_get(2)?,
                    updated_at: row.try_get(3)?,
                })
            })
            .collect()
    }
}

/// Inserts a new client through `tx`. A taken `client_id` is `Conflict`.
pub async fn insert_client(tx: &mut Tx<'_>, client: &ClientRecord) -> Result<(), StoreError> {
    sqlx::query(
    "INSERT INTO oauth_clients (client_id, secret_hash, app_id, app_name, role, scopes, is_active, \
     rate_limit, patient_mrn, jwks, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
)
.bind(client.client_id.as_str().to_owned())
.bind(client.secret_hash.clone())
.bind(client.app_id.clone())
.bind(client.app_name.clone())
.bind(client.role.as_str())
.bind(client.scopes.clone())
.bind(client.is_active)
.bind(client.rate_limit)
.bind(client.patient_mrn.as_ref().map(|mrn| mrn.as_str().to_owned()))
.bind(client.jwks.clone())
.bind(client.created_at.clone())
.bind(client.updated_at.clone())
    .execute(tx.conn())
    .await?;
    Ok(())
}
