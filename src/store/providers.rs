//! Providers: lookup by NPI, search by name, specialty, department and availability, insert, delete.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::tx::Tx;
use super::{Store, StoreError, now_text, parsed};
use crate::domain::clinical::Provider;
use crate::domain::ids::Npi;

/// The provider columns [`provider_from_row`] reads. The boolean is read as 0/1: the `Any` driver cannot
/// decode SQLite's `BOOLEAN` declared type, but it can decode an integer expression on both engines.
pub(crate) const PROVIDER_COLUMNS: &str = "npi, name, specialty, department, phone, email, \
     (CASE WHEN accepting_new_patients THEN 1 ELSE 0 END) AS accepting_new_patients";

/// Provider search: every given criterion must hold. `term` is a case-insensitive substring of the name,
/// the specialty or the department (the earlier system's rule);
/// `specialty` and `department` are case-insensitive substrings of those fields. Ordered by name, NPI.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProviderSearch {
    pub term: Option<String>,
    pub specialty: Option<String>,
    pub department: Option<String>,
    pub accepting_new_patients: Option<bool>,
    pub limit: u32,
}

impl Store {
    pub async fn provider(&self, npi: &Npi) -> Result<Provider, StoreError> {
        let sql = format!("SELECT {PROVIDER_COLUMNS} FROM providers WHERE npi = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(npi.as_str())
            .fetch_optional(self.pool())
            .await?
            .ok_or(StoreError::NotFound { what: "provider" })?;
        provider_from_row(&row)
    }

    pub async fn search_providers(
        &self,
        search: &ProviderSearch,
    ) -> Result<Vec<Provider>, StoreError> {
        let sql = format!(
            "SELECT {PROVIDER_COLUMNS} FROM providers \
             WHERE ($1 IS NULL OR lower(name) LIKE $1 ESCAPE '\\' \
                OR lower(specialty) LIKE $1 ESCAPE '\\' OR lower(department) LIKE $1 ESCAPE '\\') \
             AND ($2 IS NULL OR lower(specialty) LIKE $2 ESCAPE '\\') \
             AND ($3 IS NULL OR lower(department) LIKE $3 ESCAPE '\\') \
             AND ($4 IS NULL OR accepting_new_patients = $4) \
             ORDER BY lower(name), npi LIMIT $5"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(contains_pattern(search.term.as_deref()))
            .bind(contains_pattern(search.specialty.as_deref()))
            .bind(contains_pattern(search.department.as_deref()))
            .bind(search.accepting_new_patients)
            .bind(i64::from(search.limit.clamp(1, 1000)))
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(provider_from_row).collect()
    }

    pub async fn insert_provider(&self, provider: &Provider) -> Result<(), StoreError> {
        let mut conn = self.pool().acquire().await?;
        insert_provider(&mut Tx::new(&mut conn), provider).await
    }

    /// Deletes a provider; `Conflict` when appointments refer to them.
    pub async fn delete_provider(&self, npi: &Npi) -> Result<(), StoreError> {
        let mut conn = self.pool().acquire().await?;
        delete_provider(&mut Tx::new(&mut conn), npi).await
    }

    pub async fn count_providers(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM providers")
            .fetch_one(self.pool())
            .await?)
    }
}

/// Inserts a provider. A taken NPI is `Conflict` on a constraint naming `npi`.
pub async fn insert_provider(tx: &mut Tx<'_>, provider: &Provider) -> Result<(), StoreError> {
    let conn = tx.conn();
    sqlx::query(
        "INSERT INTO providers (npi, name, specialty, department, phone, email, accepting_new_patients, \
         created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
    )
    .bind(provider.npi.as_str())
    .bind(&provider.name)
    .bind(&provider.specialty)
    .bind(&provider.department)
    .bind(&provider.phone)
    .bind(&provider.email)
    .bind(provider.accepting_new_patients)
    .bind(now_text())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Deletes a provider. Appointments restrict the delete: `Conflict { constraint: "provider has appointments" }`.
pub async fn delete_provider(tx: &mut Tx<'_>, npi: &Npi) -> Result<(), StoreError> {
    let conn = tx.conn();
    let result = sqlx::query("DELETE FROM providers WHERE npi = $1")
        .bind(npi.as_str())
        .execute(&mut *conn)
        .await
        .map_err(|error| match StoreError::from(error) {
            StoreError::Conflict { .. } => StoreError::Conflict {
                constraint: "provider has appointments".to_owned(),
            },
            other => other,
        })?;
    if result.rows_affected() == 0 {
        return Err(StoreError::NotFound { what: "provider" });
    }
    Ok(())
}

/// `%text%` with LIKE wildcards escaped, lower-cased; `None` for no criterion.
pub(super) fn contains_pattern(text: Option<&str>) -> Option<String> {
    let text = text.map(str::trim).filter(|text| !text.is_empty())?;
    let escaped: String = text
        .to_lowercase()
        .chars()
        .flat_map(|c| match c {
            '%' | '_' | '\\' => vec!['\\', c],
            other => vec![other],
        })
        .collect();
    Some(format!("%{escaped}%"))
}

pub(crate) fn provider_from_row(row: &AnyRow) -> Result<Provider, StoreError> {
    Ok(Provider {
        npi: parsed(row, "npi", Npi::parse)?,
        name: row.try_get("name")?,
        specialty: row.try_get("specialty")?,
        department: row.try_get("department")?,
        phone: row.try_get("phone")?,
        email: row.try_get("email")?,
        accepting_new_patients: row.try_get::<i64, _>("accepting_new_patients")? != 0,
    })
}
