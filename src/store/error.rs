//! The storage layer's error type.

/// What can go wrong in the store. Messages never contain SQL, row data or connection strings.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The requested record does not exist. `what` names the kind (`patient`, `provider`, …).
    #[error("{what} not found")]
    NotFound { what: &'static str },
    /// A unique or foreign-key rule refused the change; `constraint` names the rule in plain words.
    #[error("conflict: {constraint}")]
    Conflict { constraint: String },
    /// A stored value could not be read back into a domain type.
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    /// The configuration (URL) is unusable.
    #[error("{0}")]
    Config(String),
    #[error("database error")]
    Database(#[source] sqlx::Error),
    #[error("migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        if let sqlx::Error::Database(database_error) = &error {
            let constraint = database_error.constraint().map(str::to_owned);
            let message = database_error.message().to_owned();
            if database_error.is_unique_violation() {
                return StoreError::Conflict {
                    constraint: constraint.unwrap_or_else(|| unique_target(&message)),
                };
            }
            if database_error.is_foreign_key_violation() {
                return StoreError::Conflict {
                    constraint: constraint.unwrap_or_else(|| "foreign key".to_owned()),
                };
            }
        }
        if let sqlx::Error::RowNotFound = error {
            return StoreError::NotFound { what: "record" };
        }
        StoreError::Database(error)
    }
}

/// SQLite names the columns of a unique violation in its message ("UNIQUE constraint failed: patients.mrn");
/// PostgreSQL names the constraint. Either way the result is a short, data-free label.
fn unique_target(message: &str) -> String {
    message
        .split_once("failed: ")
        .map(|(_, columns)| columns.to_owned())
        .unwrap_or_else(|| "unique".to_owned())
}
