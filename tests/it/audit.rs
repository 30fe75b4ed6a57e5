//! The audit log on both engines: concurrent events form one unbroken chain; a write and its row commit
//! together (or the write is rolled back and the row says so); rows cannot be changed through SQL while
//! the triggers stand; with the triggers dropped, an edited, deleted or inserted row is found and named.

use ehr_mcp::audit::{AuditEvent, AuditLog, AuditOptions, Outcome, ProblemKind, Transport};
use ehr_mcp::domain::ids::Mrn;
use ehr_mcp::store::audit::AuditFilter;
use ehr_mcp::store::{Engine, StoreError, Tx};
use futures::FutureExt;
use futures::future::BoxFuture;

use crate::support::TestDb;

fn event(action: &str, client: &str) -> AuditEvent {
    AuditEvent {
        client_id: Some(client.to_owned()),
        role: Some("doctor".to_owned()),
        patient_mrn: Some(Mrn::parse("MRN001").unwrap()),
        ..AuditEvent::new(Transport::WebSocket, action, Outcome::Success)
    }
}

#[tokio::test]
async fn concurrent_events_form_one_verified_chain_and_shutdown_flushes() {
    for db in TestDb::all().await {
        let log = AuditLog::start(db.store.clone(), AuditOptions::default());
        let tasks: Vec<_> = (0..200)
            .map(|index| {
                let log = log.clone();
                tokio::spawn(async move {
                    log.record(event("get_patient", &format!("client-{index}")))
                        .await
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        // Events queued but not awaited are committed by shutdown.
        let pending: Vec<_> = (0..50)
            .map(|_| {
                let log = log.clone();
                tokio::spawn(async move { log.record(event("get_labs", "late")).await })
            })
            .collect();
        tokio::task::yield_now().await;
        log.shutdown().await;
        let committed = futures::future::join_all(pending)
            .await
            .into_iter()
            .filter(|result| matches!(result, Ok(Ok(()))))
            .count();
        assert_eq!(
            db.store.count_audit_rows().await.unwrap(),
            200 + committed as i64
        );
        assert!(
            log.record(event("after", "x")).await.is_err(),
            "closed after shutdown"
        );
        let report = ehr_mcp::audit::verify(&db.store).await.unwrap();
        assert_eq!(report.problem, None);
        assert_eq!(report.rows_checked, 200 + committed as u64);
        let rows = db
            .store
            .query_audit(&AuditFilter {
                patient_mrn: Some("MRN001".into()),
                limit: 5,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(rows.len(), 5);
        assert!(rows[0].seq > rows[1].seq, "newest first");
    }
}

/// A write through the store's transaction handle that inserts a provider named `name` with one fixed
/// NPI (a second one conflicts); its value is the name's length.
fn insert(
    name: &'static str,
) -> impl for<'c> FnOnce(Tx<'c>) -> BoxFuture<'c, Result<usize, StoreError>> + Send + 'static {
    move |mut tx| {
        async move {
            let provider =
                crate::store_fixtures::provider("1234567890", name, "Cardiology", "Heart");
            ehr_mcp::store::providers::insert_provider(&mut tx, &provider).await?;
            Ok(name.len())
        }
        .boxed()
    }
}

/// Appends rows as they are, outside the writer (an attacker with database rights).
async fn insert_rows(store: &ehr_mcp::store::Store, rows: &[ehr_mcp::store::audit::AuditRecord]) {
    let mut batch = store.begin().await.unwrap();
    ehr_mcp::store::audit::insert_audit_records(&mut batch.tx(), rows)
        .await
        .unwrap();
    batch.commit().await.unwrap();
}

#[tokio::test]
async fn a_write_and_its_audit_row_commit_together_or_the_write_rolls_back() {
    for db in TestDb::all().await {
        let log = AuditLog::start(db.store.clone(), AuditOptions::default());
        let first = log
            .record_write(event("record_vital_signs", "c"), insert("same-id"))
            .await
            .unwrap();
        assert_eq!(first.unwrap(), 7);
        let duplicate = log
            .record_write(event("record_vital_signs", "c"), insert("same-id"))
            .await
            .unwrap();
        assert!(matches!(duplicate, Err(StoreError::Conflict { .. })));
        log.shutdown().await;
        let npi = ehr_mcp::domain::ids::Npi::parse("1234567890").unwrap();
        assert_eq!(db.store.provider(&npi).await.unwrap().name, "same-id");
        let rows = db
            .store
            .query_audit(&AuditFilter {
                action: Some("record_vital_signs".into()),
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].outcome, "success");
        assert_eq!(rows[0].outcome, "failed");
        assert!(rows[0].detail.as_deref().unwrap().starts_with("conflict"));
        assert_eq!(
            ehr_mcp::audit::verify(&db.store).await.unwrap().problem,
            None
        );
    }
}

#[tokio::test]
async fn tampering_is_refused_by_triggers_and_otherwise_found_and_named() {
    for db in TestDb::all().await {
        let log = AuditLog::start(db.store.clone(), AuditOptions::default());
        for index in 0..8 {
            log.record(event("get_patient", &format!("client-{index}")))
                .await
                .unwrap();
        }
        log.shutdown().await;
        let pool = db.store.pool();
        assert!(
            sqlx::query("UPDATE audit_log SET outcome = 'denied' WHERE seq = 3")
                .execute(pool)
                .await
                .is_err(),
            "append-only"
        );
        assert!(
            sqlx::query("DELETE FROM audit_log WHERE seq = 3")
                .execute(pool)
                .await
                .is_err(),
            "append-only"
        );

        // An attacker with database rights drops the triggers.
        match db.engine() {
            Engine::Sqlite => {
                sqlx::query("DROP TRIGGER audit_log_no_update")
                    .execute(pool)
                    .await
                    .unwrap();
                sqlx::query("DROP TRIGGER audit_log_no_delete")
                    .execute(pool)
                    .await
                    .unwrap();
            }
            Engine::Postgres => {
                sqlx::query("DROP TRIGGER audit_log_no_change ON audit_log")
                    .execute(pool)
                    .await
                    .unwrap();
            }
        }
        let problem = || async {
            ehr_mcp::audit::verify(&db.store)
                .await
                .unwrap()
                .problem
                .unwrap()
        };

        sqlx::query("UPDATE audit_log SET outcome = 'denied' WHERE seq = 3")
            .execute(pool)
            .await
            .unwrap();
        let found = problem().await;
        assert_eq!((found.seq, found.kind), (3, ProblemKind::Edited));
        sqlx::query("UPDATE audit_log SET outcome = 'success' WHERE seq = 3")
            .execute(pool)
            .await
            .unwrap();
        assert_eq!(
            ehr_mcp::audit::verify(&db.store).await.unwrap().problem,
            None,
            "restored"
        );

        let deleted = db.store.audit_page_after(4, 1).await.unwrap().remove(0);
        sqlx::query("DELETE FROM audit_log WHERE seq = 5")
            .execute(pool)
            .await
            .unwrap();
        let found = problem().await;
        assert_eq!(
            (found.seq, found.kind),
            (6, ProblemKind::RowsMissingBefore { expected_seq: 5 })
        );
        assert!(found.to_string().contains("row seq 6"));
        insert_rows(&db.store, std::slice::from_ref(&deleted)).await;
        assert_eq!(
            ehr_mcp::audit::verify(&db.store).await.unwrap().problem,
            None,
            "restored"
        );

        // A row inserted at the end with a made-up hash, and one slipped in with a recomputed own hash but
        // not chained to its predecessor.
        let mut forged = deleted.clone();
        forged.seq = 9;
        forged.action = "get_patient_summary".to_owned();
        forged.prev_hash = "f".repeat(64);
        forged.row_hash = ehr_mcp::audit::chain::row_hash(&forged);
        insert_rows(&db.store, &[forged]).await;
        let found = problem().await;
        assert_eq!((found.seq, found.kind), (9, ProblemKind::BrokenLink));
    }
}

#[tokio::test]
async fn the_audit_verify_command_exits_1_naming_the_bad_row() {
    let db = TestDb::sqlite().await;
    let log = AuditLog::start(db.store.clone(), AuditOptions::default());
    for _ in 0..3 {
        log.record(event("get_patient", "cli-test")).await.unwrap();
    }
    log.shutdown().await;
    let verify = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_ehr-mcp"))
            .args(["audit", "verify"])
            .env("DATABASE_URL", &db.url)
            .output()
            .unwrap()
    };
    let intact = verify();
    assert!(intact.status.success());
    assert!(String::from_utf8_lossy(&intact.stdout).contains("intact: 3 rows"));
    sqlx::query("DROP TRIGGER audit_log_no_update")
        .execute(db.store.pool())
        .await
        .unwrap();
    sqlx::query("UPDATE audit_log SET client_id = 'someone-else' WHERE seq = 2")
        .execute(db.store.pool())
        .await
        .unwrap();
    let broken = verify();
    assert_eq!(broken.status.code(), Some(1));
    let output = String::from_utf8_lossy(&broken.stdout);
    assert!(output.contains("row seq 2"), "{output}");
}
