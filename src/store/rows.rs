//! Row mapping shared by every aggregate: text columns read back through their domain rule, one
//! record selected by its public id, and the list of one patient's records.

use sqlx::any::AnyRow;
use sqlx::{Any, Executor, Row};

use super::bulk::AnyQuery;
use super::direct::from_sqlite;
use super::patients::patient_row_id;
use super::{Store, StoreError, corrupt};
use crate::domain::DomainError;
use crate::domain::ids::Mrn;

/// Text columns by name, from a sqlx row or a row of the direct SQLite path ([`super::direct`]), so one
/// mapping function serves both.
pub(crate) trait Columns {
    fn text(&self, column: &str) -> Result<String, StoreError>;
    fn optional_text(&self, column: &str) -> Result<Option<String>, StoreError>;
    fn integer(&self, column: &str) -> Result<i64, StoreError>;
}

impl Columns for AnyRow {
    fn text(&self, column: &str) -> Result<String, StoreError> {
        Ok(self.try_get(column)?)
    }

    fn optional_text(&self, column: &str) -> Result<Option<String>, StoreError> {
        Ok(self.try_get(column)?)
    }

    fn integer(&self, column: &str) -> Result<i64, StoreError> {
        Ok(self.try_get(column)?)
    }
}

impl Columns for rusqlite::Row<'_> {
    fn text(&self, column: &str) -> Result<String, StoreError> {
        self.get(column).map_err(from_sqlite)
    }

    fn optional_text(&self, column: &str) -> Result<Option<String>, StoreError> {
        self.get(column).map_err(from_sqlite)
    }

    fn integer(&self, column: &str) -> Result<i64, StoreError> {
        self.get(column).map_err(from_sqlite)
    }
}

/// A text column read through its domain rule (`Mrn::parse`, `Date::parse`, …); a stored value that
/// breaks the rule is `Corrupt`.
pub(crate) fn parsed<T>(
    row: &(impl Columns + ?Sized),
    column: &str,
    parse: impl FnOnce(&str) -> Result<T, DomainError>,
) -> Result<T, StoreError> {
    parse(&row.text(column)?).map_err(corrupt)
}

/// A nullable text column read like [`parsed`].
pub(crate) fn parsed_optional<T>(
    row: &(impl Columns + ?Sized),
    column: &str,
    parse: impl FnOnce(&str) -> Result<T, DomainError>,
) -> Result<Option<T>, StoreError> {
    row.optional_text(column)?
        .as_deref()
        .map(parse)
        .transpose()
        .map_err(corrupt)
}

/// The one row of `select` whose `id_column` equals `id`, mapped by `from_row`;
/// `NotFound { what }` when there is none. `select` and `id_column` are constants of the caller.
pub(crate) async fn fetch_by_public_id<'c, E, T>(
    executor: E,
    select: &str,
    id_column: &str,
    id: &str,
    what: &'static str,
    from_row: fn(&AnyRow) -> Result<T, StoreError>,
) -> Result<T, StoreError>
where
    E: Executor<'c, Database = Any>,
{
    let sql = format!("{select} WHERE {id_column} = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(executor)
        .await?
        .ok_or(StoreError::NotFound { what })?;
    from_row(&row)
}

/// The records of the patient `mrn` that `sql` selects, mapped by `from_row`: `$1` is bound here to the
/// patient's row id, the caller's further parameters by `bind`. `NotFound { what: "patient" }` for an
/// unknown patient (an empty list means the patient has none).
pub(crate) async fn patient_records<T>(
    store: &Store,
    mrn: &Mrn,
    sql: String,
    bind: impl FnOnce(AnyQuery<'static>) -> AnyQuery<'static>,
    from_row: fn(&AnyRow) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    // Both statements on one leased connection (see `store::lease`).
    let mut lease = store.lease().await?;
    let patient_id = patient_row_id(&mut *lease, mrn).await?;
    let query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(patient_id);
    let rows = bind(query).fetch_all(&mut *lease).await;
    lease.settle(
        rows.map_err(StoreError::from)
            .and_then(|rows| rows.iter().map(from_row).collect()),
    )
}
