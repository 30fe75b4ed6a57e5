//! The audit log table: append rows (only the audit writer does), read the chain head, page through the
//! chain in order, and filtered queries for administrators. Rows are never updated or deleted.

use sqlx::Row;

use super::bulk::{Placeholders, insert_sql};
use super::direct::from_sqlite;
use super::rows::Columns;
use super::tx::Tx;
use super::{Engine, Store, StoreError};

/// One stored audit row, as text columns. Built and hashed by `crate::audit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    pub seq: i64,
    pub occurred_at: String,
    pub request_id: String,
    pub transport: String,
    pub client_id: Option<String>,
    pub app_id: Option<String>,
    pub role: Option<String>,
    pub action: String,
    pub patient_mrn: Option<String>,
    pub outcome: String,
    pub detail: Option<String>,
    pub prev_hash: String,
    pub row_hash: String,
}

/// Filters of an audit query; every field is optional. Newest rows first.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub client_id: Option<String>,
    pub patient_mrn: Option<String>,
    pub action: Option<String>,
    /// Inclusive lower bound on `occurred_at` (ISO text, UTC).
    pub since: Option<String>,
    /// Exclusive upper bound on `occurred_at` (ISO text, UTC).
    pub until: Option<String>,
    pub limit: i64,
}

/// An AuditEvent search (the FHIR API): every given criterion must hold. Oldest rows first (chain
/// order), so offset pages stay stable while rows are appended.
#[derive(Debug, Clone, Default)]
pub struct AuditSearch {
    pub client_id: Option<String>,
    pub patient_mrn: Option<String>,
    pub action: Option<String>,
    /// Any of these outcomes (`success`, `denied`, `failed`); empty: any.
    pub outcomes: Vec<String>,
    /// Inclusive lower bound on `occurred_at` (ISO text, UTC).
    pub since: Option<String>,
    /// Exclusive upper bound on `occurred_at` (ISO text, UTC).
    pub until: Option<String>,
}

const COLUMNS: &str = "seq, occurred_at, request_id, transport, client_id, app_id, role, action, \
     patient_mrn, outcome, detail, prev_hash, row_hash";

/// Rows per multi-row INSERT (13 parameters each).
const INSERT_CHUNK: usize = 64;

/// An advisory-lock key that serialises audit writers of several instances sharing PostgreSQL.
const AUDIT_LOCK_KEY: i64 = 0x4548_525f_4155_4454; // "EHR_AUDT"

/// The chain head a new batch continues: the last row's `(seq, row_hash)`, `None` for an empty log.
pub type AuditHead = Option<(i64, String)>;

const AUDIT_HEAD: &str = "SELECT seq, row_hash FROM audit_log ORDER BY seq DESC LIMIT 1";

/// One row on the direct SQLite path (`?`: rusqlite's placeholders).
static INSERT_ONE_AUDIT_RECORD: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let columns: Vec<&str> = COLUMNS.split(',').map(str::trim).collect();
    insert_sql(Placeholders::Anonymous, "audit_log", &columns, 1, "")
});

impl Store {
    /// Appends the rows `build` numbers and hashes from the chain head, in one transaction that holds the
    /// chain's lock (SQLite's write lock, PostgreSQL's advisory lock) from reading the head to the
    /// commit. On a SQLite file it runs on the calling thread (the audit writer's own) on the writer's
    /// own connection (see [`super::direct`]).
    pub async fn append_audit(
        &self,
        build: impl FnOnce(AuditHead) -> Vec<AuditRecord>,
    ) -> Result<(), StoreError> {
        if let Some(direct) = self.direct() {
            return direct.run_writer(|connection| append_direct(connection, build));
        }
        let mut batch = self.begin().await?;
        let mut tx = batch.tx();
        lock_audit_chain(&mut tx, self.engine()).await?;
        let records = build(audit_head(&mut tx).await?);
        insert_audit_records(&mut tx, &records).await?;
        batch.commit().await
    }
}

