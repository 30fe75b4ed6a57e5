//! The hash chain: each row's hash covers the previous row's hash and the row's own canonical fields, so
//! an edited, deleted or inserted row breaks the chain at a row that `verify` can name.

use sha2::{Digest, Sha256};

use crate::store::audit::AuditRecord;
use crate::store::{Store, StoreError};

use super::AuditError;

/// The `prev_hash` of the first row.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Rows read per page while verifying.
const VERIFY_PAGE: i64 = 5_000;

/// `hex(SHA-256(prev_hash "\n" canonical))` where `canonical` is the JSON array of the row's fields in
/// column order (serde_json writes arrays deterministically; strings are escaped, so fields cannot run
/// into each other).
pub fn row_hash(record: &AuditRecord) -> String {
    // A tuple serialises as the same compact JSON array as `json!([...])`, without building a `Value`
    // (pinned by `the_canonical_form_is_the_json_array`).
    let fields = (
        record.seq,
        &record.occurred_at,
        &record.request_id,
        &record.transport,
        &record.client_id,
        &record.app_id,
        &record.role,
        &record.action,
        &record.patient_mrn,
        &record.outcome,
        &record.detail,
    );
    let mut hasher = Sha256::new();
    hasher.update(record.prev_hash.as_bytes());
    hasher.update(b"\n");
    // Serialising strings and integers into a Vec cannot fail.
    hasher.update(serde_json::to_vec(&fields).unwrap_or_default());
    hex::encode(hasher.finalize())
}

/// What `verify` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub rows_checked: u64,
    /// The last good row's `(seq, row_hash)`: record it elsewhere to detect truncation later.
    pub head: Option<(i64, String)>,
    pub problem: Option<ChainProblem>,
}

/// The first row where the chain breaks, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainProblem {
    pub seq: i64,
    pub kind: ProblemKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    /// The row's fields no longer match its hash: it was edited (or forged without recomputing).
    Edited,
    /// Sequence numbers jump before this row: rows were deleted.
    RowsMissingBefore { expected_seq: i64 },
    /// The row's `prev_hash` is not the previous row's hash: a row was inserted or replaced before it.
    BrokenLink,
}

impl std::fmt::Display for ChainProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.kind {
            ProblemKind::Edited => write!(
                f,
                "row seq {}: its contents do not match its hash (edited or forged)",
                self.seq
            ),
            ProblemKind::RowsMissingBefore { expected_seq } => write!(
                f,
                "row seq {}: expected seq {expected_seq} next; rows were deleted before it",
                self.seq
            ),
            ProblemKind::BrokenLink => write!(
                f,
                "row seq {}: prev_hash does not match the previous row (a row was inserted or replaced)",
                self.seq
            ),
        }
    }
}

/// Walks the whole chain in order and stops at the first broken row. The next page is read while the
/// current one is checked.
pub async fn verify(store: &Store) -> Result<VerifyReport, AuditError> {
    let mut expected_seq = 1_i64;
    let mut expected_prev = GENESIS_HASH.to_owned();
    let mut rows_checked = 0_u64;
    // The last good row, from the expected values that follow it.
    let head = |rows_checked: u64, expected_seq: i64, expected_prev: &str| {
        (rows_checked > 0).then(|| (expected_seq - 1, expected_prev.to_owned()))
    };
    let mut pending = read_page(store, 0);
    loop {
        let page = pending.await.map_err(|_| StoreError::Unavailable)??;
        let Some(last) = page.last() else {
            break;
        };
        pending = read_page(store, last.seq);
        for record in &page {
            if let Some(kind) = check_row(record, expected_seq, &expected_prev) {
                return Ok(VerifyReport {
                    rows_checked,
                    head: head(rows_checked, expected_seq, &expected_prev),
                    problem: Some(ChainProblem {
                        seq: record.seq,
                        kind,
                    }),
                });
            }
            rows_checked += 1;
            expected_seq = record.seq + 1;
            expected_prev.clone_from(&record.row_hash);
        }
    }
    Ok(VerifyReport {
        rows_checked,
        head: head(rows_checked, expected_seq, &expected_prev),
        problem: None,
    })
}

/// The page of rows after `after`, read on a task of its own.
fn read_page(
    store: &Store,
    after: i64,
) -> tokio::task::JoinHandle<Result<Vec<AuditRecord>, StoreError>> {
    let store = store.clone();
    tokio::spawn(async move { store.audit_page_after(after, VERIFY_PAGE).await })
}

fn check_row(record: &AuditRecord, expected_seq: i64, expected_prev: &str) -> Option<ProblemKind> {
    if record.seq != expected_seq {
        return Some(ProblemKind::RowsMissingBefore { expected_seq });
    }
    if row_hash(record) != record.row_hash {
        return Some(ProblemKind::Edited);
    }
    if record.prev_hash != expected_prev {
        return Some(ProblemKind::BrokenLink);
    }
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn record(seq: i64, prev_hash: &str) -> AuditRecord {
        let mut record = AuditRecord {
            seq,
            occurred_at: "2025-01-01T00:00:00.000000".to_owned(),
            request_id: format!("req-{seq}"),
            transport: "http".to_owned(),
            client_id: Some("client".to_owned()),
            app_id: None,
            role: Some("doctor".to_owned()),
            action: "token.issue".to_owned(),
            patient_mrn: None,
            outcome: "success".to_owned(),
            detail: None,
            prev_hash: prev_hash.to_owned(),
            row_hash: String::new(),
        };
        record.row_hash = row_hash(&record);
        record
    }

    #[test]
    fn the_canonical_form_is_the_json_array() {
        // Rows hashed by earlier releases (json! array, `to_string`) must still verify.
        let mut row = record(7, GENESIS_HASH);
        row.detail = Some("quote \" backslash \\ newline \n é".to_owned());
        let canonical = serde_json::json!([
            row.seq,
            row.occurred_at,
            row.request_id,
            row.transport,
            row.client_id,
            row.app_id,
            row.role,
            row.action,
            row.patient_mrn,
            row.outcome,
            row.detail,
        ]);
        let mut hasher = Sha256::new();
        hasher.update(row.prev_hash.as_bytes());
        hasher.update(b"\n");
        hasher.update(canonical.to_string().as_bytes());
        assert_eq!(row_hash(&row), hex::encode(hasher.finalize()));
    }

    #[test]
    fn each_field_changes_the_hash() {
        let original = record(1, GENESIS_HASH);
        let mut edited = original.clone();
        edited.outcome = "denied".to_owned();
        assert_ne!(row_hash(&original), row_hash(&edited));
        let mut moved = original.clone();
        moved.client_id = None;
        moved.app_id = Some("client".to_owned());
        assert_ne!(row_hash(&original), row_hash(&moved));
    }

    #[test]
    fn check_row_names_the_kind_of_break() {
        let first = record(1, GENESIS_HASH);
        assert_eq!(check_row(&first, 1, GENESIS_HASH), None);
        let second = record(2, &first.row_hash);
        assert_eq!(
            check_row(&second, 1, GENESIS_HASH),
            Some(ProblemKind::RowsMissingBefore { expected_seq: 1 })
        );
        let mut edited = second.clone();
        edited.action = "get_patient".to_owned();
        assert_eq!(
            check_row(&edited, 2, &first.row_hash),
            Some(ProblemKind::Edited)
        );
        let forged = record(2, GENESIS_HASH);
        assert_eq!(
            check_row(&forged, 2, &first.row_hash),
            Some(ProblemKind::BrokenLink)
        );
    }
}
