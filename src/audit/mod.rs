//! The append-only, hash-chained audit log: one writer (on its own thread) with group commit, `verify`,
//! and queries.
//!
//! Invariants: only the writer task appends; it assigns `seq` and the hash chain; a caller that must not
//! release data before its row is durable awaits [`AuditLog::record`]; a write and its audit row commit in
//! one transaction ([`AuditLog::record_write`]). Rows carry no PHI beyond the MRN touched.

use std::fmt;
use std::sync::Arc;

use futures::future::BoxFuture;
use tokio::sync::{Mutex, mpsc, oneshot};

use crate::store::audit::{AuditFilter, AuditRecord};
use crate::store::{Store, StoreError, Tx};

pub mod chain;
mod refusals;
mod writer;

pub use refusals::Refusal;

pub use chain::{ChainProblem, ProblemKind, VerifyReport, verify};

/// The audit layer's error type.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit log unavailable: {0}")]
    Store(#[from] StoreError),
    /// The writer has stopped (shutdown); nothing more can be recorded.
    #[error("audit log is closed")]
    Closed,
}

impl AuditError {
    /// Whether the database could not answer in time (retryable), as opposed to a lasting failure.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Store(StoreError::Unavailable))
    }
}

/// Re-exported from the domain, where [`crate::domain::origin`] defines it with [`Origin`].
pub use crate::domain::origin::{Origin, Transport};

/// The event values live in the domain ([`crate::domain::audit`]), so auth can build and record events
/// through [`AuditSink`] without depending on this layer.
pub use crate::domain::audit::{AuditEvent, AuditSink, Outcome, RecordError, new_request_id};

impl From<AuditError> for RecordError {
    fn from(error: AuditError) -> Self {
        if error.is_unavailable() {
            Self::Unavailable
        } else {
            Self::Failed(error.to_string())
        }
    }
}

/// The audit log is where auth's events go (the composition root hands it to [`crate::auth::AuthService`]).
impl AuditSink for AuditLog {
    fn record(&self, event: AuditEvent) -> BoxFuture<'_, Result<(), RecordError>> {
        Box::pin(async move {
            AuditLog::record(self, event)
                .await
                .map_err(RecordError::from)
        })
    }
}

/// A stored row, as returned by queries.
pub type AuditRow = AuditRecord;
/// Filters for [`AuditLog::query`].
pub type AuditQuery = AuditFilter;

/// A write to run inside the audit writer's transaction.
pub type AuditedWrite<T> = crate::store::TxWrite<T>;

/// Tuning of the writer.
#[derive(Debug, Clone, Copy)]
pub struct AuditOptions {
    /// Most events committed in one transaction.
    pub max_batch: usize,
    /// Most events waiting for the writer; further callers wait for room (back-pressure).
    pub queue_capacity: usize,
}

impl Default for AuditOptions {
    fn default() -> Self {
        Self {
            max_batch: 1024,
            queue_capacity: 65_536,
        }
    }
}

/// Handle on the audit log. Cheap to clone; every clone feeds the same single writer.
#[derive(Clone)]
pub struct AuditLog {
    store: Store,
    sender: mpsc::Sender<writer::Job>,
    task: Arc<Mutex<Option<tokio::task::JoinHandle<()>>>>,
    shutdown: tokio_util::sync::CancellationToken,
    /// Unauthenticated refusals waiting to be written as aggregated rows.
    refusals: Arc<refusals::RefusalCounts>,
}

impl fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditLog")
            .field("queue_depth", &self.queue_depth())
            .finish()
    }
}

