//! PostgreSQL as a first-class engine for the tools: decimal vitals are stored (they used to fail with
//! "incorrect binary data format in bind parameter 7"), and NUL or other control characters in any text
//! argument are `invalid_input`, never `internal`. Every test runs on SQLite and on PostgreSQL.

use serde_json::{Value, json};

use crate::mcp_client::{WsClient, error_code, success};
use crate::mcp_support::{PROVIDER_NPI, spawn_mcp_app_on};
use crate::support::TestDb;

async fn doctor(mcp: &crate::mcp_support::McpApp) -> WsClient {
    let token = mcp.token("copilot-studio").await;
    WsClient::connect(&mcp.app, "/ws", Some(&token)).await
}

#[tokio::test]
async fn decimal_vitals_are_stored_on_every_engine() {
    for db in TestDb::all().await {
        let engine = db.engine();
        let mcp = spawn_mcp_app_on(db, &[]).await;
        let mut client = doctor(&mcp).await;
        // Integers only first (the statement is prepared with NULL decimals), then decimals.
        let calls = [
            json!({"mrn": "MRN001", "heart_rate": 64}),
            json!({"mrn": "MRN001", "temperature": 98.6, "weight": 150.5, "height": 65.5}),
            json!({"mrn": "MRN002", "temperature": 99, "weight": 180, "height": 70,
                   "systolic_bp": 120, "diastolic_bp": 80, "notes": "after a walk"}),
        ];
        // Several rounds, so every pooled connection sees both shapes of the statement.
        for arguments in calls.iter().cycle().take(12).cloned() {
            let result = client
                .call_tool("record_vital_signs", arguments.clone())
                .await;
            let body = success(&result);
            let stored = &body["vital_signs"];
            for field in ["temperature", "weight", "height"] {
                if let Some(sent) = arguments[field].as_f64() {
                    assert_eq!(
                        stored[field].as_f64(),
                        Some(sent),
                        "{engine:?} {field}: {body}"
                    );
                }
            }
        }
        let result = client
            .call_tool("get_vital_signs", json!({"mrn": "MRN001"}))
            .await;
        let body = success(&result);
        let readings = body["vital_signs"].as_array().cloned().unwrap_or_default();
        assert!(
            readings
                .iter()
                .any(|r| r["temperature"].as_f64() == Some(98.6)
                    && r["weight"].as_f64() == Some(150.5)),
            "{engine:?}: {body}"
        );
        client.close().await;
        mcp.shutdown().await;
    }
}

/// Every tool that takes free text, with `text` in one of its text arguments.
fn text_calls(text: &str) -> Vec<(&'static str, Value)> {
    vec![
        ("search_patients", json!({"search_term": text})),
        ("get_patient", json!({"mrn": text})),
        ("update_patient", json!({"mrn": "MRN001", "city": text})),
        (
            "create_patient",
            json!({"first_name": text, "last_name": "Matrix", "dob": "1999-09-09"}),
        ),
        (
            "schedule_appointment",
            json!({"mrn": "MRN001", "provider_npi": PROVIDER_NPI,
            "date": "2098-01-05", "time": "9:15 AM", "reason": text}),
        ),
        (
            "cancel_appointment",
            json!({"mrn": "MRN001", "appointment_id": text}),
        ),
        ("search_providers", json!({"specialty": text})),
        (
            "prescribe_medication",
            json!({"mrn": "MRN001", "medication_name": text,
            "dosage": "81mg", "frequency": "Daily"}),
        ),
        (
            "discontinue_medication",
            json!({"mrn": "MRN001", "medication_id": text}),
        ),
        ("order_lab", json!({"mrn": "MRN001", "test_name": text})),
        (
            "record_vital_signs",
            json!({"mrn": "MRN001", "heart_rate": 60, "notes": text}),
        ),
        (
            "add_allergy",
            json!({"mrn": "MRN001", "allergen": text, "severity": "moderate"}),
        ),
        ("get_patient_summary", json!({"mrn": text})),
    ]
}

#[tokio::test]
async fn nul_and_control_characters_are_invalid_input_on_every_engine() {
    for db in TestDb::all().await {
        let engine = db.engine();
        let mcp = spawn_mcp_app_on(db, &[]).await;
        let mut client = doctor(&mcp).await;
        for text in ["bad\u{0}byte", "\u{0}", "bell\u{7}", "esc\u{1b}[2J"] {
            for (tool, arguments) in text_calls(text) {
                let result = client.call_tool(tool, arguments).await;
                let code = error_code(&result);
                assert_eq!(
                    code, "invalid_input",
                    "{engine:?} {tool} with {text:?}: {result}"
                );
            }
        }
        // The connection and the database are fine afterwards.
        let result = client
            .call_tool("get_patient", json!({"mrn": "MRN001"}))
            .await;
        success(&result);
        client.close().await;
        mcp.shutdown().await;
    }
}

/// Below the tools (an import, a future caller): the store itself answers text the database cannot hold
/// with `StoreError::Invalid`, not a database error.
#[tokio::test]
async fn the_store_maps_unstorable_text_to_invalid_on_postgres() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    crate::mcp_support::load_clinical_fixture(&db).await;
    let written = db
        .store
        .insert_vital_signs(&ehr_mcp::domain::clinical::VitalSigns {
            vital_id: crate::store_fixtures::record_id("VITNUL"),
            patient_mrn: crate::store_fixtures::mrn("MRN001"),
            recorded_date: "2025-11-21T08:09:31".parse().unwrap(),
            systolic_bp: None,
            diastolic_bp: None,
            heart_rate: Some(70),
            temperature: Some(98.6),
            respiratory_rate: None,
            oxygen_saturation: None,
            weight: None,
            height: None,
            bmi: None,
            recorded_by: None,
            notes: Some("bad\u{0}byte".into()),
        })
        .await;
    assert!(
        matches!(written, Err(ehr_mcp::store::StoreError::Invalid { .. })),
        "{written:?}"
    );
}

/// The same statement on one connection: first without decimals, then with them (the failing order).
#[tokio::test]
async fn one_connection_stores_a_null_then_a_decimal_temperature() {
    for db in TestDb::all().await {
        crate::mcp_support::load_clinical_fixture(&db).await;
        let mut options = ehr_mcp::store::StoreOptions::new(db.url.clone());
        options.max_connections = 1;
        let store = ehr_mcp::store::Store::connect(&options).await.unwrap();
        for (n, temperature) in [None, Some(98.6), None, Some(101.2)]
            .into_iter()
            .enumerate()
        {
            store
                .insert_vital_signs(&ehr_mcp::domain::clinical::VitalSigns {
                    vital_id: crate::store_fixtures::record_id(&format!("VITDEC{n}")),
                    patient_mrn: crate::store_fixtures::mrn("MRN001"),
                    recorded_date: format!("2025-11-2{n}T08:00:00").parse().unwrap(),
                    systolic_bp: None,
                    diastolic_bp: None,
                    heart_rate: Some(70),
                    temperature,
                    respiratory_rate: None,
                    oxygen_saturation: None,
                    weight: temperature.map(|_| 150.5),
                    height: None,
                    bmi: None,
                    recorded_by: None,
                    notes: None,
                })
                .await
                .unwrap_or_else(|error| panic!("{:?} reading {n}: {error:?}", db.engine()));
        }
        store.close().await.expect("close");
    }
}
