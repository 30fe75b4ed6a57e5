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
    #[error("database error")]
    Database(#[source] sqlx::Error),
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
        if let sqlx::Error::RowNotFound = error {
            return StoreError::NotFound { what: "record" };
        }
        StoreError::Database(error)
    }
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