impl AuditLog {
    /// Starts the writer on a thread of the current runtime's blocking pool.
    pub fn start(store: Store, options: AuditOptions) -> Self {
        let (sender, receiver) = mpsc::channel(options.queue_capacity.max(1));
        let shutdown = tokio_util::sync::CancellationToken::new();
        // The writer has a thread of its own: on SQLite its appends run there, never on a runtime worker
        // (see `store::direct`). It ends when every sender is gone or at shutdown.
        let writer = writer::run(
            store.clone(),
            receiver,
            options.max_batch.max(1),
            shutdown.clone(),
        );
        let runtime = tokio::runtime::Handle::current();
        let task = tokio::task::spawn_blocking(move || runtime.block_on(writer));
        let log = Self {
            store,
            sender,
            task: Arc::new(Mutex::new(Some(task))),
            shutdown,
            refusals: Arc::default(),
        };
        let flusher = log.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = tokio::time::sleep(refusals::WINDOW) => flusher.flush_refusals().await,
                    () = flusher.shutdown.cancelled() => break,
                }
            }
        });
        log
    }

    /// Records one refusal of a caller who never authenticated: the first of its kind in a window is
    /// written now (awaited), the rest are counted into one row written within [`refusals::WINDOW`] (or
    /// at shutdown). Never drops a refusal.
    pub async fn record_refusal(&self, refusal: Refusal) {
        crate::telemetry::metrics::audit_refusal_counted();
        if let Some(event) = self.refusals.count(refusal) {
            if let Err(error) = self.record(event).await {
                tracing::error!(%error, "audit row for a refusal could not be written");
            }
        }
    }

    /// Writes the aggregated refusal rows counted so far.
    pub async fn flush_refusals(&self) {
        for event in self.refusals.drain() {
            if let Err(error) = self.record(event).await {
                tracing::error!(%error, "aggregated refusal row could not be written");
            }
        }
    }

    /// Appends one row; resolves once it is committed.
    pub async fn record(&self, event: AuditEvent) -> Result<(), AuditError> {
        let (done, result) = oneshot::channel();
        self.sender
            .send(writer::Job::Record { event, done })
            .await
            .map_err(|_| AuditError::Closed)?;
        result.await.map_err(|_| AuditError::Closed)?
    }

    /// Runs `write` inside the writer's batch transaction under a savepoint, then appends `event`'s row in
    /// the same transaction: both commit or neither. A failed write is rolled back to its savepoint and its
    /// row says `failed` with the error kind. The outer error means nothing was committed.
    pub async fn record_write<T: Send + 'static>(
        &self,
        event: AuditEvent,
        write: impl for<'c> FnOnce(Tx<'c>) -> BoxFuture<'c, Result<T, StoreError>> + Send + 'static,
    ) -> Result<Result<T, StoreError>, AuditError> {
        let (done, result) = oneshot::channel();
        // The typed value goes straight to this caller; it is read only once the writer reports the
        // transaction committed, so a value from a rolled-back write is never used.
        let (value_sender, value) = oneshot::channel::<T>();
        let erased: writer::ErasedWrite = Box::new(move |tx| {
            let future = write(tx);
            Box::pin(async move {
                let written = future.await?;
                let _ = value_sender.send(written);
                Ok(())
            })
        });
        self.sender
            .send(writer::Job::Write {
                event,
                write: erased,
                done,
            })
            .await
            .map_err(|_| AuditError::Closed)?;
        let outcome = result.await.map_err(|_| AuditError::Closed)??;
        Ok(match outcome {
            Ok(()) => value.await.map_err(|_| {
                StoreError::Corrupt("an audited write committed without its result".to_owned())
            }),
            Err(error) => Err(error),
        })
    }

    /// Rows matching `filter`, newest first (the admin tool `query_audit_log`).
    pub async fn query(&self, filter: AuditQuery) -> Result<Vec<AuditRow>, AuditError> {
        Ok(self.store.query_audit(&filter).await?)
    }

    /// Checks the whole chain.
    pub async fn verify(&self) -> Result<VerifyReport, AuditError> {
        chain::verify(&self.store).await
    }

    /// Events waiting for the writer (for metrics).
    pub fn queue_depth(&self) -> usize {
        self.sender.max_capacity() - self.sender.capacity()
    }

    /// Stops the writer after it has committed every event already queued. Later `record` calls fail
    /// with [`AuditError::Closed`]. Idempotent.
    pub async fn shutdown(&self) {
        if !self.shutdown.is_cancelled() {
            self.flush_refusals().await;
        }
        self.shutdown.cancel();
        let task = self.task.lock().await.take();
        if let Some(task) = task {
            if let Err(error) = task.await {
                tracing::error!(error = %error, "audit writer task failed");
            }
        }
    }
}
