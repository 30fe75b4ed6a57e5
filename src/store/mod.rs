//! Storage: the only place that speaks SQL. One code path over SQLite and PostgreSQL (`sqlx::Any`),
//! parameterised queries only, versioned migrations per engine under `migrations/`.
//!
//! Invariants: the store knows nothing of MCP, HTTP or tokens; it returns domain types and [`StoreError`];
//! every statement binds its values (no string-built SQL with input in it).

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions, Executor};

pub mod allergies;
pub mod appointments;
pub mod audit;
pub mod bulk;
pub mod clients;
pub mod completion;
pub mod dump;
pub mod error;
pub(crate) mod float8;
pub mod grants;
pub mod keys;
pub mod labs;
pub mod medications;
pub mod open;
pub mod patient_search;
pub mod patients;
mod private_file;
pub mod providers;
pub mod revocations;
mod rows;
pub mod tx;
pub mod users;
pub mod vitals;

pub use error::StoreError;
pub(crate) use rows::{fetch_by_public_id, parsed, parsed_optional};
pub use tx::{Batch, Tx, TxWrite};

/// The database engine behind a [`Store`]. A few statements (search, bulk load) differ per engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// Options for opening the database.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// `sqlite://path.db` or `postgres://user@host/db`.
    pub url: String,
    pub max_connections: u32,
    pub acquire_timeout: Duration,
}

impl StoreOptions {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            max_connections: 16,
            acquire_timeout: Duration::from_secs(10),
        }
    }
}

/// A handle on the database: a connection pool plus its engine. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    engine: Engine,
}

static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

impl Store {
    /// Opens the database (creating a SQLite file if missing). Does not migrate; call [`Store::migrate`].
    pub async fn connect(options: &StoreOptions) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let engine = engine_of(&options.url)?;
        if engine == Engine::Sqlite {
            open::check_sqlite_directory(&options.url)?;
        }
        let url = match engine {
            Engine::Sqlite => sqlite_url_with_create(&options.url),
            Engine::Postgres => options.url.clone(),
        };
        let connect_options = AnyConnectOptions::from_str(&url)
            .map_err(|error| {
                StoreError::Config(format!("DATABASE_URL is not a valid database URL: {error}"))
            })?
            .disable_statement_logging();
        if engine == Engine::Postgres {
            open::probe_postgres(&options.url, &connect_options).await?;
        }
        let pool_options = AnyPoolOptions::new()
            .max_connections(match engine {
                Engine::Sqlite => options.max_connections.clamp(1, 8),
                Engine::Postgres => options.max_connections,
            })
            .acquire_timeout(options.acquire_timeout);
        let pool_options = match engine {
            Engine::Sqlite => pool_options.after_connect(|connection, _meta| {
                Box::pin(async move {
                    connection
                        .execute(
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                             PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;",
                        )
                        .await?;
                    Ok(())
                })
            }),
            Engine::Postgres => pool_options,
        };
        let private_path = match engine {
            Engine::Sqlite => private_file::sqlite_path(&options.url),
            Engine::Postgres => None,
        };
        if let Some(path) = &private_path {
            private_file::create_private(path).map_err(|error| {
                StoreError::Config(format!("cannot create the database file: {error}"))
            })?;
        }
        let pool = pool_options.connect_with(connect_options).await?;
        if let Some(path) = &private_path {
            private_file::tighten(path).map_err(|error| {
                StoreError::Config(format!("cannot make the database file private: {error}"))
            })?;
        }
        Ok(Self { pool, engine })
    }

    /// Applies the engine's pending migrations.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let migrator = match self.engine {
            Engine::Sqlite => &SQLITE_MIGRATOR,
            Engine::Postgres => &POSTGRES_MIGRATOR,
        };
        migrator.run(&self.pool).await?;
        Ok(())
    }

    /// Checks that the database answers (readiness).
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub fn engine(&self) -> Engine {
        self.engine
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Closes the pool, waiting for connections to be returned. On SQLite the write-ahead log is first
    /// folded into the database file and truncated, so the `.db` file alone holds every committed row
    /// (a user may copy it elsewhere right after `import`, `seed` or `migrate`).
    pub async fn close(&self) -> Result<(), StoreError> {
        let checkpoint = match self.engine {
            Engine::Sqlite => sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&self.pool)
                .await
                .map(drop)
                .map_err(StoreError::from),
            Engine::Postgres => Ok(()),
        };
        self.pool.close().await;
        checkpoint
    }
}

fn engine_of(url: &str) -> Result<Engine, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Engine::Sqlite)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Engine::Postgres)
    } else {
        Err(StoreError::Config(
            "DATABASE_URL must start with sqlite:// or postgres://".to_owned(),
        ))
    }
}

fn sqlite_url_with_create(url: &str) -> String {
    if url.contains("mode=") || url.contains(":memory:") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    }
}

/// The current UTC time as the ISO text stored in `created_at`/`updated_at` columns.
pub(crate) fn now_text() -> String {
    chrono::Utc::now()
        .naive_utc()
        .format("%Y-%m-%dT%H:%M:%S%.6f")
        .to_string()
}

/// A stored value that no longer passes its domain rule (the message names the field, not the value).
pub(crate) fn corrupt(error: crate::domain::DomainError) -> StoreError {
    StoreError::Corrupt(error.to_string())
}

/// An argument that breaks a domain rule, as a store error naming the field.
pub(crate) fn invalid(field: &'static str, error: crate::domain::DomainError) -> StoreError {
    StoreError::Invalid {
        field,
        rule: error.rule,
    }
}
