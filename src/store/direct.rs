//! SQLite's hot paths without a thread hop per statement. sqlx runs every SQLite statement on the
//! connection's own worker thread and wakes the caller when it is done: two context switches per
//! statement, which on a two-core machine cost more than the statement. [`Direct`] keeps its own small
//! set of rusqlite connections to the same file (the same bundled SQLite) and runs a statement on the
//! calling thread: a point read takes microseconds, so it runs in place; the audit writer's append runs
//! on the writer's own thread (`crate::audit`). Reads that may take longer (a patient search, a page of
//! the audit chain) run on a blocking thread through [`Direct::run_blocking`]: one hop for the whole
//! statement instead of one per statement and row, and never on a runtime worker.
//!
//! The audit append has a connection of its own ([`Direct::run_writer`]), kept between batches with a
//! larger page cache: the indexes it inserts into stay warm, where a pooled connection's cache is thrown
//! away whenever another connection commits. It checkpoints as SQLite does by default (inside the
//! commit that takes the write-ahead log past 1,000 pages); `BENCHMARKS.md` has what the other
//! checkpoint policies measured.
//!
//! Invariants: only point reads, searches, audit pages and the audit append use it, everything else goes
//! through sqlx; a connection goes back to the idle set only outside a transaction; at most
//! [`IDLE_CONNECTIONS`] wait there, and at most as many blocking runs go at once (a caller waits for a
//! turn up to the pool's acquire timeout, then is told the database is unavailable). Both drivers open
//! the file with the same settings (WAL, `busy_timeout`, `foreign_keys`, `synchronous`), and SQLite's own
//! locking keeps their writers apart.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::config::DbConfig;
use rusqlite::{Connection, ErrorCode, OpenFlags};

use super::StoreError;
use super::lease::Stash;

/// Connections kept open between calls; more callers at once open (and then close) extra ones.
const IDLE_CONNECTIONS: usize = 8;
/// Prepared statements cached per connection (the hot paths use a handful).
const STATEMENT_CACHE: usize = 32;
/// The audit writer's page cache, in KiB (SQLite's default is 2,000).
const WRITER_CACHE_KIB: i64 = 16 * 1024;

/// A set of rusqlite connections to one SQLite file.
#[derive(Debug)]
pub(crate) struct Direct {
    path: PathBuf,
    busy_timeout: Duration,
    synchronous: &'static str,
    idle: Stash<Connection>,
    /// The audit writer's connection, opened on first use; `None` again after a failed transaction.
    writer: std::sync::Mutex<Option<Connection>>,
    /// Turns for [`Direct::run_blocking`]: at most [`IDLE_CONNECTIONS`] at once.
    blocking: tokio::sync::Semaphore,
    /// How long a caller waits for a turn.
    acquire_timeout: Duration,
}

impl Direct {
    pub(crate) fn new(
        path: PathBuf,
        busy_timeout: Duration,
        acquire_timeout: Duration,
        fsync_each_commit: bool,
    ) -> Self {
        Self {
            path,
            busy_timeout,
            synchronous: if fsync_each_commit { "FULL" } else { "NORMAL" },
            idle: Stash::new(IDLE_CONNECTIONS),
            writer: std::sync::Mutex::new(None),
            blocking: tokio::sync::Semaphore::new(IDLE_CONNECTIONS),
            acquire_timeout,
        }
    }

    /// Runs `work` on a connection on a blocking thread, for reads that may take milliseconds (many rows
    /// or a broad search). At most [`IDLE_CONNECTIONS`] run at once; a caller that gets no turn within
    /// the acquire timeout is told [`StoreError::Unavailable`].
    pub(crate) async fn run_blocking<T: Send + 'static>(
        self: &Arc<Self>,
        work: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let turn = tokio::time::timeout(self.acquire_timeout, self.blocking.acquire())
            .await
            .map_err(|_| StoreError::Unavailable)?
            .map_err(|_| StoreError::Unavailable)?;
        let direct = self.clone();
        let result = tokio::task::spawn_blocking(move || direct.run(work)).await;
        drop(turn);
        result.map_err(|_| StoreError::Unavailable)?
    }

    /// Runs `work` on a connection, on this thread. For statements that take microseconds (point reads
    /// by key) or on a thread of its own (the audit writer).
    pub(crate) fn run<T>(
        &self,
        work: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut connection = match self.idle.take() {
            Some(connection) => connection,
            None => self.open().map_err(from_sqlite)?,
        };
        let result = work(&mut connection);
        self.keep(connection);
        result
    }

    /// Runs `work` on the audit writer's own connection, on this thread (the writer's). Callers take
    /// turns; a connection left inside a transaction is closed and the next call opens a new one.
    pub(crate) fn run_writer<T>(
        &self,
        work: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut slot = self.writer.lock().map_err(|_| StoreError::Unavailable)?;
        let mut connection = match slot.take() {
            Some(connection) => connection,
            None => self.open_writer().map_err(from_sqlite)?,
        };
        let result = work(&mut connection);
        if connection.is_autocommit() {
            *slot = Some(connection);
        }
        result
    }

    /// Closes every idle connection and the writer's; later calls open and close their own.
    pub(crate) fn close(&self) {
        self.idle.drain();
        if let Ok(mut writer) = self.writer.lock() {
            *writer = None;
        }
    }

    fn open_writer(&self) -> rusqlite::Result<Connection> {
        let connection = self.open()?;
        connection.pragma_update(None, "cache_size", -WRITER_CACHE_KIB)?;
        Ok(connection)
    }

    fn open(&self) -> rusqlite::Result<Connection> {
        let connection = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        connection.busy_timeout(self.busy_timeout)?;
        connection.pragma_update(None, "foreign_keys", "ON")?;
        connection.pragma_update(None, "synchronous", self.synchronous)?;
        connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        // Plans from the SQL alone, never from bound values: SQLite otherwise marks a statement whose
        // `LIMIT`, `LIKE` pattern or compared value is a parameter and prepares it again after every
        // rebinding (a fifth of a search's time). The search's SQL spells out its index use itself
        // (`store::patient_search`), so the plans do not change.
        connection.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
        Ok(connection)
    }

    /// Keeps a connection for the next call, unless it was left inside a transaction (a failed commit
    /// or rollback) or there is no room.
    fn keep(&self, connection: Connection) {
        if connection.is_autocommit() {
            self.idle.keep(connection);
        }
    }
}

