//! The FHIR R4 API at `/fhir/r4/` against the real server: metadata and SMART configuration, reads,
//! searches with paging, errors as OperationOutcome, the audit row of every read, the `fhir_read` and
//! `fhir_search` tools, the authorization matrix (every demo client × every resource type, the patient
//! client only in its own compartment), every served resource through the two validators, and the
//! `fhirpy` client library following `next` links. Runs on the engine `EHR_MCP_TEST_ENGINE` names.

use ehr_mcp::domain::time::{Date, DateOrTimestamp, Timestamp};
use std::collections::BTreeSet;

use ehr_mcp::domain::clinical::{LabResult, LabStatus, Medication, MedicationStatus, VitalSigns};
use ehr_mcp::store::audit::AuditFilter;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::fhir_validation::validate;
use crate::mcp_client::WsClient;
use crate::mcp_support::{McpApp, PROVIDER_NPI, spawn_mcp_app, spawn_on_seed_export};
use crate::store_fixtures::{appointment, mrn, record_id};
use crate::support::TestDb;

/// `GET {base}/fhir/r4/{path}` with an optional bearer token: status, content type and body.
async fn get(app: &McpApp, token: Option<&str>, path: &str) -> (StatusCode, String, Value) {
    let url = if path.starts_with("http") {
        path.to_owned()
    } else {
        app.app.url(&format!("/fhir/r4/{path}"))
    };
    let mut request = reqwest::Client::new().get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("FHIR request");
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, content_type, body)
}

async fn ok(app: &McpApp, token: &str, path: &str) -> Value {
    let (status, content_type, body) = get(app, Some(token), path).await;
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    assert!(
        content_type.starts_with("application/fhir+json"),
        "{content_type}"
    );
    body
}

fn entries(bundle: &Value) -> Vec<Value> {
    bundle["entry"]
        .as_array()
        .map(|entries| entries.iter().map(|e| e["resource"].clone()).collect())
        .unwrap_or_default()
}

fn ids(bundle: &Value) -> Vec<String> {
    entries(bundle)
        .iter()
        .map(|r| {
            format!(
                "{}/{}",
                r["resourceType"].as_str().unwrap(),
                r["id"].as_str().unwrap()
            )
        })
        .collect()
}

fn next_link(bundle: &Value) -> Option<String> {
    bundle["link"]
        .as_array()?
        .iter()
        .find(|link| link["relation"] == "next")
        .and_then(|link| link["url"].as_str().map(str::to_owned))
}

/// MRN002's records besides her allergy: an appointment, a medication, vital signs and a lab order.
async fn add_other_patient_records(db: &TestDb) {
    let store = &db.store;
    store
        .book_appointment(&appointment(
            "APT002",
            "MRN002",
            PROVIDER_NPI,
            "2099-12-06",
            "11:00 AM",
        ))
        .await
        .unwrap();
    store
        .insert_medication(&Medication {
            medication_id: record_id("MED002"),
            patient_mrn: mrn("MRN002"),
            name: "Warfarin".into(),
            dosage: Some("5mg".into()),
            frequency: Some("Once daily".into()),
            route: Some("Oral".into()),
            prescribed_date: Some(Date::parse("prescribed_date", "2024-02-01").unwrap()),
            prescriber: Some("Dr. Sarah Smith".into()),
            status: MedicationStatus::Discontinued,
            refills_remaining: 0,
            notes: None,
        })
        .await
        .unwrap();
    store
        .insert_vital_signs(&VitalSigns {
            vital_id: record_id("VIT002"),
            patient_mrn: mrn("MRN002"),
            recorded_date: Timestamp::parse("recorded_date", "2024-06-01T09:00:00").unwrap(),
            systolic_bp: None,
            diastolic_bp: None,
            heart_rate: Some(64),
            temperature: None,
            respiratory_rate: None,
            oxygen_saturation: None,
            weight: None,
            height: None,
            bmi: None,
            recorded_by: None,
            notes: None,
        })
        .await
        .unwrap();
    store
        .insert_lab_result(&LabResult {
            order_id: record_id("LAB002"),
            patient_mrn: mrn("MRN002"),
            test_name: "Lipid panel".into(),
            ordered_date: Some(DateOrTimestamp::parse("ordered_date", "2024-06-01").unwrap()),
            collected_date: Some(DateOrTimestamp::parse("collected_date", "2024-06-02").unwrap()),
            resulted_date: Some(DateOrTimestamp::parse("resulted_date", "2024-06-03").unwrap()),
            status: LabStatus::Final,
            ordered_by: Some("Dr. Sarah Smith".into()),
            results_json: Some(
                r#"[{"component": "LDL", "value": "160", "unit": "mg/dL", "reference": "<100", "flag": "high"}]"#
                    .into(),
            ),
        })
        .await
        .unwrap();
}

