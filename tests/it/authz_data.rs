//! Authorization by the data a result carries: every tool called as every demo client, with the bound
//! patient's and another patient's identifiers. The kinds of data in each result (read from its keys,
//! independently of the server's declarations) must be within what the client's scopes allow; the patient
//! client never sees another patient's data; admin sees no clinical data; `tools/list` shows each known
//! caller exactly the tools it may call. On both engines, over WebSocket; the summary's sections are
//! also checked over `/mcp` and stdio.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::mcp_client::{WsClient, text_body};
use crate::mcp_support::{McpApp, PROVIDER_NPI, spawn_mcp_app_on};
use crate::store_fixtures::{appointment, mrn, record_id};
use crate::support::TestDb;

/// Kinds of data, as this test names them from result keys.
const KINDS: &[(&str, &[&str], &str, &str)] = &[
    // kind, top-level result keys, read scope, write scope
    (
        "demographics",
        &["patient", "patients"],
        "read:patients",
        "write:patients",
    ),
    (
        "appointments",
        &["appointment", "appointments", "upcoming_appointments"],
        "read:appointments",
        "write:appointments",
    ),
    (
        "medications",
        &["medication", "medications", "active_medications"],
        "read:medications",
        "write:medications",
    ),
    (
        "allergies",
        &["allergy", "allergies"],
        "read:allergies",
        "write:allergies",
    ),
    (
        "vitals",
        &["vital_signs", "latest_vital_signs"],
        "read:vitals",
        "write:vitals",
    ),
    (
        "labs",
        &["lab_result", "lab_results", "recent_lab_results"],
        "read:labs",
        "write:labs",
    ),
    (
        "providers",
        &["provider", "providers"],
        "read:providers",
        "-",
    ),
    ("audit", &["entries"], "read:audit", "-"),
    (
        "clients",
        &["client_secret"],
        "admin:clients",
        "admin:clients",
    ),
];

/// The kinds of data in a success result, by its top-level keys (null values carry nothing), or for a
/// FHIR answer by the resource types it holds.
fn kinds_in(body: &Value) -> BTreeSet<&'static str> {
    let mut kinds: BTreeSet<&'static str> = KINDS
        .iter()
        .filter(|(_, keys, _, _)| keys.iter().any(|key| !body[*key].is_null()))
        .map(|(kind, ..)| *kind)
        .collect();
    let mut resources = vec![body];
    if let Some(entries) = body["entry"].as_array() {
        resources.extend(entries.iter().map(|entry| &entry["resource"]));
    }
    for resource in resources {
        let kind = match resource["resourceType"].as_str() {
            Some("Patient" | "Coverage") => "demographics",
            Some("Practitioner") => "providers",
            Some("Appointment") => "appointments",
            Some("MedicationRequest") => "medications",
            Some("AllergyIntolerance") => "allergies",
            Some("Observation")
                if resource["category"][0]["coding"][0]["code"] == "vital-signs" =>
            {
                "vitals"
            }
            Some("Observation" | "DiagnosticReport") => "labs",
            Some("AuditEvent") => "audit",
            _ => continue,
        };
        kinds.insert(kind);
    }
    kinds
}

/// May a client with `scopes` (and `role`) receive `kind`? Its read scope, the write scope of a record it
/// wrote, or for a patient client `read:own_records` for clinical data and the provider directory.
fn allowed(kind: &str, role: &str, scopes: &str, wrote: bool) -> bool {
    let (_, _, read, write) = KINDS.iter().find(|(k, ..)| *k == kind).unwrap();
    let held: BTreeSet<&str> = scopes.split_whitespace().collect();
    held.contains(read)
        || (wrote && held.contains(write))
        || (role == "patient"
            && held.contains("read:own_records")
            && !matches!(kind, "audit" | "clients"))
}

const CLINICAL: &[&str] = &[
    "demographics",
    "appointments",
    "medications",
    "allergies",
    "vitals",
    "labs",
];

