//! Bulk loading for import and synthetic data: multi-row `INSERT … VALUES (…), (…) RETURNING` statements,
//! run by the caller inside one transaction. Parents return their row ids, which the children use directly.

use std::collections::HashMap;

mod tables;

pub use tables::{
    ALLERGIES, LAB_RESULTS, MEDICATIONS, PatientTable, VITAL_SIGNS, insert_appointments,
    insert_children, insert_for_patient, insert_patients, insert_providers,
};

use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::{Any, AnyConnection, Row};

use super::{StoreError, now_text};
use crate::store::tx::Tx;

/// Row ids by public key (MRN or NPI text), as returned by the parent inserts.
pub type RowIds = HashMap<String, i64>;

/// What a bulk insert does with a record whose public key (MRN, NPI, record id) is already stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnExisting {
    /// Fail with `Conflict` (the caller's transaction then rolls back).
    Fail,
    /// Leave the stored record as it is and skip this one (`ON CONFLICT (key) DO NOTHING`).
    Skip,
}

impl OnExisting {
    fn clause(self, key: &str) -> String {
        match self {
            Self::Fail => String::new(),
            Self::Skip => format!(" ON CONFLICT ({key}) DO NOTHING"),
        }
    }
}

/// Most bound values in one statement (SQLite allows 32,766, PostgreSQL 65,535).
const MAX_VALUES_PER_STATEMENT: usize = 30_000;

pub type AnyQuery<'q> = Query<'q, Any, AnyArguments>;

/// How bound values are written. SQLite looks a named parameter (`$7`) up by a linear scan, which makes
/// binding 30,000 of them quadratic; anonymous `?` parameters bind in constant time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Placeholders {
    Numbered,
    Anonymous,
}

impl Placeholders {
    pub(crate) fn of(conn: &AnyConnection) -> Self {
        if conn.backend_name() == "SQLite" {
            Self::Anonymous
        } else {
            Self::Numbered
        }
    }

    /// `count` placeholders separated by `, `.
    fn list(self, count: usize, first: usize) -> String {
        let mut text = String::with_capacity(count * 4);
        for n in first..first + count {
            if n > first {
                text.push_str(", ");
            }
            match self {
                Self::Anonymous => text.push('?'),
                Self::Numbered => {
                    text.push('$');
                    text.push_str(&n.to_string());
                }
            }
        }
        text
    }
}

/// `INSERT INTO {table} ({columns}) VALUES (…), (…) {suffix}` for `rows` rows.
pub(crate) fn insert_sql(
    placeholders: Placeholders,
    table: &str,
    columns: &[&str],
    rows: usize,
    suffix: &str,
) -> String {
    let mut sql = format!("INSERT INTO {table} ({}) VALUES ", columns.join(", "));
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        sql.push_str(&placeholders.list(columns.len(), row * columns.len() + 1));
        sql.push(')');
    }
    sql.push_str(suffix);
    sql
}

fn rows_per_statement(columns: &[&str]) -> usize {
    (MAX_VALUES_PER_STATEMENT / columns.len()).max(1)
}

/// Runs one multi-row insert per chunk of `records`, binding each record with `bind`. The first column
/// is the public key. Returns how many rows were inserted.
pub(super) async fn insert_chunks<T>(
    tx: &mut Tx<'_>,
    table: &str,
    columns: &[&str],
    on_existing: OnExisting,
    records: &[T],
    bind: impl for<'q> Fn(AnyQuery<'q>, &'q T, &'q str) -> Result<AnyQuery<'q>, StoreError>,
) -> Result<u64, StoreError> {
    let conn = tx.conn();
    let now = now_text();
    let suffix = on_existing.clause(columns[0]);
    let mut inserted = 0;
    for chunk in records.chunks(rows_per_statement(columns)) {
        let sql = insert_sql(Placeholders::of(conn), table, columns, chunk.len(), &suffix);
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for record in chunk {
            query = bind(query, record, &now)?;
        }
        inserted += query.execute(&mut *conn).await?.rows_affected();
    }
    Ok(inserted)
}

/// Like [`insert_chunks`], collecting `RETURNING id, {key}` of the inserted rows into a map.
pub(super) async fn insert_chunks_returning<T>(
    tx: &mut Tx<'_>,
    table: &str,
    columns: &[&str],
    on_existing: OnExisting,
    records: &[T],
    bind: impl for<'q> Fn(AnyQuery<'q>, &'q T, &'q str) -> AnyQuery<'q>,
) -> Result<RowIds, StoreError> {
    let conn = tx.conn();
    let now = now_text();
    let key = columns[0];
    let suffix = format!("{} RETURNING id, {key}", on_existing.clause(key));
    let mut ids = RowIds::with_capacity(records.len());
    for chunk in records.chunks(rows_per_statement(columns)) {
        let sql = insert_sql(Placeholders::of(conn), table, columns, chunk.len(), &suffix);
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for record in chunk {
            query = bind(query, record, &now);
        }
        for row in query.fetch_all(&mut *conn).await? {
            ids.insert(row.try_get(key)?, row.try_get("id")?);
        }
    }
    Ok(ids)
}

/// Row ids of the stored parents among `keys` (MRNs of `patients` or NPIs of `providers`).
pub async fn existing_row_ids(
    tx: &mut Tx<'_>,
    parent: Parent,
    keys: &[String],
) -> Result<RowIds, StoreError> {
    let conn = tx.conn();
    let (table, key) = match parent {
        Parent::Patients => ("patients", "mrn"),
        Parent::Providers => ("providers", "npi"),
    };
    let mut ids = RowIds::with_capacity(keys.len());
    for chunk in keys.chunks(MAX_VALUES_PER_STATEMENT) {
        let placeholders = Placeholders::of(conn).list(chunk.len(), 1);
        let sql = format!("SELECT id, {key} FROM {table} WHERE {key} IN ({placeholders})");
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for value in chunk {
            query = query.bind(value.as_str());
        }
        for row in query.fetch_all(&mut *conn).await? {
            ids.insert(row.try_get(key)?, row.try_get("id")?);
        }
    }
    Ok(ids)
}

/// How many patients and providers are stored (to refuse an import into a database in use).
pub async fn parent_counts(tx: &mut Tx<'_>) -> Result<(i64, i64), StoreError> {
    let conn = tx.conn();
    let row = sqlx::query(
        "SELECT (SELECT COUNT(*) FROM patients) AS patients, (SELECT COUNT(*) FROM providers) AS providers",
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok((row.try_get("patients")?, row.try_get("providers")?))
}

/// The parent tables whose row ids children refer to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parent {
    Patients,
    Providers,
}

pub(super) fn row_id(ids: &RowIds, key: &str, what: &'static str) -> Result<i64, StoreError> {
    ids.get(key).copied().ok_or(StoreError::NotFound { what })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_row_statements_number_their_placeholders() {
        assert_eq!(
            insert_sql(Placeholders::Numbered, "t", &["a", "b"], 2, " RETURNING id"),
            "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4) RETURNING id"
        );
        assert_eq!(
            insert_sql(Placeholders::Anonymous, "t", &["a", "b"], 2, ""),
            "INSERT INTO t (a, b) VALUES (?, ?), (?, ?)"
        );
        assert_eq!(rows_per_statement(&["a"; 20]), 1500);
    }
}
