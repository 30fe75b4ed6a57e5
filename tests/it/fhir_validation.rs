//! Every FHIR resource we produce from the demo data and from the imported seed export, validated by two
//! validators we did not write (the official R4 JSON schema and the `fhir.resources` models, run by
//! `tests/clients/fhir_validate.py`): zero errors. The validators are installed by `tests/clients/setup.sh`.

use std::path::PathBuf;

use futures::TryStreamExt;

use crate::mcp_support::clients_dir;
use crate::support::TestDb;

/// Writes the resources one per line and runs both validators over them.
fn run_validators(resources: &[serde_json::Value]) -> std::process::Output {
    let python = clients_dir().join(".venv/bin/python");
    assert!(
        python.exists(),
        "the FHIR validators are not installed: run tests/clients/setup.sh (scripts/test and .ci/run do)"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("resources.ndjson");
    let lines: Vec<String> = resources.iter().map(|r| r.to_string()).collect();
    std::fs::write(&path, lines.join("\n")).unwrap();
    std::process::Command::new(python)
        .arg(clients_dir().join("fhir_validate.py"))
        .arg(&path)
        .output()
        .expect("validator started")
}

/// Runs both validators; fails with their report unless every resource is valid.
pub(crate) fn validate(resources: &[serde_json::Value]) -> serde_json::Value {
    let output = run_validators(resources);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "FHIR validation failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap()
}

fn last_updated() -> chrono::NaiveDateTime {
    chrono::Utc::now().naive_utc()
}

fn assert_every_type_present(report: &serde_json::Value) {
    for kind in [
        "Patient",
        "Coverage",
        "Practitioner",
        "Appointment",
        "MedicationRequest",
        "AllergyIntolerance",
        "Observation",
        "DiagnosticReport",
    ] {
        assert!(
            report["by_type"][kind].as_u64().unwrap_or(0) > 0,
            "no {kind} in {report}"
        );
    }
}

#[test]
fn the_validators_refuse_an_invalid_resource() {
    let invalid = serde_json::json!({"resourceType": "Observation", "id": "bad_id", "status": "done",
        "code": {"text": "x"}, "effectiveDateTime": "2025-11-21T08:09:31"});
    let output = run_validators(&[invalid]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("json-schema Observation/bad_id"),
        "{stderr}"
    );
    assert!(
        stderr.contains("fhir.resources Observation/bad_id"),
        "{stderr}"
    );
}

#[test]
fn every_resource_of_the_demo_data_is_valid_fhir_r4() {
    let dataset = ehr_mcp::dataset::demo::demo_dataset().unwrap();
    let resources = ehr_mcp::fhir::dataset_resources(&dataset, last_updated());
    let report = validate(&resources);
    assert_eq!(report["errors"], 0);
    assert_eq!(report["resources"].as_u64(), Some(resources.len() as u64));
    assert_every_type_present(&report);
}

#[tokio::test]
async fn every_resource_of_the_imported_seed_export_and_its_audit_events_is_valid_fhir_r4() {
    let db = TestDb::sqlite().await;
    let seed = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/seed_export.json");
    ehr_mcp::dataset::import::import_file(&db.store, &seed, false)
        .await
        .unwrap();
    let store = &db.store;
    let dataset = ehr_mcp::dataset::Dataset {
        providers: store.stream_providers().try_collect().await.unwrap(),
        patients: store.stream_patients().try_collect().await.unwrap(),
        appointments: store.stream_appointments().try_collect().await.unwrap(),
        medications: store.stream_medications().try_collect().await.unwrap(),
        allergies: store.stream_allergies().try_collect().await.unwrap(),
        vitals: store.stream_vital_signs().try_collect().await.unwrap(),
        labs: store.stream_lab_results().try_collect().await.unwrap(),
    };
    assert!(
        dataset.patients.len() >= 200,
        "the seed export has 221 patients"
    );
    let mut resources = ehr_mcp::fhir::dataset_resources(&dataset, last_updated());
    let audit = [
        ("success", Some("MRN001")),
        ("denied", None),
        ("failed", Some("MRN002")),
    ];
    for (seq, (outcome, mrn)) in audit.into_iter().enumerate() {
        resources.push(ehr_mcp::fhir::audit_event(
            &ehr_mcp::store::audit::AuditRecord {
                seq: seq as i64 + 1,
                occurred_at: "2026-01-02T03:04:05.123456".into(),
                request_id: "0190a0b0-0000-7000-8000-000000000000".into(),
                transport: "http".into(),
                client_id: mrn.map(|_| "client-1".into()),
                app_id: mrn.map(|_| "app".into()),
                role: Some("doctor".into()),
                action: "get_patient".into(),
                patient_mrn: mrn.map(Into::into),
                outcome: outcome.into(),
                detail: (outcome != "success").then(|| "forbidden".into()),
                prev_hash: String::new(),
                row_hash: String::new(),
            },
        ));
    }
    let report = validate(&resources);
    assert_eq!(report["errors"], 0);
    assert_every_type_present(&report);
    assert_eq!(report["by_type"]["AuditEvent"], 3);
}