/// Every tool with arguments naming `target` (a patient) and records of that patient.
fn calls(target: &str, apt: &str, med: &str, round: usize) -> Vec<(&'static str, Value)> {
    let date = format!("2098-01-{:02}", round + 1);
    let time = if target == "MRN001" { "09:00" } else { "11:00" };
    vec![
        ("get_patient", json!({"mrn": target})),
        ("get_patient_summary", json!({"mrn": target})),
        (
            "search_patients",
            json!({"search_term": if target == "MRN001" { "Doe" } else { "Major" }}),
        ),
        ("search_patients", json!({"search_term": target})),
        ("get_appointments", json!({"mrn": target, "status": "all"})),
        ("get_medications", json!({"mrn": target, "status": "all"})),
        ("get_allergies", json!({"mrn": target, "status": "all"})),
        ("get_vital_signs", json!({"mrn": target})),
        ("get_lab_results", json!({"mrn": target})),
        ("search_providers", json!({})),
        ("get_provider", json!({"npi": PROVIDER_NPI})),
        (
            "fhir_read",
            json!({"resource_type": "Patient", "id": target}),
        ),
        (
            "fhir_search",
            json!({"resource_type": "Patient", "params": {"identifier": target}}),
        ),
        (
            "fhir_read",
            json!({"resource_type": "AuditEvent", "id": "audit-1"}),
        ),
        (
            "fhir_search",
            json!({"resource_type": "AuditEvent", "params": {"patient": target, "_count": 5}}),
        ),
        ("update_patient", json!({"mrn": target, "city": "Boston"})),
        (
            "schedule_appointment",
            json!({"mrn": target, "provider_npi": PROVIDER_NPI, "date": date, "time": time}),
        ),
        (
            "cancel_appointment",
            json!({"mrn": target, "appointment_id": apt}),
        ),
        (
            "cancel_appointment",
            json!({"mrn": "MRN001", "appointment_id": apt}),
        ),
        (
            "prescribe_medication",
            json!({"mrn": target, "medication_name": "Aspirin", "dosage": "81mg", "frequency": "Once daily"}),
        ),
        (
            "discontinue_medication",
            json!({"mrn": target, "medication_id": med}),
        ),
        (
            "discontinue_medication",
            json!({"mrn": "MRN001", "medication_id": med}),
        ),
        (
            "order_lab",
            json!({"mrn": target, "test_name": "Lipid panel"}),
        ),
        (
            "record_vital_signs",
            json!({"mrn": target, "heart_rate": 70}),
        ),
        (
            "add_allergy",
            json!({"mrn": target, "allergen": "Latex", "severity": "mild"}),
        ),
        (
            "create_patient",
            json!({"first_name": "Ada", "last_name": "Authz", "dob": "1970-01-02"}),
        ),
        ("query_audit_log", json!({"limit": 50})),
        (
            "register_client",
            json!({"app_id": "authz-probe", "app_name": "Probe", "role": "nurse", "scopes": ["read:patients"]}),
        ),
        ("validate_token", json!({})),
    ]
}

/// Records for one client's round: an appointment and a medication of the bound patient (MRN001,
/// ids `APTS…`, `MEDS…`) and of another patient (MRN002, `APTO…`, `MEDO…`) — to cancel and stop, and so
/// that a leak has something to show. Returns (own appointment, own medication, other's, other's).
async fn add_records(db: &TestDb, round: usize) -> [String; 4] {
    let ids = [
        format!("APTS{round}"),
        format!("MEDS{round}"),
        format!("APTO{round}"),
        format!("MEDO{round}"),
    ];
    for (patient, apt, med, hour) in [
        ("MRN001", &ids[0], &ids[1], "09:00"),
        ("MRN002", &ids[2], &ids[3], "10:00"),
    ] {
        let mut booked = appointment(
            apt,
            patient,
            PROVIDER_NPI,
            &format!("2097-03-{:02}", round + 1),
            hour,
        );
        booked.reason = Some(format!("{patient} private reason"));
        db.store.book_appointment(&booked).await.unwrap();
        db.store
            .insert_medication(&ehr_mcp::domain::clinical::Medication {
                medication_id: record_id(med),
                patient_mrn: mrn(patient),
                name: if patient == "MRN002" {
                    "Warfarin"
                } else {
                    "Lisinopril"
                }
                .into(),
                dosage: Some("5mg".into()),
                frequency: Some("Once daily".into()),
                route: Some("Oral".into()),
                prescribed_date: Some("2024-01-01".parse().unwrap()),
                prescriber: Some("Dr. Sarah Smith".into()),
                status: ehr_mcp::domain::clinical::MedicationStatus::Active,
                refills_remaining: 1,
                notes: None,
            })
            .await
            .unwrap();
    }
    ids
}

