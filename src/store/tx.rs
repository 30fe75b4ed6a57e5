//! The store's transaction handles, so layers above compose writes without naming sqlx: [`Tx`] is a
//! connection inside a transaction (or a savepoint of one) that every store write function takes, and
//! [`Batch`] is the transaction the audit writer begins, fills and commits.
//!
//! Invariant: a [`Tx`] is handed out inside a transaction the store began (a [`Batch`] or a savepoint
//! of one), or by the store itself on a pooled connection for one single-statement write.

use futures::future::BoxFuture;
use sqlx::{Any, AnyConnection, Connection};

use super::{Engine, Store, StoreError};

/// A connection inside the caller's transaction. Store write functions take `&mut Tx`.
pub struct Tx<'c> {
    conn: &'c mut AnyConnection,
}

/// A write to run on a [`Tx`]: `for<'c> FnOnce(Tx<'c>) -> BoxFuture<'c, Result<T, StoreError>>`.
pub type TxWrite<T> =
    Box<dyn for<'c> FnOnce(Tx<'c>) -> BoxFuture<'c, Result<T, StoreError>> + Send>;

impl<'c> Tx<'c> {
    pub(crate) fn new(conn: &'c mut AnyConnection) -> Self {
        Self { conn }
    }

    pub(crate) fn conn(&mut self) -> &mut AnyConnection {
        self.conn
    }

    /// Runs `write` under a savepoint: its changes stay when it succeeds and are rolled back when it
    /// fails, the enclosing transaction going on either way. The outer error is a failure of the
    /// savepoint itself (the transaction cannot continue); the inner one is the write's own.
    pub async fn savepoint<T>(
        &mut self,
        write: impl for<'s> FnOnce(Tx<'s>) -> BoxFuture<'s, Result<T, StoreError>>,
    ) -> Result<Result<T, StoreError>, StoreError> {
        let mut savepoint = self.conn.begin().await?;
        let outcome = write(Tx::new(&mut savepoint)).await;
        match outcome {
            Ok(value) => {
                savepoint.commit().await?;
                Ok(Ok(value))
            }
            Err(error) => {
                savepoint.rollback().await?;
                Ok(Err(error))
            }
        }
    }
}

/// A transaction on one pooled connection; dropped without [`Batch::commit`], it rolls back.
pub struct Batch {
    transaction: sqlx::Transaction<'static, Any>,
}

impl Batch {
    /// The handle writes take.
    pub fn tx(&mut self) -> Tx<'_> {
        Tx::new(&mut self.transaction)
    }

    pub async fn commit(self) -> Result<(), StoreError> {
        self.transaction.commit().await?;
        Ok(())
    }
}

impl Store {
    /// Begins a write transaction. On SQLite it takes the write lock at once (`BEGIN IMMEDIATE`), so
    /// the transaction cannot fail later on a lock upgrade.
    pub async fn begin(&self) -> Result<Batch, StoreError> {
        let transaction = match self.engine() {
            Engine::Sqlite => self.pool().begin_with("BEGIN IMMEDIATE").await?,
            Engine::Postgres => self.pool().begin().await?,
        };
        Ok(Batch { transaction })
    }
}
