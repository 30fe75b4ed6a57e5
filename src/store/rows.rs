//! Row mapping shared by every aggregate: text columns read back through their domain rule, and one
//! record selected by its public id.

use sqlx::any::AnyRow;
use sqlx::{Any, Executor, Row};

use super::{StoreError, corrupt};
use crate::domain::DomainError;

/// A text column read through its domain rule (`Mrn::parse`, `Date::parse`, …); a stored value that
/// breaks the rule is `Corrupt`.
pub(crate) fn parsed<T>(
    row: &AnyRow,
    column: &str,
    parse: impl FnOnce(&str) -> Result<T, DomainError>,
) -> Result<T, StoreError> {
    let text: String = row.try_get(column)?;
    parse(&text).map_err(corrupt)
}

/// A nullable text column read like [`parsed`].
pub(crate) fn parsed_optional<T>(
    row: &AnyRow,
    column: &str,
    parse: impl FnOnce(&str) -> Result<T, DomainError>,
) -> Result<Option<T>, StoreError> {
    let text: Option<String> = row.try_get(column)?;
    text.as_deref().map(parse).transpose().map_err(corrupt)
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