/// Marks of MRN002 (Mary Major) and her records that must never reach the patient client.
const OTHER_PATIENT: &[&str] = &[
    "MRN002", "Mary", "Major", "APTO", "MEDO", "ALG002", "Warfarin",
];

async fn every_tool_as_every_client(db: TestDb) {
    let mcp = spawn_mcp_app_on(db, &[]).await;
    let every_tool: BTreeSet<String> = ehr_mcp::tools::EhrServer::tool_names()
        .into_iter()
        .collect();
    for (round, client_id) in mcp.client_ids().into_iter().enumerate() {
        let [own_apt, own_med, other_apt, other_med] = add_records(&mcp.app.db, round).await;
        let entry = mcp.client(&client_id).clone();
        let role = entry["role"].as_str().unwrap().to_owned();
        let scopes = entry["scopes"].as_str().unwrap().to_owned();
        let token = mcp.token(&client_id).await;
        let mut client = WsClient::connect(&mcp.app, "/ws", Some(&token)).await;
        let listed = client.request("tools/list", json!({})).await;
        let listed: BTreeSet<String> = listed["result"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|tool| tool["name"].as_str().unwrap().to_owned())
            .collect();
        assert!(listed.is_subset(&every_tool));
        let mut called_ok = BTreeSet::new();
        for target in ["MRN001", "MRN002"] {
            for (tool, arguments) in calls(target, &other_apt, &other_med, round)
                .into_iter()
                .chain(calls(target, &own_apt, &own_med, round))
            {
                let label = format!("{client_id} × {tool} {arguments}");
                let result = client.call_tool(tool, arguments.clone()).await;
                let body = text_body(&result);
                let failed = result["isError"] == true;
                if !listed.contains(tool) {
                    assert!(failed, "{label}: not listed, yet answered {body}");
                    assert_eq!(body["code"], "forbidden", "{label}: {body}");
                }
                if role == "patient" {
                    let text = body.to_string();
                    for mark in OTHER_PATIENT {
                        assert!(
                            !text.contains(mark),
                            "{label}: the patient client saw {mark}: {text}"
                        );
                    }
                }
                if failed {
                    continue;
                }
                called_ok.insert(tool);
                let wrote = result_of_a_write(tool);
                for kind in kinds_in(&body) {
                    assert!(
                        allowed(kind, &role, &scopes, wrote),
                        "{label}: {kind} is beyond the scopes {scopes}: {body}"
                    );
                    if role == "admin" {
                        assert!(!CLINICAL.contains(&kind), "{label}: admin saw {kind}");
                    }
                }
            }
        }
        // Every listed tool is callable by this client (validate_token needs nothing).
        for tool in listed.iter().filter(|tool| *tool != "authenticate") {
            assert!(
                called_ok.contains(tool.as_str()),
                "{client_id}: {tool} is listed but never answered"
            );
        }
        client.close().await;
    }
    mcp.shutdown().await;
}