/// The store's meaning of a SQLite error: busy, locked or full is retryable, a broken rule a conflict.
pub(crate) fn from_sqlite(error: rusqlite::Error) -> StoreError {
    if let rusqlite::Error::SqliteFailure(failure, message) = &error {
        match failure.code {
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => {
                tracing::warn!(error = %error, "database unavailable");
                return StoreError::Unavailable;
            }
            ErrorCode::DiskFull => {
                tracing::error!(error = %error, "database storage full: writes fail until space returns");
                return StoreError::Unavailable;
            }
            ErrorCode::ConstraintViolation => {
                // "UNIQUE constraint failed: audit_log.seq": the rule's target, never a value.
                let constraint = message
                    .as_deref()
                    .and_then(|message| message.split_once("failed: "))
                    .map_or("constraint", |(_, target)| target);
                return StoreError::Conflict {
                    constraint: constraint.to_owned(),
                };
            }
            _ => {}
        }
    }
    StoreError::Sqlite(error)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn direct(dir: &tempfile::TempDir) -> Direct {
        let path = dir.path().join("direct.db");
        let setup = Connection::open(&path).unwrap();
        setup
            .execute_batch(
                "PRAGMA journal_mode = WAL; CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT NOT NULL);",
            )
            .unwrap();
        Direct::new(
            path,
            Duration::from_millis(50),
            Duration::from_millis(100),
            false,
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn blocking_runs_are_bounded_and_a_caller_past_the_timeout_is_told_unavailable() {
        let dir = tempfile::tempdir().unwrap();
        let direct = Arc::new(direct(&dir));
        let running = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let most = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let gate = Arc::new(std::sync::Mutex::new(gate));
        let mut holders = Vec::new();
        for _ in 0..IDLE_CONNECTIONS {
            let (direct, running, most, gate) =
                (direct.clone(), running.clone(), most.clone(), gate.clone());
            holders.push(tokio::spawn(async move {
                direct
                    .run_blocking(move |_| {
                        let now = running.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                        most.fetch_max(now, std::sync::atomic::Ordering::SeqCst);
                        let _ = gate.lock().map(|gate| gate.recv());
                        running.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                        Ok(())
                    })
                    .await
            }));
        }
        while running.load(std::sync::atomic::Ordering::SeqCst) < IDLE_CONNECTIONS {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // Every turn is taken: one more caller waits out the acquire timeout and is refused.
        let refused = direct.run_blocking(|_| Ok(())).await;
        assert!(
            matches!(refused, Err(StoreError::Unavailable)),
            "{refused:?}"
        );
        for _ in 0..IDLE_CONNECTIONS {
            release.send(()).unwrap();
        }
        for holder in holders {
            holder.await.unwrap().unwrap();
        }
        assert_eq!(
            most.load(std::sync::atomic::Ordering::SeqCst),
            IDLE_CONNECTIONS
        );
        // Turns come back: the next caller runs.
        let value: i64 = direct
            .run_blocking(|c| {
                c.query_row("SELECT 41 + 1", [], |row| row.get(0))
                    .map_err(from_sqlite)
            })
            .await
            .unwrap();
        assert_eq!(value, 42);
    }

    #[test]
    fn connections_are_reused_and_one_left_in_a_transaction_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let direct = direct(&dir);
        direct
            .run(|c| {
                c.execute("INSERT INTO t VALUES ('a', '1')", [])
                    .map_err(from_sqlite)
            })
            .unwrap();
        assert_eq!(direct.idle.len(), 1);
        direct
            .run(|c| c.execute_batch("BEGIN").map_err(from_sqlite))
            .unwrap();
        assert_eq!(direct.idle.len(), 0, "a connection inside BEGIN is dropped");
        let value: String = direct
            .run(|c| {
                c.query_row("SELECT v FROM t WHERE k = 'a'", [], |row| row.get(0))
                    .map_err(from_sqlite)
            })
            .unwrap();
        assert_eq!(value, "1");
        direct.close();
        direct.run(|_| Ok(())).unwrap();
        assert_eq!(direct.idle.len(), 0, "nothing is kept after close");
    }

    #[test]
    fn errors_map_to_the_store_meaning() {
        let dir = tempfile::tempdir().unwrap();
        let direct = direct(&dir);
        let insert = || {
            direct.run(|c| {
                c.execute("INSERT INTO t VALUES ('a', '1')", [])
                    .map_err(from_sqlite)
            })
        };
        insert().unwrap();
        match insert() {
            Err(StoreError::Conflict { constraint }) => assert_eq!(constraint, "t.k"),
            other => panic!("expected a conflict, got {other:?}"),
        }
        // Another connection holds the write lock: busy is retryable.
        let holder = Connection::open(dir.path().join("direct.db")).unwrap();
        holder.execute_batch("BEGIN IMMEDIATE").unwrap();
        assert!(matches!(insert(), Err(StoreError::Unavailable)));
    }
}