async fn fhir_app() -> McpApp {
    let mcp = spawn_mcp_app(&[]).await;
    add_other_patient_records(&mcp.app.db).await;
    mcp
}

#[tokio::test]
async fn metadata_states_exactly_what_is_served_and_smart_configuration_names_the_endpoints() {
    let mcp = spawn_mcp_app(&[]).await;
    let (status, content_type, statement) = get(&mcp, None, "metadata").await;
    assert_eq!(status, StatusCode::OK);
    assert!(content_type.starts_with("application/fhir+json"));
    assert_eq!(statement["resourceType"], "CapabilityStatement");
    assert_eq!(statement["fhirVersion"], "4.0.1");
    let resources = statement["rest"][0]["resource"].as_array().unwrap();
    let served: BTreeSet<&str> = resources
        .iter()
        .map(|r| r["type"].as_str().unwrap())
        .collect();
    let expected: BTreeSet<&str> = [
        "Patient",
        "Coverage",
        "Practitioner",
        "Appointment",
        "MedicationRequest",
        "AllergyIntolerance",
        "Observation",
        "DiagnosticReport",
        "AuditEvent",
    ]
    .into();
    assert_eq!(served, expected);
    let params = |kind: &str| -> Vec<String> {
        let resource = resources.iter().find(|r| r["type"] == kind).unwrap();
        resource["searchParam"]
            .as_array()
            .map(|params| {
                params
                    .iter()
                    .map(|p| p["name"].as_str().unwrap().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(
        params("Patient"),
        ["identifier", "name", "family", "given", "birthdate"]
    );
    assert_eq!(
        params("Observation"),
        ["patient", "category", "code", "date"]
    );
    assert_eq!(
        params("Appointment"),
        ["patient", "practitioner", "date", "status"]
    );
    assert!(params("Coverage").is_empty());
    assert_eq!(
        params("AuditEvent"),
        ["patient", "date", "agent", "subtype", "outcome"]
    );
    let patient = resources.iter().find(|r| r["type"] == "Patient").unwrap();
    assert_eq!(patient["operation"][0]["name"], "everything");
    let security = &statement["rest"][0]["security"];
    assert_eq!(security["service"][0]["coding"][0]["code"], "SMART-on-FHIR");
    let oauth_uris = &security["extension"][0]["extension"];
    assert!(
        oauth_uris
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["url"] == "token" && u["valueUri"] == mcp.app.url("/oauth/token")),
        "{oauth_uris}"
    );

    for path in [
        "/.well-known/smart-configuration",
        "/fhir/r4/.well-known/smart-configuration",
    ] {
        let response = reqwest::get(mcp.app.url(path)).await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let smart: Value = response.json().await.unwrap();
        assert_eq!(smart["token_endpoint"], mcp.app.url("/oauth/token"));
        assert_eq!(smart["code_challenge_methods_supported"], json!(["S256"]));
        for field in ["grant_types_supported", "capabilities", "scopes_supported"] {
            assert!(smart[field].is_array(), "{field}: {smart}");
        }
        let capabilities = smart["capabilities"].as_array().unwrap();
        for capability in [
            "permission-v1",
            "permission-v2",
            "client-confidential-symmetric",
        ] {
            assert!(capabilities.contains(&json!(capability)), "{smart}");
        }
        assert!(
            smart["scopes_supported"]
                .as_array()
                .unwrap()
                .contains(&json!("patient/*.rs"))
        );
    }
    mcp.shutdown().await;
}

#[tokio::test]
async fn a_clinician_reads_and_searches_every_resource_type_with_paging() {
    let mcp = fhir_app().await;
    let token = mcp.token("copilot-studio").await;
    let patient = ok(&mcp, &token, "Patient/MRN001").await;
    assert_eq!(patient["resourceType"], "Patient");
    assert_eq!(patient["identifier"][0]["value"], "MRN001");
    assert!(
        patient["meta"]["lastUpdated"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    let practitioner = ok(&mcp, &token, &format!("Practitioner/{PROVIDER_NPI}")).await;
    assert!(practitioner["meta"]["lastUpdated"].is_string());
    assert_eq!(
        ok(&mcp, &token, "Appointment/APT001").await["status"],
        "booked"
    );
    assert_eq!(
        ok(&mcp, &token, "MedicationRequest/MED001").await["status"],
        "active"
    );
    assert_eq!(
        ok(&mcp, &token, "AllergyIntolerance/ALG001").await["criticality"],
        "high"
    );
    assert_eq!(
        ok(&mcp, &token, "Observation/VIT001-hr").await["valueQuantity"]["value"],
        72.0
    );
    assert_eq!(
        ok(&mcp, &token, "Observation/LAB001-1").await["code"]["text"],
        "WBC"
    );
    assert_eq!(
        ok(&mcp, &token, "DiagnosticReport/LAB001").await["result"][0]["reference"],
        "Observation/LAB001-1"
    );
    assert!(
        ok(&mcp, &token, "Coverage/MRN001-coverage").await["beneficiary"]["reference"]
            == "Patient/MRN001"
    );

    let searches: &[(&str, &[&str])] = &[
        (
            "Patient?identifier=urn:ehr-mcp:mrn|MRN002",
            &["Patient/MRN002"],
        ),
        ("Patient?family=DO", &["Patient/MRN001"]),
        (
            "Patient?given=mar&birthdate=1990-03-22",
            &["Patient/MRN002"],
        ),
        (
            "Patient?birthdate=ge1986&birthdate=lt1991",
            &["Patient/MRN002"],
        ),
        ("Patient?name=ma", &["Patient/MRN002"]),
        ("Practitioner?name=omar", &["Practitioner/2345678901"]),
        (
            "Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|1234567890",
            &["Practitioner/1234567890"],
        ),
        (
            "Observation?patient=MRN001&category=vital-signs&code=http://loinc.org|8867-4",
            &["Observation/VIT001-hr"],
        ),
        (
            "Observation?patient=Patient/MRN001&category=laboratory",
            &["Observation/LAB001-1"],
        ),
        (
            "Observation?patient=MRN002&date=2024-06",
            &["Observation/VIT002-hr", "Observation/LAB002-1"],
        ),
        (
            "Observation?patient=MRN002&date=lt2024-06-02",
            &["Observation/VIT002-hr"],
        ),
        (
            "Observation?patient=MRN002&code=ldl",
            &["Observation/LAB002-1"],
        ),
        (
            "DiagnosticReport?patient=MRN002",
            &["DiagnosticReport/LAB002"],
        ),
        (
            "MedicationRequest?patient=MRN001&status=active",
            &["MedicationRequest/MED001"],
        ),
        ("MedicationRequest?patient=MRN002&status=active", &[]),
        (
            "MedicationRequest?patient=MRN002&status=stopped",
            &["MedicationRequest/MED002"],
        ),
        (
            "AllergyIntolerance?patient=MRN002",
            &["AllergyIntolerance/ALG002"],
        ),
        ("Appointment?patient=MRN001", &["Appointment/APT001"]),
        (
            "Appointment?practitioner=Practitioner/1234567890&date=ge2099-12-01&status=booked",
            &["Appointment/APT001", "Appointment/APT002"],
        ),
        (
            "Appointment?practitioner=1234567890&date=2099-12-06",
            &["Appointment/APT002"],
        ),
        ("Appointment?patient=MRN001&status=cancelled", &[]),
    ];
    for (query, expected) in searches {
        let bundle = ok(&mcp, &token, query).await;
        assert_eq!(bundle["type"], "searchset", "{query}");
        assert_eq!(bundle["total"], expected.len(), "{query}: {bundle}");
        assert_eq!(ids(&bundle), *expected, "{query}");
    }
    let vitals = ok(
        &mcp,
        &token,
        "Observation?patient=MRN001&category=vital-signs",
    )
    .await;
    assert_eq!(
        vitals["total"], 8,
        "every measurement of VIT001 is an Observation"
    );

    // Paging: one per page, `next` links until the last page; the pages together are the whole set.
    let mut url = mcp.app.url("/fhir/r4/Observation?patient=MRN001&_count=3");
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let page = ok(&mcp, &token, &url).await;
        assert_eq!(page["total"], 9);
        seen.extend(ids(&page));
        pages += 1;
        match next_link(&page) {
            Some(next) => {
                assert!(
                    next.starts_with(&mcp.app.url("/fhir/r4/Observation?")),
                    "{next}"
                );
                url = next;
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.iter().collect::<BTreeSet<_>>().len(), 9);
    let total_only = ok(&mcp, &token, "Patient?_count=0&_totalMethod=count").await;
    assert_eq!(total_only["total"], 2);
    assert!(total_only.get("entry").is_none() && next_link(&total_only).is_none());

    let everything = ok(&mcp, &token, "Patient/MRN001/$everything?_count=100").await;
    let types: BTreeSet<String> = entries(&everything)
        .iter()
        .map(|r| r["resourceType"].as_str().unwrap().to_owned())
        .collect();
    for kind in [
        "Patient",
        "Coverage",
        "Appointment",
        "MedicationRequest",
        "AllergyIntolerance",
        "Observation",
        "DiagnosticReport",
    ] {
        assert!(
            types.contains(kind),
            "{kind} missing from $everything: {types:?}"
        );
    }
    assert!(
        !everything.to_string().contains("MRN002"),
        "$everything of MRN001 holds only MRN001's records"
    );
    mcp.shutdown().await;
}

#[tokio::test]
async fn errors_are_operation_outcomes_with_the_right_status() {
    let mcp = fhir_app().await;
    let token = mcp.token("copilot-studio").await;
    let (status, _, body) = get(&mcp, None, "Patient/MRN001").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["resourceType"], "OperationOutcome");
    let response = reqwest::get(mcp.app.url("/fhir/r4/Patient/MRN001"))
        .await
        .unwrap();
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    let (status, _, body) = get(&mcp, Some("not-a-token"), "Patient/MRN001").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let cases: &[(&str, StatusCode, &str)] = &[
        ("Patient/MRN999", StatusCode::NOT_FOUND, "not-found"),
        ("Observation/VIT001-xx", StatusCode::NOT_FOUND, "not-found"),
        ("Observation/LAB001-7", StatusCode::NOT_FOUND, "not-found"),
        ("Coverage/MRN001", StatusCode::NOT_FOUND, "not-found"),
        ("Basic/1", StatusCode::NOT_FOUND, "not-found"),
        ("Patient/MRN001/$meta", StatusCode::NOT_FOUND, "not-found"),
        ("Patient?ssn=123", StatusCode::BAD_REQUEST, "invalid"),
        (
            "Patient?birthdate=yesterday",
            StatusCode::BAD_REQUEST,
            "invalid",
        ),
        ("Patient?_count=1000", StatusCode::BAD_REQUEST, "invalid"),
        (
            "Observation?category=vital-signs",
            StatusCode::BAD_REQUEST,
            "invalid",
        ),
        (
            "Appointment?status=booked",
            StatusCode::BAD_REQUEST,
            "invalid",
        ),
        (
            "Coverage?patient=MRN001",
            StatusCode::BAD_REQUEST,
            "invalid",
        ),
    ];
    for (path, expected_status, code) in cases {
        let (status, content_type, body) = get(&mcp, Some(&token), path).await;
        assert_eq!(status, *expected_status, "{path}: {body}");
        assert!(content_type.starts_with("application/fhir+json"), "{path}");
        assert_eq!(body["resourceType"], "OperationOutcome", "{path}");
        assert_eq!(body["issue"][0]["code"], *code, "{path}: {body}");
        assert!(body["issue"][0]["diagnostics"].is_string(), "{path}");
    }
    let posted = reqwest::Client::new()
        .post(mcp.app.url("/fhir/r4/Patient"))
        .bearer_auth(&token)
        .json(&json!({"resourceType": "Patient"}))
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), StatusCode::METHOD_NOT_ALLOWED);
    let body: Value = posted.json().await.unwrap();
    assert_eq!(body["resourceType"], "OperationOutcome");
    mcp.shutdown().await;
}

/// An audit row as (action, patient, outcome, detail, transport).
type AuditSummary = (String, Option<String>, String, Option<String>, String);

#[tokio::test]
async fn every_read_writes_one_audit_row_as_the_tools_do() {
    let mcp = fhir_app().await;
    let token = mcp.token("nurse-station").await;
    let before = mcp.app.db.store.count_audit_rows().await.unwrap();
    ok(&mcp, &token, "MedicationRequest/MED002").await;
    ok(
        &mcp,
        &token,
        "Observation?patient=MRN001&category=vital-signs",
    )
    .await;
    let (status, _, _) = get(&mcp, Some(&token), "DiagnosticReport?patient=MRN001").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "the nurse has no read:labs");
    let (status, _, _) = get(&mcp, None, "Patient/MRN001").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let after = mcp.app.db.store.count_audit_rows().await.unwrap();
    assert_eq!(after - before, 4, "one row per request, refusals included");
    let rows = mcp
        .app
        .db
        .store
        .query_audit(&AuditFilter {
            limit: 4,
            ..Default::default()
        })
        .await
        .unwrap();
    let summary: Vec<AuditSummary> = rows
        .iter()
        .rev()
        .map(|row| {
            (
                row.action.clone(),
                row.patient_mrn.clone(),
                row.outcome.clone(),
                row.detail.clone(),
                row.transport.clone(),
            )
        })
        .collect();
    let row = |action: &str, mrn: Option<&str>, outcome: &str, detail: Option<&str>| {
        (
            action.to_owned(),
            mrn.map(str::to_owned),
            outcome.to_owned(),
            detail.map(str::to_owned),
            "http".to_owned(),
        )
    };
    assert_eq!(
        summary,
        vec![
            row(
                "fhir_read",
                Some("MRN002"),
                "success",
                Some("read MedicationRequest")
            ),
            row(
                "fhir_search",
                Some("MRN001"),
                "success",
                Some("search Observation")
            ),
            row("fhir_search", Some("MRN001"), "denied", Some("forbidden")),
            // An unauthenticated refusal: the first of its kind in a window is written at once,
            // aggregated (issue #9: `reason; peer=…; count=N`).
            row(
                "fhir_read",
                None,
                "denied",
                Some("unauthenticated; peer=127.0.0.1; count=1")
            ),
        ]
    );
    assert_eq!(rows[1].client_id.as_deref(), Some("nurse-station"));
    mcp.shutdown().await;
}

/// Every page of a search from `start`, following `next` links: the Bundles.
async fn pages(app: &McpApp, token: &str, start: &str) -> Vec<Value> {
    let mut bundles = Vec::new();
    let mut url = app.app.url(&format!("/fhir/r4/{start}"));
    loop {
        let bundle = ok(app, token, &url).await;
        let next = next_link(&bundle);
        bundles.push(bundle);
        match next {
            Some(next) => url = next,
            None => return bundles,
        }
    }
}

#[tokio::test]
async fn an_admin_reads_and_searches_audit_events_and_every_other_client_is_refused() {
    let mcp = fhir_app().await;
    let doctor = mcp.token("copilot-studio").await;
    let admin = mcp.token("admin-console").await;
    // Three calls about MRN001 (two reads, a search) and one about MRN002, by the doctor.
    ok(&mcp, &doctor, "Patient/MRN001").await;
    ok(&mcp, &doctor, "AllergyIntolerance?patient=MRN001").await;
    ok(&mcp, &doctor, "Patient/MRN001").await;
    ok(&mcp, &doctor, "Patient/MRN002").await;

    // Every other demo client is refused, read and search, with an OperationOutcome.
    for (client_id, _) in MATRIX.iter().filter(|(id, _)| *id != "admin-console") {
        let token = mcp.token(client_id).await;
        for path in ["AuditEvent?_count=1", "AuditEvent/audit-1"] {
            let (status, _, body) = get(&mcp, Some(&token), path).await;
            assert_eq!(
                status,
                StatusCode::FORBIDDEN,
                "{client_id} × {path}: {body}"
            );
            assert_eq!(body["resourceType"], "OperationOutcome", "{body}");
            assert_eq!(body["issue"][0]["code"], "forbidden", "{body}");
        }
    }
    let (status, _, _) = get(&mcp, None, "AuditEvent?_count=1").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // The admin still reads no clinical data through FHIR.
    let (status, _, _) = get(&mcp, Some(&admin), "Patient/MRN001").await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // The admin pages through MRN001's rows, two at a time.
    let bundles = pages(&mcp, &admin, "AuditEvent?patient=MRN001&_count=2").await;
    assert_eq!(bundles.len(), 2, "3 rows, 2 per page");
    let events: Vec<Value> = bundles.iter().flat_map(entries).collect();
    for bundle in &bundles {
        assert_eq!(bundle["total"], 3, "{bundle}");
    }
    let ids: BTreeSet<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 3, "no row twice across pages: {ids:?}");
    let actions: Vec<&str> = events
        .iter()
        .map(|e| e["subtype"][0]["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["fhir_read", "fhir_search", "fhir_read"],
        "oldest first"
    );
    for event in &events {
        assert_eq!(event["resourceType"], "AuditEvent");
        assert_eq!(event["action"], "R");
        assert_eq!(event["outcome"], "0");
        assert_eq!(event["type"]["code"], "rest");
        assert_eq!(event["entity"][0]["what"]["reference"], "Patient/MRN001");
        assert_eq!(
            event["agent"][0]["who"]["identifier"]["value"],
            "copilot-studio"
        );
        assert_eq!(event["agent"][0]["role"][0]["text"], "doctor");
        assert_eq!(event["source"]["site"], "ehr-mcp (http)");
        assert!(
            event["recorded"].as_str().unwrap().ends_with('Z'),
            "{event}"
        );
        assert_eq!(event["meta"]["lastUpdated"], event["recorded"]);
        assert!(!event.to_string().contains("MRN002"), "{event}");
    }
    // A read by id gives the same resource.
    let first = &events[0];
    let read = ok(
        &mcp,
        &admin,
        &format!("AuditEvent/{}", first["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(&read, first);

    // Filters: the tool, the client, the outcome, the date.
    let reads = ok(&mcp, &admin, "AuditEvent?patient=MRN001&subtype=fhir_read").await;
    assert_eq!(reads["total"], 2, "{reads}");
    let by_doctor = ok(
        &mcp,
        &admin,
        "AuditEvent?agent=copilot-studio&subtype=fhir_read&outcome=0",
    )
    .await;
    assert_eq!(by_doctor["total"], 3, "{by_doctor}");
    let denied = ok(&mcp, &admin, "AuditEvent?agent=copilot-studio&outcome=4").await;
    assert_eq!(
        denied["total"], 2,
        "the doctor's two refused AuditEvent requests: {denied}"
    );
    for event in entries(&denied) {
        assert_eq!(event["outcome"], "4");
        assert_eq!(event["outcomeDesc"], "forbidden");
    }
    let today = chrono::Utc::now().date_naive();
    let tomorrow = today.succ_opt().unwrap();
    let dated = ok(
        &mcp,
        &admin,
        &format!("AuditEvent?patient=MRN001&date=ge{today}&date=lt{tomorrow}"),
    )
    .await;
    assert_eq!(dated["total"], 3, "{dated}");
    let long_ago = ok(&mcp, &admin, "AuditEvent?date=lt2000-01-01").await;
    assert_eq!(long_ago["total"], 0);
    let tokens = ok(&mcp, &admin, "AuditEvent?subtype=token.issue&_count=1").await;
    assert!(tokens["total"].as_u64().unwrap() >= 7, "{tokens}");
    let token_event = &entries(&tokens)[0];
    assert_eq!(token_event["type"]["code"], "110114", "{token_event}");
    assert_eq!(token_event["action"], "E");

    // Bad values and unknown ids.
    for (path, status) in [
        ("AuditEvent?outcome=3", StatusCode::BAD_REQUEST),
        ("AuditEvent?entity=x", StatusCode::BAD_REQUEST),
        ("AuditEvent/audit-99999999", StatusCode::NOT_FOUND),
        ("AuditEvent/MRN001", StatusCode::NOT_FOUND),
    ] {
        let (got, _, body) = get(&mcp, Some(&admin), path).await;
        assert_eq!(got, status, "{path}: {body}");
        assert_eq!(body["resourceType"], "OperationOutcome");
    }

    // The admin's reads went through the same audit: rows by admin-console, naming no patient.
    let rows = mcp
        .app
        .db
        .store
        .query_audit(&AuditFilter {
            client_id: Some("admin-console".into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        rows.iter().any(|row| row.action == "fhir_search"
            && row.detail.as_deref() == Some("search AuditEvent")
            && row.outcome == "success"
            && row.patient_mrn.is_none()),
        "{rows:?}"
    );
    assert!(
        rows.iter().any(
            |row| row.action == "fhir_read" && row.detail.as_deref() == Some("read AuditEvent")
        ),
        "{rows:?}"
    );

    // The MCP tools: the admin gets the Bundle, the doctor a forbidden tool error.
    let mut client = WsClient::connect(&mcp.app, "/ws", Some(&admin)).await;
    let search = client
        .call_tool(
            "fhir_search",
            json!({"resource_type": "AuditEvent", "params": {"patient": "MRN001", "_count": 1}}),
        )
        .await;
    assert_ne!(search["isError"], true, "{search}");
    assert_eq!(search["structuredContent"]["total"], 3, "{search}");
    assert!(
        next_link(&search["structuredContent"])
            .unwrap()
            .starts_with("AuditEvent?")
    );
    client.close().await;
    let mut client = WsClient::connect(&mcp.app, "/ws", Some(&doctor)).await;
    let refused = client
        .call_tool(
            "fhir_read",
            json!({"resource_type": "AuditEvent", "id": "audit-1"}),
        )
        .await;
    assert_eq!(refused["isError"], true, "{refused}");
    client.close().await;

    // Valid FHIR R4: the events, the Bundles and a token AuditEvent.
    let mut resources = events.clone();
    resources.extend(bundles);
    resources.push(token_event.clone());
    resources.extend(entries(&denied));
    let report = validate(&resources);
    assert_eq!(report["errors"], 0);
    assert!(
        report["by_type"]["AuditEvent"].as_u64().unwrap() >= 6,
        "{report}"
    );
    mcp.shutdown().await;
}

#[tokio::test]
async fn the_fhir_tools_return_fhir_json_in_structured_content() {
    let mcp = fhir_app().await;
    let token = mcp.token("copilot-studio").await;
    let mut client = WsClient::connect(&mcp.app, "/ws", Some(&token)).await;
    let read = client
        .call_tool(
            "fhir_read",
            json!({"resource_type": "Patient", "id": "MRN002"}),
        )
        .await;
    assert_ne!(read["isError"], true, "{read}");
    assert_eq!(read["structuredContent"]["resourceType"], "Patient");
    assert_eq!(read["structuredContent"]["id"], "MRN002");
    let search = client
        .call_tool(
            "fhir_search",
            json!({"resource_type": "Observation",
                   "params": {"patient": "MRN001", "category": "vital-signs", "_count": "5"}}),
        )
        .await;
    let bundle = &search["structuredContent"];
    assert_eq!(bundle["resourceType"], "Bundle", "{search}");
    assert_eq!(bundle["total"], 8);
    assert_eq!(entries(bundle).len(), 5);
    let next = next_link(bundle).unwrap();
    assert!(
        next.starts_with("Observation?") && next.contains("_offset=5"),
        "{next}"
    );
    let everything = client
        .call_tool(
            "fhir_search",
            json!({"resource_type": "Patient", "operation": "$everything", "id": "MRN002",
                   "params": {"_count": 100}}),
        )
        .await;
    assert_eq!(
        everything["structuredContent"]["resourceType"], "Bundle",
        "{everything}"
    );
    assert!(ids(&everything["structuredContent"]).contains(&"MedicationRequest/MED002".to_owned()));
    let refused = client
        .call_tool(
            "fhir_search",
            json!({"resource_type": "Patient", "params": {"ssn": "1"}}),
        )
        .await;
    assert_eq!(refused["isError"], true);
    client.close().await;
    mcp.shutdown().await;
}

/// What each demo client may read, by kind, written from PRODUCT §4 and the demo clients' scopes (not
/// from the policy code): P patient, R practitioner, A appointment, M medication, L allergy, V vital
/// signs, B lab results. `own` is the patient client's: those kinds, for MRN001 only.
const MATRIX: &[(&str, &str)] = &[
    ("copilot-studio", "PRAMLVB"),
    ("hospital-ehr-app", "PRAMLVB"),
    ("patient-portal", "own:PRAMLVB"),
    ("lab-integration", "PB"),
    ("pharmacy-system", "PM"),
    ("nurse-station", "PAMLV"),
    ("admin-console", ""),
];

/// One probe: the kind, a read and a search about `mrn`.
fn probes(mrn: &str) -> Vec<(char, String, String)> {
    let n = if mrn == "MRN001" { "1" } else { "2" };
    vec![
        (
            'P',
            format!("Patient/{mrn}"),
            format!("Patient?identifier={mrn}"),
        ),
        (
            'P',
            format!("Coverage/{mrn}-coverage"),
            format!("Patient/{mrn}/$everything"),
        ),
        (
            'R',
            format!("Practitioner/{PROVIDER_NPI}"),
            "Practitioner?name=sarah".into(),
        ),
        (
            'A',
            format!("Appointment/APT00{n}"),
            format!("Appointment?patient={mrn}"),
        ),
        (
            'M',
            format!("MedicationRequest/MED00{n}"),
            format!("MedicationRequest?patient={mrn}"),
        ),
        (
            'L',
            format!("AllergyIntolerance/ALG00{n}"),
            format!("AllergyIntolerance?patient={mrn}"),
        ),
        (
            'V',
            format!("Observation/VIT00{n}-hr"),
            format!("Observation?patient={mrn}&category=vital-signs"),
        ),
        (
            'B',
            format!("Observation/LAB00{n}-1"),
            format!("Observation?patient={mrn}&category=laboratory"),
        ),
        (
            'B',
            format!("DiagnosticReport/LAB00{n}"),
            format!("DiagnosticReport?patient={mrn}"),
        ),
    ]
}

fn kind_of_resource(resource: &Value) -> char {
    match resource["resourceType"].as_str().unwrap() {
        "Patient" | "Coverage" => 'P',
        "Practitioner" => 'R',
        "Appointment" => 'A',
        "MedicationRequest" => 'M',
        "AllergyIntolerance" => 'L',
        "DiagnosticReport" => 'B',
        "Observation" if resource["category"][0]["coding"][0]["code"] == "vital-signs" => 'V',
        "Observation" => 'B',
        other => panic!("unexpected {other}"),
    }
}

#[tokio::test]
async fn every_demo_client_reads_only_what_its_scopes_allow_and_the_patient_only_its_own_compartment()
 {
    let mcp = fhir_app().await;
    for (client_id, allowed) in MATRIX {
        let token = mcp.token(client_id).await;
        let (own_only, kinds) = match allowed.strip_prefix("own:") {
            Some(kinds) => (true, kinds),
            None => (false, *allowed),
        };
        for target in ["MRN001", "MRN002"] {
            for (kind, read, search) in probes(target) {
                let directory = kind == 'R';
                let expected =
                    kinds.contains(kind) && (!own_only || directory || target == "MRN001");
                for path in [&read, &search] {
                    let label = format!("{client_id} × {path}");
                    let (status, _, body) = get(&mcp, Some(&token), path).await;
                    if !expected {
                        assert_eq!(status, StatusCode::FORBIDDEN, "{label}: {body}");
                        assert_eq!(body["resourceType"], "OperationOutcome", "{label}");
                        continue;
                    }
                    assert_eq!(status, StatusCode::OK, "{label}: {body}");
                    let resources = if body["resourceType"] == "Bundle" {
                        entries(&body)
                    } else {
                        vec![body.clone()]
                    };
                    assert!(!resources.is_empty(), "{label}: nothing returned");
                    for resource in &resources {
                        let got = kind_of_resource(resource);
                        assert!(kinds.contains(got), "{label}: {got} is not allowed");
                    }
                    if own_only || !directory {
                        let text = body.to_string();
                        let other = if target == "MRN001" {
                            "MRN002"
                        } else {
                            "MRN001"
                        };
                        assert!(!text.contains(other), "{label}: another patient's data");
                    }
                }
            }
        }
        // Searches that name no patient: the patient client sees its own compartment, others theirs.
        if own_only {
            for path in [
                "Patient",
                "AllergyIntolerance",
                "Observation",
                "Appointment",
            ] {
                let body = ok(&mcp, &token, path).await;
                assert!(body["total"].as_u64().unwrap() >= 1, "{path}");
                assert!(
                    !body.to_string().contains("MRN002"),
                    "{client_id} × {path}: {body}"
                );
            }
        }
    }
    mcp.shutdown().await;
}

#[tokio::test]
async fn smart_scoped_tokens_reach_what_their_scopes_name() {
    let mcp = fhir_app().await;
    let token_with = |client_id: &'static str, scope: &'static str| {
        let mcp = &mcp;
        async move {
            let client = mcp.client(client_id);
            let response = reqwest::Client::new()
                .post(mcp.app.url("/oauth/token"))
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", client_id),
                    ("client_secret", client["client_secret"].as_str().unwrap()),
                    ("scope", scope),
                ])
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "{client_id} {scope}");
            let body: Value = response.json().await.unwrap();
            body["access_token"].as_str().unwrap().to_owned()
        }
    };
    // user/Observation.rs: observations of both categories, nothing else.
    let observations = token_with("copilot-studio", "user/Observation.rs").await;
    ok(&mcp, &observations, "Observation/VIT002-hr").await;
    ok(&mcp, &observations, "Observation?patient=MRN002").await;
    let (status, _, _) = get(&mcp, Some(&observations), "Patient/MRN002").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // system/*.read: whatever of the clinical reads the client holds (the lab system: patients, labs).
    let system = token_with("lab-integration", "system/*.read").await;
    ok(&mcp, &system, "DiagnosticReport?patient=MRN002").await;
    let only_labs = ok(&mcp, &system, "Observation?patient=MRN002").await;
    assert_eq!(ids(&only_labs), ["Observation/LAB002-1"]);
    let (status, _, _) = get(&mcp, Some(&system), "MedicationRequest?patient=MRN002").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // patient/*.rs: the patient's own compartment.
    let patient = token_with("patient-portal", "patient/*.rs").await;
    ok(&mcp, &patient, "Patient/MRN001/$everything").await;
    let (status, _, _) = get(&mcp, Some(&patient), "Patient/MRN002/$everything").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    mcp.shutdown().await;
}

/// Every resource the API serves over the seed export (each Practitioner and Patient through paged
/// searches, each patient's `$everything`, the CapabilityStatement, the Bundles themselves and an
/// OperationOutcome) passes the official R4 JSON schema and the `fhir.resources` models.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_resource_served_over_the_seed_export_is_valid_fhir_r4() {
    let mcp = spawn_on_seed_export(TestDb::for_app().await).await;
    let token = mcp.token("copilot-studio").await;
    let mut served = Vec::new();
    let mut patients = Vec::new();
    for start in ["Practitioner?_count=100", "Patient?_count=100"] {
        let mut url = mcp.app.url(&format!("/fhir/r4/{start}"));
        loop {
            let bundle = ok(&mcp, &token, &url).await;
            for resource in entries(&bundle) {
                if resource["resourceType"] == "Patient" {
                    patients.push(resource["id"].as_str().unwrap().to_owned());
                }
            }
            let next = next_link(&bundle);
            served.push(bundle);
            match next {
                Some(next) => url = next,
                None => break,
            }
        }
    }
    assert!(patients.len() >= 200, "{}", patients.len());
    for mrn in &patients {
        served.push(
            ok(
                &mcp,
                &token,
                &format!("Patient/{mrn}/$everything?_count=100"),
            )
            .await,
        );
    }
    let (_, _, statement) = get(&mcp, None, "metadata").await;
    served.push(statement);
    let (_, _, outcome) = get(&mcp, Some(&token), "Patient/NOSUCH1").await;
    served.push(outcome);
    let mut resources: Vec<Value> = served.iter().flat_map(entries).collect();
    resources.extend(served);
    let report = validate(&resources);
    assert_eq!(report["errors"], 0);
    for kind in [
        "Bundle",
        "CapabilityStatement",
        "OperationOutcome",
        "Observation",
        "DiagnosticReport",
    ] {
        assert!(
            report["by_type"][kind].as_u64().unwrap_or(0) > 0,
            "no {kind}: {report}"
        );
    }
    mcp.shutdown().await;
}

/// The `fhirpy` client library reads and searches with a token, following `next` links
/// (`tests/clients/fhir_client_check.py`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fhirpy_client_reads_searches_and_follows_paging_links() {
    let mcp = fhir_app().await;
    let token = mcp.token("copilot-studio").await;
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clients");
    let output = tokio::process::Command::new(dir.join(".venv/bin/python"))
        .arg(dir.join("fhir_client_check.py"))
        .arg("--base")
        .arg(mcp.app.url("/fhir/r4"))
        .arg("--token")
        .arg(&token)
        .output()
        .await
        .expect("run the fhirpy check");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "fhirpy check failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap();
    assert_eq!(summary["patient"], "MRN001");
    assert_eq!(summary["vital_signs"], 8);
    assert_eq!(
        summary["pages_followed"], 4,
        "8 observations, 2 per page: 3 next links + the first"
    );
    assert_eq!(summary["count"], 2);
    mcp.shutdown().await;
}
