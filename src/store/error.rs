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
    /// An argument of a store call is unusable (a malformed search cursor, an out-of-range limit).
    #[error("invalid {field}: {rule}")]
    Invalid { field: &'static str, rule: String },
    /// A stored value could not be read back into a domain type.
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    /// The configuration (URL) is unusable.
    #[error("{0}")]
    Config(String),
    /// The database server cannot be reached; the message names its address, never credentials.
    #[error("{0}")]
    Unreachable(String),
    /// The database did not answer in time or the connection is lost (pool acquire timeout, statement
    /// timeout, server shut down or restarting, SQLite busy), or its storage is full: retryable, the
    /// caller should try again soon.
    #[error("the database is temporarily unavailable")]
    Unavailable,
    #[error("database error")]
    Database(#[source] sqlx::Error),
    /// An error of the direct SQLite path ([`super::direct`]) with no more specific meaning.
    #[error("database error")]
    Sqlite(#[source] rusqlite::Error),
    #[error("migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        if let sqlx::Error::Database(database_error) = &error {
            // PostgreSQL: 22021 character_not_in_repertoire (NUL, invalid UTF-8), 22P05 untranslatable
            // character. Input the database cannot hold is the caller's error, never an internal one.
            if matches!(database_error.code().as_deref(), Some("22021" | "22P05")) {
                return StoreError::Invalid {
                    field: "text",
                    rule: "contains a character the database cannot store (NUL)".to_owned(),
                };
            }
            let constraint = database_error.constraint().map(str::to_owned);
            let message = database_error.message().to_owned();
            // The provider is already booked at that time: an exact slot (unique index) or an overlap
            // (PostgreSQL exclusion constraint, SQLSTATE 23P01; SQLite trigger). One name for both.
            if database_error.code().as_deref() == Some("23P01")
                || message == "appointments_provider_overlap"
                || constraint.as_deref() == Some("appointments_provider_overlap")
            {
                return StoreError::Conflict {
                    constraint: "appointments_active_slot".to_owned(),
                };
            }
            if database_error.is_unique_violation() {
                return StoreError::Conflict {
                    constraint: constraint.unwrap_or_else(|| unique_target(&message)),
                };
            }
            // SQLite reports `ON DELETE RESTRICT` with the generic constraint code, not the foreign-key one.
            if database_error.is_foreign_key_violation()
                || message == "FOREIGN KEY constraint failed"
            {
                return StoreError::Conflict {
                    constraint: constraint.unwrap_or_else(|| "foreign key".to_owned()),
                };
            }
        }
        if is_storage_full(&error) {
            // Retryable: writes succeed again once space returns; reads that write nothing go on.
            tracing::error!(error = %error, "database storage full: writes fail until space returns");
            return StoreError::Unavailable;
        }
        if is_unavailable(&error) {
            tracing::warn!(error = %error, "database unavailable");
            return StoreError::Unavailable;
        }
        if let sqlx::Error::RowNotFound = error {
            return StoreError::NotFound { what: "record" };
        }
        StoreError::Database(error)
    }
}

/// Whether a driver error means "the database cannot answer now" rather than "this statement is wrong":
/// pool acquire timeout or closed pool, a lost connection, PostgreSQL's statement timeout (57014), server
/// shutdown or start-up (57P01–57P03), too many connections (53300), a connection exception (class 08),
/// SQLite busy or locked (5, 6 and their extended codes).
fn is_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => true,
        sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(database_error) => {
            let code = database_error.code();
            let code = code.as_deref().unwrap_or_default();
            matches!(code, "57014" | "57P01" | "57P02" | "57P03" | "53300")
                || code.starts_with("08")
                || sqlite_busy(code)
        }
        _ => false,
    }
}

/// Whether the database's storage is full: SQLite SQLITE_FULL (13), PostgreSQL disk_full (53100).
fn is_storage_full(error: &sqlx::Error) -> bool {
    let sqlx::Error::Database(database_error) = error else {
        return false;
    };
    let code = database_error.code();
    let code = code.as_deref().unwrap_or_default();
    code == "53100" || (code.len() < 5 && code.parse::<u32>().is_ok_and(|code| code & 0xff == 13))
}

/// SQLite result codes SQLITE_BUSY (5) and SQLITE_LOCKED (6), with their extended forms (code + n·256).
/// SQLite codes are at most four digits; PostgreSQL's SQLSTATEs are always five characters.
fn sqlite_busy(code: &str) -> bool {
    code.len() < 5
        && code
            .parse::<u32>()
            .is_ok_and(|code| matches!(code & 0xff, 5 | 6))
}

/// The columns of the partial unique index `appointments_active_slot`, as SQLite names them.
const ACTIVE_SLOT_COLUMNS: &str =
    "appointments.provider_id, appointments.appointment_date, appointments.slot_time";

/// SQLite names the columns of a unique violation in its message ("UNIQUE constraint failed: patients.mrn");
/// PostgreSQL names the constraint. Either way the result is a short, data-free label, and the active-slot
/// index gets its PostgreSQL name on both engines.
fn unique_target(message: &str) -> String {
    match message.split_once("failed: ") {
        Some((_, ACTIVE_SLOT_COLUMNS)) => "appointments_active_slot".to_owned(),
        Some((_, columns)) => columns.to_owned(),
        None => "unique".to_owned(),
    }
}

impl StoreError {
    /// True when this is a conflict on the named constraint (or on a column list containing it).
    pub fn is_conflict_on(&self, name: &str) -> bool {
        matches!(self, StoreError::Conflict { constraint } if constraint.contains(name))
    }
}
