//! Both engines' migrations produce the same schema: the same tables, columns, nullability and index names.

use std::collections::BTreeSet;

use sqlx::Row;

use crate::support::TestDb;

type Columns = BTreeSet<(String, String, bool)>;

async fn sqlite_schema(db: &TestDb) -> (Columns, BTreeSet<String>) {
    let pool = db.store.pool();
    let tables: Vec<String> = sqlx::query(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
         AND name NOT LIKE '_sqlx%' AND name NOT LIKE 'patients_search%'",
    )
    .fetch_all(pool)
    .await
    .expect("tables")
    .iter()
    .map(|row| row.get::<String, _>(0))
    .collect();
    let mut columns = Columns::new();
    for table in &tables {
        let rows = sqlx::query("SELECT name, \"notnull\" FROM pragma_table_info($1)")
            .bind(table)
            .fetch_all(pool)
            .await
            .expect("columns");
        for row in rows {
            columns.insert((
                table.clone(),
                row.get::<String, _>(0),
                row.get::<i64, _>(1) == 1,
            ));
        }
    }
    let indexes =
        sqlx::query("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
            .fetch_all(pool)
            .await
            .expect("indexes")
            .iter()
            .map(|row| row.get::<String, _>(0))
            .collect();
    (columns, indexes)
}

async fn postgres_schema(db: &TestDb) -> (Columns, BTreeSet<String>) {
    let pool = db.store.pool();
    let rows = sqlx::query(
        "SELECT table_name::text, column_name::text, (is_nullable = 'NO')::bool FROM information_schema.columns \
         WHERE table_schema = 'public' AND table_name NOT LIKE '_sqlx%'",
    )
    .fetch_all(pool)
    .await
    .expect("columns");
    let columns = rows
        .iter()
        .map(|row| {
            (
                row.get::<String, _>(0),
                row.get::<String, _>(1),
                row.get::<bool, _>(2),
            )
        })
        .collect();
    // Unique constraints and primary keys create indexes implicitly in both engines; compare explicit ones.
    let indexes = sqlx::query(
        "SELECT indexname::text FROM pg_indexes WHERE schemaname = 'public' \
         AND indexname NOT LIKE '%_pkey' AND indexname NOT LIKE '%_key'",
    )
    .fetch_all(pool)
    .await
    .expect("indexes")
    .iter()
    .map(|row| row.get::<String, _>(0))
    .collect();
    (columns, indexes)
}

#[tokio::test]
async fn sqlite_and_postgres_migrations_agree() {
    let Some(postgres) = TestDb::postgres().await else {
        eprintln!(
            "EHR_MCP_TEST_POSTGRES_URL not set: comparing SQLite with itself is pointless, skipped"
        );
        return;
    };
    let sqlite = TestDb::sqlite().await;
    let (sqlite_columns, sqlite_indexes) = sqlite_schema(&sqlite).await;
    let (postgres_columns, postgres_indexes) = postgres_schema(&postgres).await;
    // SQLite's INTEGER PRIMARY KEY is nullable in its catalogue; compare primary keys as NOT NULL.
    let normalise = |columns: Columns| -> Columns {
        columns
            .into_iter()
            .map(|(table, column, not_null)| {
                let primary = column == "id"
                    || (table == "signing_keys" && column == "kid")
                    || (table == "audit_log" && column == "seq")
                    || (matches!(table.as_str(), "revoked_tokens" | "client_assertions")
                        && column == "jti");
                (table, column, not_null || primary)
            })
            .collect()
    };
    pretty_assertions::assert_eq!(normalise(sqlite_columns), normalise(postgres_columns));
    // Patient search is the one deliberate difference: an FTS5 trigram table on SQLite, a pg_trgm index on
    // PostgreSQL, both named `patients_search`.
    let sqlite_tables: BTreeSet<String> =
        sqlx::query("SELECT name FROM sqlite_master WHERE name = 'patients_search'")
            .fetch_all(sqlite.store.pool())
            .await
            .expect("search table")
            .iter()
            .map(|row| row.get::<String, _>(0))
            .collect();
    let mut sqlite_indexes: BTreeSet<String> =
        sqlite_indexes.union(&sqlite_tables).cloned().collect();
    // Overlapping bookings: an exclusion constraint (its index) on PostgreSQL, insert and update triggers on
    // SQLite, both named after `appointments_provider_overlap`.
    let overlap_triggers = sqlx::query(
        "SELECT name FROM sqlite_master WHERE type = 'trigger' \
         AND name IN ('appointments_provider_overlap_insert', 'appointments_provider_overlap_update')",
    )
    .fetch_all(sqlite.store.pool())
    .await
    .expect("overlap triggers");
    if overlap_triggers.len() == 2 {
        sqlite_indexes.insert("appointments_provider_overlap".to_owned());
    }
    pretty_assertions::assert_eq!(sqlite_indexes, postgres_indexes);
}
