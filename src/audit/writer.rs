//! The single audit writer: takes queued events in batches (everything waiting, up to a maximum), commits
//! each batch in one transaction with the chain head re-read under a lock, then answers every caller.

use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::store::audit::{
    AuditHead, AuditRecord, audit_head, insert_audit_records, lock_audit_chain,
};
use crate::store::{Store, StoreError, TxWrite, now_text};

use super::chain::{GENESIS_HASH, row_hash};
use super::{AuditError, AuditEvent, Outcome};

/// A write run inside the batch transaction. Its typed value travels to the caller on the caller's own
/// typed channel (see [`super::AuditLog::record_write`]); the writer only learns whether it succeeded.
pub(super) type ErasedWrite = TxWrite<()>;

type WriteResult = Result<(), StoreError>;

pub(super) enum Job {
    Record {
        event: AuditEvent,
        done: oneshot::Sender<Result<(), AuditError>>,
    },
    Write {
        event: AuditEvent,
        write: ErasedWrite,
        done: oneshot::Sender<Result<WriteResult, AuditError>>,
    },
}

/// One job of a batch while it is being committed.
struct Entry {
    event: AuditEvent,
    write: Option<ErasedWrite>,
    write_result: Option<WriteResult>,
    responder: Responder,
}

enum Responder {
    Record(oneshot::Sender<Result<(), AuditError>>),
    Write(oneshot::Sender<Result<WriteResult, AuditError>>),
}

/// Attempts for a batch of plain records when the database refuses it (busy, connection lost).
const RECORD_ATTEMPTS: u32 = 3;

pub(super) async fn run(
    store: Store,
    mut receiver: mpsc::Receiver<Job>,
    max_batch: usize,
    shutdown: CancellationToken,
) {
    let mut breaker = Breaker::default();
    loop {
        let first = tokio::select! {
            job = receiver.recv() => job,
            () = shutdown.cancelled() => None,
        };
        let Some(first) = first else {
            break;
        };
        let mut batch = vec![first];
        while batch.len() < max_batch {
            match receiver.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        commit_batch(&store, batch, &mut breaker).await;
    }
    // Shutdown: refuse new events, then commit everything already queued.
    receiver.close();
    let mut rest = Vec::new();
    while let Some(job) = receiver.recv().await {
        rest.push(job);
        if rest.len() >= max_batch {
            commit_batch(&store, std::mem::take(&mut rest), &mut breaker).await;
        }
    }
    if !rest.is_empty() {
        commit_batch(&store, rest, &mut breaker).await;
    }
}

/// How long after a batch found the database unavailable the next batches fail at once instead of
/// waiting for the pool's acquire timeout again: callers queued behind a failed batch get their
/// retryable answer without waiting in line.
const BREAKER_OPEN_FOR: Duration = Duration::from_secs(1);

#[derive(Default)]
struct Breaker {
    opened_at: Option<std::time::Instant>,
}

impl Breaker {
    fn is_open(&self) -> bool {
        self.opened_at
            .is_some_and(|opened| opened.elapsed() < BREAKER_OPEN_FOR)
    }
}

async fn commit_batch(store: &Store, batch: Vec<Job>, breaker: &mut Breaker) {
    let mut entries: Vec<Entry> = batch
        .into_iter()
        .map(|job| match job {
            Job::Record { event, done } => Entry {
                event,
                write: None,
                write_result: None,
                responder: Responder::Record(done),
            },
            Job::Write { event, write, done } => Entry {
                event,
                write: Some(write),
                write_result: None,
                responder: Responder::Write(done),
            },
        })
        .collect();
    let has_writes = entries.iter().any(|entry| entry.write.is_some());
    let attempts = if has_writes { 1 } else { RECORD_ATTEMPTS };
    let mut result = Ok(());
    for attempt in 1..=attempts {
        if breaker.is_open() {
            result = Err(AuditError::Store(StoreError::Unavailable));
        } else {
            result = try_commit(store, &mut entries).await;
            breaker.opened_at = match &result {
                Err(error) if error.is_unavailable() => Some(std::time::Instant::now()),
                _ => None,
            };
        }
        match &result {
            Ok(()) => break,
            Err(error) => {
                tracing::error!(error = %error, attempt, rows = entries.len(), "audit batch not committed");
                // The pool already waited its acquire timeout: retrying would only make callers wait
                // longer for the same retryable answer.
                if error.is_unavailable() {
                    break;
                }
                if attempt < attempts {
                    tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt))).await;
                }
            }
        }
    }
    if result.is_ok() {
        crate::telemetry::metrics::audit_rows_committed(entries.len());
    }
    for entry in entries {
        match entry.responder {
            Responder::Record(done) => {
                let _ = done.send(result.as_ref().map(|_| ()).map_err(copy_error));
            }
            Responder::Write(done) => {
                let answer = match &result {
                    Ok(()) => Ok(entry.write_result.unwrap_or_else(|| {
                        Err(StoreError::Corrupt("audited write did not run".to_owned()))
                    })),
                    Err(error) => Err(copy_error(error)),
                };
                let _ = done.send(answer);
            }
        }
    }
}

