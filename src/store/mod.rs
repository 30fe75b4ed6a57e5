//! Storage: the only place that speaks SQL. One code path over SQLite and PostgreSQL (`sqlx::Any`),
//! parameterised queries only, versioned migrations per engine under `migrations/`.
//!
//! Invariants: the store knows nothing of MCP, HTTP or tokens; it returns domain types and [`StoreError`];
//! every statement binds its values (no string-built SQL with input in it).

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions};

pub mod allergies;
pub mod appointments;
pub mod audit;
pub mod bulk;
pub mod clients;
pub mod completion;
pub mod diagnostics;
mod direct;
pub mod dump;
pub mod error;
pub mod fhir;
pub mod grants;
pub mod keys;
pub mod labs;
mod lease;
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
pub(crate) use rows::{fetch_by_public_id, parsed, parsed_optional, patient_records};
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
    /// How long a caller waits for a pooled connection before [`StoreError::Unavailable`].
    pub acquire_timeout: Duration,
    /// The longest one statement may run (PostgreSQL `statement_timeout`, SQLite `busy_timeout`) before
    /// it fails with [`StoreError::Unavailable`]; `None` for batch commands (import, seed, verify).
    pub statement_timeout: Option<Duration>,
    /// SQLite `synchronous=FULL` (an fsync per commit) instead of `NORMAL`; PostgreSQL flushes each
    /// commit anyway.
    pub fsync_each_commit: bool,
}

/// Defaults for serving: a caller learns within a few seconds that the database cannot answer.
pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);
pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(5);

impl StoreOptions {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            max_connections: 16,
            acquire_timeout: DEFAULT_ACQUIRE_TIMEOUT,
            statement_timeout: Some(DEFAULT_STATEMENT_TIMEOUT),
            fsync_each_commit: false,
        }
    }
}