fn append_direct(
    connection: &mut rusqlite::Connection,
    build: impl FnOnce(AuditHead) -> Vec<AuditRecord>,
) -> Result<(), StoreError> {
    use rusqlite::OptionalExtension;
    // IMMEDIATE: the write lock is taken before the head is read, so no other writer can append between.
    let tx = connection
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(from_sqlite)?;
    let head = tx
        .prepare_cached(AUDIT_HEAD)
        .and_then(|mut statement| {
            statement
                .query_row([], |row| Ok((row.get(0)?, row.get(1)?)))
                .optional()
        })
        .map_err(from_sqlite)?;
    let records = build(head);
    {
        let mut insert = tx
            .prepare_cached(&INSERT_ONE_AUDIT_RECORD)
            .map_err(from_sqlite)?;
        for record in &records {
            insert
                .execute(rusqlite::params![
                    record.seq,
                    record.occurred_at,
                    record.request_id,
                    record.transport,
                    record.client_id,
                    record.app_id,
                    record.role,
                    record.action,
                    record.patient_mrn,
                    record.outcome,
                    record.detail,
                    record.prev_hash,
                    record.row_hash,
                ])
                .map_err(from_sqlite)?;
        }
    }
    tx.commit().map_err(from_sqlite)
}

/// Takes the transaction-scoped lock that makes this writer the only one appending (PostgreSQL). On SQLite
/// the caller's `BEGIN IMMEDIATE` already holds the database write lock.
pub async fn lock_audit_chain(tx: &mut Tx<'_>, engine: Engine) -> Result<(), StoreError> {
    let conn = tx.conn();
    if engine == Engine::Postgres {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(AUDIT_LOCK_KEY)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// The last row's `(seq, row_hash)`, or `None` for an empty log.
pub async fn audit_head(tx: &mut Tx<'_>) -> Result<AuditHead, StoreError> {
    let conn = tx.conn();
    let row = sqlx::query(AUDIT_HEAD).fetch_optional(&mut *conn).await?;
    match row {
        Some(row) => Ok(Some((row.try_get(0)?, row.try_get(1)?))),
        None => Ok(None),
    }
}

/// Appends rows (already numbered and hashed) in multi-row statements.
pub async fn insert_audit_records(
    tx: &mut Tx<'_>,
    records: &[AuditRecord],
) -> Result<(), StoreError> {
    let conn = tx.conn();
    let placeholders = Placeholders::of(conn);
    let columns: Vec<&str> = COLUMNS.split(',').map(str::trim).collect();
    for chunk in records.chunks(INSERT_CHUNK) {
        let sql = insert_sql(placeholders, "audit_log", &columns, chunk.len(), "");
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for record in chunk {
            query = query
                .bind(record.seq)
                .bind(record.occurred_at.clone())
                .bind(record.request_id.clone())
                .bind(record.transport.clone())
                .bind(record.client_id.clone())
                .bind(record.app_id.clone())
                .bind(record.role.clone())
                .bind(record.action.clone())
                .bind(record.patient_mrn.clone())
                .bind(record.outcome.clone())
                .bind(record.detail.clone())
                .bind(record.prev_hash.clone())
                .bind(record.row_hash.clone());
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

fn record_from_row(row: &(impl Columns + ?Sized)) -> Result<AuditRecord, StoreError> {
    Ok(AuditRecord {
        seq: row.integer("seq")?,
        occurred_at: row.text("occurred_at")?,
        request_id: row.text("request_id")?,
        transport: row.text("transport")?,
        client_id: row.optional_text("client_id")?,
        app_id: row.optional_text("app_id")?,
        role: row.optional_text("role")?,
        action: row.text("action")?,
        patient_mrn: row.optional_text("patient_mrn")?,
        outcome: row.text("outcome")?,
        detail: row.optional_text("detail")?,
        prev_hash: row.text("prev_hash")?,
        row_hash: row.text("row_hash")?,
    })
}

/// A page of the chain on the direct SQLite path.
static AUDIT_PAGE_AFTER: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!("SELECT {COLUMNS} FROM audit_log WHERE seq > ?1 ORDER BY seq LIMIT ?2")
});

impl Store {
    /// Up to `limit` rows with `seq > after`, in chain order (for verification).
    pub async fn audit_page_after(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        if let Some(direct) = self.direct() {
            // Thousands of rows: on a blocking thread, not in place on a runtime worker.
            return direct
                .run_blocking(move |connection| {
                    let mut statement = connection
                        .prepare_cached(&AUDIT_PAGE_AFTER)
                        .map_err(from_sqlite)?;
                    let mut rows = statement.query([after, limit]).map_err(from_sqlite)?;
                    let mut page = Vec::new();
                    while let Some(row) = rows.next().map_err(from_sqlite)? {
                        page.push(record_from_row(row)?);
                    }
                    Ok(page)
                })
                .await;
        }
        let sql = format!("SELECT {COLUMNS} FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(after)
            .bind(limit)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(record_from_row).collect()
    }

    /// Rows matching the filter, newest first.
    pub async fn query_audit(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>, StoreError> {
        let mut conditions: Vec<String> = Vec::new();
        let mut values: Vec<String> = Vec::new();
        let optional = [
            ("client_id = ", &filter.client_id),
            ("patient_mrn = ", &filter.patient_mrn),
            ("action = ", &filter.action),
            ("occurred_at >= ", &filter.since),
            ("occurred_at < ", &filter.until),
        ];
        for (condition, value) in optional {
            if let Some(value) = value {
                values.push(value.clone());
                conditions.push(format!("{condition}${}", values.len()));
            }
        }
        let where_clause = if conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conditions.join(" AND "))
        };
        let sql = format!(
            "SELECT {COLUMNS} FROM audit_log{where_clause} ORDER BY seq DESC LIMIT ${}",
            values.len() + 1
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for value in values {
            query = query.bind(value);
        }
        let rows = query
            .bind(filter.limit.clamp(1, 10_000))
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(record_from_row).collect()
    }

    /// The row numbered `seq`.
    pub async fn audit_record(&self, seq: i64) -> Result<Option<AuditRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM audit_log WHERE seq = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(seq)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(record_from_row).transpose()
    }

    /// Rows matching `search`, oldest first: how many in all, and `limit` of them from `offset`.
    pub async fn search_audit(
        &self,
        search: &AuditSearch,
        limit: u32,
        offset: u32,
    ) -> Result<(u64, Vec<AuditRecord>), StoreError> {
        let mut conditions: Vec<String> = Vec::new();
        let mut values: Vec<String> = Vec::new();
        let optional = [
            ("client_id = ", &search.client_id),
            ("patient_mrn = ", &search.patient_mrn),
            ("action = ", &search.action),
            ("occurred_at >= ", &search.since),
            ("occurred_at < ", &search.until),
        ];
        for (condition, value) in optional {
            if let Some(value) = value {
                values.push(value.clone());
                conditions.push(format!("{condition}${}", values.len()));
            }
        }
        if !search.outcomes.is_empty() {
            let mut placeholders = Vec::new();
            for outcome in &search.outcomes {
                values.push(outcome.clone());
                placeholders.push(format!("${}", values.len()));
            }
            conditions.push(format!("outcome IN ({})", placeholders.join(", ")));
        }
        let where_clause = if conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conditions.join(" AND "))
        };
        let count_sql = format!("SELECT COUNT(*) FROM audit_log{where_clause}");
        let mut count = sqlx::query_scalar(sqlx::AssertSqlSafe(count_sql));
        for value in &values {
            count = count.bind(value.clone());
        }
        let total: i64 = count.fetch_one(self.pool()).await?;
        let sql = format!(
            "SELECT {COLUMNS} FROM audit_log{where_clause} ORDER BY seq LIMIT ${} OFFSET ${}",
            values.len() + 1,
            values.len() + 2
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for value in values {
            query = query.bind(value);
        }
        let rows = query
            .bind(i64::from(limit))
            .bind(i64::from(offset))
            .fetch_all(self.pool())
            .await?;
        let records = rows
            .iter()
            .map(record_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok((u64::try_from(total).unwrap_or(0), records))
    }

    pub async fn count_audit_rows(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM audit_log")
            .fetch_one(self.pool())
            .await?)
    }
}