fn result_of_a_write(tool: &str) -> bool {
    !(tool.starts_with("get_")
        || tool.starts_with("search_")
        || tool.starts_with("fhir_")
        || tool == "query_audit_log")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_tool_as_every_demo_client_returns_only_data_its_scopes_allow() {
    for db in TestDb::all().await {
        every_tool_as_every_client(db).await;
    }
}

/// The summary's sections for the clients whose scopes cover part of it.
fn assert_summary_sections(client_id: &str, body: &Value) {
    let present: BTreeSet<&str> = [
        "patient",
        "active_medications",
        "allergies",
        "latest_vital_signs",
        "recent_lab_results",
        "upcoming_appointments",
    ]
    .into_iter()
    .filter(|section| body.get(*section).is_some())
    .collect();
    let withheld: BTreeSet<&str> = body["withheld"]
        .as_array()
        .unwrap_or_else(|| panic!("{client_id}: no withheld list: {body}"))
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    let expected: &[&str] = match client_id {
        "lab-integration" => &["patient", "recent_lab_results"],
        "pharmacy-system" => &["patient", "active_medications"],
        "nurse-station" => &[
            "patient",
            "active_medications",
            "allergies",
            "latest_vital_signs",
            "upcoming_appointments",
        ],
        other => panic!("no expectation for {other}"),
    };
    assert_eq!(
        present,
        expected.iter().copied().collect(),
        "{client_id}: {body}"
    );
    assert!(present.is_disjoint(&withheld), "{client_id}: {body}");
    assert_eq!(present.len() + withheld.len(), 6, "{client_id}: {body}");
}

const PARTIAL_CLIENTS: &[&str] = &["lab-integration", "pharmacy-system", "nurse-station"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_summary_withholds_what_the_scopes_do_not_cover_on_every_transport() {
    for db in TestDb::all().await {
        let mcp = spawn_mcp_app_on(db, &[]).await;
        for client_id in PARTIAL_CLIENTS {
            let token = mcp.token(client_id).await;
            // WebSocket, in-band authentication (the earlier client's way).
            let entry = mcp.client(client_id).clone();
            let mut ws = WsClient::connect(&mcp.app, "/", None).await;
            let auth = ws
                .call_tool(
                    "authenticate",
                    json!({"client_id": entry["client_id"], "client_secret": entry["client_secret"]}),
                )
                .await;
            assert_ne!(auth["isError"], true, "{auth}");
            let result = ws
                .call_tool("get_patient_summary", json!({"mrn": "MRN001"}))
                .await;
            assert_summary_sections(client_id, &text_body(&result));
            ws.close().await;
            // Streamable HTTP with a bearer token.
            let body = mcp_http_call(
                &mcp,
                &token,
                "get_patient_summary",
                json!({"mrn": "MRN001"}),
            )
            .await;
            assert_summary_sections(client_id, &body["result"]["structuredContent"]);
            let listed = mcp_http(&mcp, &token, "tools/list", json!({})).await;
            let listed = listed["result"]["tools"].to_string();
            assert!(listed.contains("\"get_patient_summary\""), "{listed}");
            assert!(!listed.contains("\"query_audit_log\""), "{listed}");
            if *client_id == "lab-integration" {
                assert!(!listed.contains("\"get_medications\""), "{listed}");
            }
            // stdio with the client's credentials.
            let (body, listed) = crate::authz_stdio::stdio_session(&mcp, client_id).await;
            assert_summary_sections(client_id, &body);
            // stdio knows its caller: tools/list shows only what it may call.
            assert!(
                listed.contains(&"get_patient_summary".to_owned()),
                "{listed:?}"
            );
            assert!(
                !listed.contains(&"register_client".to_owned()),
                "{listed:?}"
            );
            if *client_id == "lab-integration" {
                assert!(
                    !listed.contains(&"get_medications".to_owned()),
                    "{listed:?}"
                );
            }
        }
        // A client that may read none of the summary's kinds is refused.
        let admin = mcp.token("admin-console").await;
        let body = mcp_http_call(
            &mcp,
            &admin,
            "get_patient_summary",
            json!({"mrn": "MRN001"}),
        )
        .await;
        assert_eq!(body["result"]["isError"], true, "{body}");
        mcp.shutdown().await;
    }
}

async fn mcp_http_call(mcp: &McpApp, token: &str, tool: &str, arguments: Value) -> Value {
    mcp_http(
        mcp,
        token,
        "tools/call",
        json!({"name": tool, "arguments": arguments}),
    )
    .await
}

/// One stateless JSON-RPC request to `/mcp` with a bearer token.
async fn mcp_http(mcp: &McpApp, token: &str, method: &str, params: Value) -> Value {
    reqwest::Client::new()
        .post(mcp.mcp_url())
        .header("Accept", "application/json, text/event-stream")
        .header("MCP-Protocol-Version", "2025-06-18")
        .bearer_auth(token)
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}