/// A handle on the database: a connection pool plus its engine. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    engine: Engine,
    /// Read connections kept between statements (SQLite; see [`lease`]).
    spare: std::sync::Arc<lease::Spare>,
    /// The hot paths without a thread hop (SQLite files; see [`direct`]).
    direct: Option<std::sync::Arc<direct::Direct>>,
    /// When a patient search walks the name index (see [`patient_search`]).
    search_tuning: patient_search::SearchTuning,
    /// At least the number of patients, cached (see `Store::patients_bound`).
    patients_bound: std::sync::Arc<patient_search::PatientsBound>,
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
            .max_connections(pool_size(engine, options))
            .acquire_timeout(options.acquire_timeout)
            // A SQLite connection is a file handle that cannot drop off the network: testing it on every
            // acquire would cost a round trip to its worker thread per statement. PostgreSQL
            // connections are tested, so a restarted server costs no request.
            .test_before_acquire(engine == Engine::Postgres);
        let session_setup = session_setup(engine, options);
        let pool_options = pool_options.after_connect(move |connection, _meta| {
            let setup = session_setup.clone();
            Box::pin(async move {
                if !setup.is_empty() {
                    sqlx::raw_sql(sqlx::AssertSqlSafe(setup))
                        .execute(&mut *connection)
                        .await?;
                }
                Ok(())
            })
        });
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
        // Half the SQLite connections may wait in the stash; the rest stay with the pool for the
        // audit writer and the other callers. PostgreSQL connections always go back through the pool,
        // which tests them (a restarted server).
        let spare = lease::Spare::new(match engine {
            Engine::Sqlite => pool_size(engine, options) as usize / 2,
            Engine::Postgres => 0,
        });
        let direct = private_path.map(|path| {
            std::sync::Arc::new(direct::Direct::new(
                path,
                options.statement_timeout.unwrap_or(BATCH_BUSY_TIMEOUT),
                options.acquire_timeout,
                options.fsync_each_commit,
            ))
        });
        Ok(Self {
            pool,
            engine,
            spare,
            direct,
            search_tuning: patient_search::SearchTuning::default(),
            patients_bound: std::sync::Arc::new(patient_search::PatientsBound::new()),
        })
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

    /// Checks that the database answers (readiness), within `within`: a database that cannot answer is
    /// [`StoreError::Unavailable`] after at most that long, whatever the pool's acquire timeout.
    pub async fn ping(&self, within: Duration) -> Result<(), StoreError> {
        match tokio::time::timeout(within, sqlx::query("SELECT 1").execute(&self.pool)).await {
            Ok(result) => result.map(drop).map_err(StoreError::from),
            Err(_) => Err(StoreError::Unavailable),
        }
    }

    pub fn engine(&self) -> Engine {
        self.engine
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Refreshes the query planner's statistics after a bulk load (`seed`, `import`). PostgreSQL: `ANALYZE`;
    /// a freshly loaded table has no statistics until autovacuum gets to it, and meanwhile a date-of-birth
    /// search on 1,000,000 patients took 2.1 s instead of 0.4 ms (`BENCHMARKS.md`). Then `VACUUM patients`,
    /// which marks the loaded pages all-visible, so a broad search's walk of the name index reads the
    /// index only (without it, one heap fetch per entry: 12 ms instead of about 1 ms for 4,000 entries on
    /// 1,000,000 patients). SQLite: nothing; its search SQL is written for a database without statistics
    /// (`docs/STORAGE.md`).
    pub async fn refresh_statistics(&self) -> Result<(), StoreError> {
        if self.engine == Engine::Postgres {
            sqlx::query("ANALYZE").execute(&self.pool).await?;
            sqlx::query("VACUUM patients").execute(&self.pool).await?;
        }
        Ok(())
    }

    /// This store with other patient-search thresholds (tests drive every search plan on a few
    /// patients with them; see [`patient_search::SearchTuning`]).
    pub fn with_search_tuning(mut self, tuning: patient_search::SearchTuning) -> Self {
        self.search_tuning = tuning;
        self
    }

    pub(crate) fn search_tuning(&self) -> patient_search::SearchTuning {
        self.search_tuning
    }

    pub(crate) fn patients_bound_cache(&self) -> &patient_search::PatientsBound {
        &self.patients_bound
    }

    /// The direct SQLite path, when the database is a SQLite file.
    pub(crate) fn direct(&self) -> Option<&std::sync::Arc<direct::Direct>> {
        self.direct.as_ref()
    }

    /// A connection for one read statement (see [`lease`]); end it with [`lease::Lease::settle`].
    pub(crate) async fn lease(&self) -> Result<lease::Lease, StoreError> {
        self.spare.lease(&self.pool).await
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
        if let Some(direct) = &self.direct {
            direct.close();
        }
        self.spare.drain();
        self.pool.close().await;
        checkpoint
    }
}

/// How long a SQLite statement of a batch command (no statement timeout) waits for a lock.
const BATCH_BUSY_TIMEOUT: Duration = Duration::from_secs(60);

/// Connections in the pool: SQLite serialises writers anyway, so a few readers beside the writer.
fn pool_size(engine: Engine, options: &StoreOptions) -> u32 {
    match engine {
        Engine::Sqlite => options.max_connections.clamp(1, 8),
        Engine::Postgres => options.max_connections,
    }
}

/// The statements run on every new connection. The timeouts are whole milliseconds from configuration,
/// never request input.
fn session_setup(engine: Engine, options: &StoreOptions) -> String {
    let millis = options
        .statement_timeout
        .map(|timeout| timeout.as_millis().max(1));
    match engine {
        Engine::Sqlite => format!(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = {}; PRAGMA foreign_keys = ON; \
             PRAGMA busy_timeout = {};",
            if options.fsync_each_commit {
                "FULL"
            } else {
                "NORMAL"
            },
            millis.unwrap_or(BATCH_BUSY_TIMEOUT.as_millis())
        ),
        Engine::Postgres => match millis {
            Some(millis) => format!("SET statement_timeout = {millis}"),
            None => String::new(),
        },
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