/// Errors are not `Clone`; every caller of a failed batch gets an equivalent one.
fn copy_error(error: &AuditError) -> AuditError {
    match error {
        AuditError::Closed => AuditError::Closed,
        AuditError::Store(StoreError::Unavailable) => AuditError::Store(StoreError::Unavailable),
        AuditError::Store(_) => AuditError::Store(StoreError::Corrupt(
            "audit batch could not be committed".to_owned(),
        )),
    }
}

async fn try_commit(store: &Store, entries: &mut [Entry]) -> Result<(), AuditError> {
    if entries.iter().all(|entry| entry.write.is_none()) {
        // Rows only: the store reads the head, inserts and commits in one go (on SQLite without a
        // thread hop per statement).
        let events: Vec<&AuditEvent> = entries.iter().map(|entry| &entry.event).collect();
        store
            .append_audit(|head| chain_records(head, events.into_iter()))
            .await?;
        return Ok(());
    }
    let mut batch = store.begin().await?;
    let mut tx = batch.tx();
    lock_audit_chain(&mut tx, store.engine()).await?;
    let head = audit_head(&mut tx).await?;
    for entry in entries.iter_mut() {
        if let Some(write) = entry.write.take() {
            // Under a savepoint: a failed write is rolled back alone and the batch goes on.
            let outcome = tx.savepoint(write).await?;
            if let Err(error) = &outcome {
                entry.event.outcome = Outcome::Failed;
                entry.event.detail = Some(store_error_kind(error));
            }
            entry.write_result = Some(outcome);
        }
    }
    let records = chain_records(head, entries.iter().map(|entry| &entry.event));
    insert_audit_records(&mut tx, &records).await?;
    batch.commit().await?;
    Ok(())
}

/// The rows for `events`, numbered and hash-chained on from `head`.
fn chain_records<'e>(
    head: AuditHead,
    events: impl ExactSizeIterator<Item = &'e AuditEvent>,
) -> Vec<AuditRecord> {
    let (mut seq, mut prev_hash) = head.unwrap_or_else(|| (0, GENESIS_HASH.to_owned()));
    let mut records = Vec::with_capacity(events.len());
    for event in events {
        seq += 1;
        let record = build_record(seq, &prev_hash, event);
        prev_hash = record.row_hash.clone();
        records.push(record);
    }
    records
}

fn build_record(seq: i64, prev_hash: &str, event: &AuditEvent) -> AuditRecord {
    let mut record = AuditRecord {
        seq,
        occurred_at: now_text(),
        request_id: event.request_id.clone(),
        transport: event.transport.as_str().to_owned(),
        client_id: event.client_id.clone(),
        app_id: event.app_id.clone(),
        role: event.role.clone(),
        action: event.action.clone(),
        patient_mrn: event
            .patient_mrn
            .as_ref()
            .map(|mrn| mrn.as_str().to_owned()),
        outcome: event.outcome.as_str().to_owned(),
        detail: event.detail.clone(),
        prev_hash: prev_hash.to_owned(),
        row_hash: String::new(),
    };
    record.row_hash = row_hash(&record);
    record
}

/// A short, data-free label of a store error for the audit row.
pub(crate) fn store_error_kind(error: &StoreError) -> String {
    match error {
        StoreError::NotFound { what } => format!("not_found: {what}"),
        StoreError::Conflict { constraint } => format!("conflict: {constraint}"),
        _ => "store_error".to_owned(),
    }
}
