//! Read-only checks of an opened database for `ehr-mcp doctor`: which migrations are applied, pending,
//! unknown to this binary or changed since they were applied, and whether the database accepts writes.
//!
//! Nothing here changes the database: the write probe creates a table inside a transaction that is
//! always rolled back.

use sqlx::{Connection, Row};

use super::{Engine, POSTGRES_MIGRATOR, SQLITE_MIGRATOR, Store, StoreError};

/// How the database's applied migrations compare with the ones built into this binary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigrationStatus {
    /// Versions applied and matching this binary.
    pub applied: usize,
    /// Migrations of this binary not applied yet (`version_description`), oldest first.
    pub pending: Vec<String>,
    /// Versions applied to the database that this binary does not have (a newer binary migrated it).
    pub unknown: Vec<i64>,
    /// Migrations whose file changed after it was applied, or that failed half-way.
    pub changed: Vec<String>,
}

impl Store {
    /// Compares the applied migrations (sqlx's `_sqlx_migrations` table) with this binary's.
    pub async fn migration_status(&self) -> Result<MigrationStatus, StoreError> {
        let (migrator, table_exists) = match self.engine() {
            Engine::Sqlite => (
                &SQLITE_MIGRATOR,
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
            ),
            Engine::Postgres => (
                &POSTGRES_MIGRATOR,
                "SELECT COUNT(*) FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_name = '_sqlx_migrations'",
            ),
        };
        let exists: i64 = sqlx::query_scalar(table_exists)
            .fetch_one(self.pool())
            .await?;
        let rows = if exists > 0 {
            // `success` is a boolean the Any driver cannot read from SQLite: read it as an integer.
            sqlx::query(
                "SELECT version, checksum, \
                 CAST(CASE WHEN success THEN 1 ELSE 0 END AS BIGINT) AS success \
                 FROM _sqlx_migrations ORDER BY version",
            )
            .fetch_all(self.pool())
            .await?
        } else {
            Vec::new()
        };
        let mut applied = Vec::with_capacity(rows.len());
        for row in &rows {
            let version: i64 = row.try_get("version")?;
            let checksum: Vec<u8> = row.try_get("checksum")?;
            let success: i64 = row.try_get("success")?;
            applied.push((version, checksum, success == 1));
        }
        let mut status = MigrationStatus::default();
        let known = migrator
            .iter()
            .filter(|migration| migration.migration_type.is_up_migration());
        for migration in known.clone() {
            let name = format!("{:04}_{}", migration.version, migration.description);
            match applied
                .iter()
                .find(|(version, ..)| *version == migration.version)
            {
                None => status.pending.push(name),
                Some((_, checksum, success)) => {
                    if *success && checksum.as_slice() == migration.checksum.as_ref() {
                        status.applied += 1;
                    } else {
                        status.changed.push(name);
                    }
                }
            }
        }
        status.unknown = applied
            .iter()
            .map(|(version, ..)| *version)
            .filter(|version| !known.clone().any(|migration| migration.version == *version))
            .collect();
        Ok(status)
    }

    /// Checks that the database accepts writes: creates a table in a transaction and rolls it back.
    /// Fails on a read-only file or mount, a read-only PostgreSQL (standby, `default_transaction_read_only`)
    /// or a role without `CREATE` on the schema.
    pub async fn check_writable(&self) -> Result<(), StoreError> {
        let mut connection = self.pool().acquire().await?;
        let mut transaction = connection.begin().await?;
        let probe = sqlx::query("CREATE TABLE ehr_mcp_doctor_write_probe (id INTEGER)")
            .execute(&mut *transaction)
            .await;
        transaction.rollback().await?;
        probe.map(drop).map_err(StoreError::from)
    }
}
