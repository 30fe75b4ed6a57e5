//! Tools end to end over WebSocket with the earlier system's flow (no `initialize`, `authenticate`, then
//! `access_token` in each call): results, authorization for every demo client, token failures, input
//! errors and double bookings.

use serde_json::{Value, json};

use crate::mcp_client::{WsClient, error_code, success};
use crate::mcp_support::{PROVIDER_NPI, spawn_mcp_app};

/// Sample arguments for every tool, on the fixture's patient MRN001.
fn sample_calls() -> Vec<(&'static str, Value)> {
    vec![
        ("get_patient", json!({"mrn": "MRN001"})),
        ("search_patients", json!({"search_term": "Doe"})),
        (
            "update_patient",
            json!({"mrn": "MRN001", "city": "Cambridge"}),
        ),
        (
            "create_patient",
            json!({"first_name": "Zed", "last_name": "Matrix", "dob": "1999-09-09"}),
        ),
        ("get_appointments", json!({"mrn": "MRN001"})),
        (
            "schedule_appointment",
            json!({"mrn": "MRN001", "provider_npi": PROVIDER_NPI, "date": "2098-01-05", "time": "9:15 AM"}),
        ),
        (
            "cancel_appointment",
            json!({"mrn": "MRN001", "appointment_id": "APT-NONE"}),
        ),
        ("search_providers", json!({"specialty": "Cardiology"})),
        ("get_provider", json!({"npi": PROVIDER_NPI})),
        ("get_medications", json!({"mrn": "MRN001"})),
        (
            "prescribe_medication",
            json!({"mrn": "MRN001", "medication_name": "Aspirin", "dosage": "81mg", "frequency": "Daily"}),
        ),
        (
            "discontinue_medication",
            json!({"mrn": "MRN001", "medication_id": "MED-NONE"}),
        ),
        ("get_lab_results", json!({"mrn": "MRN001"})),
        (
            "order_lab",
            json!({"mrn": "MRN001", "test_name": "Lipid panel"}),
        ),
        ("get_vital_signs", json!({"mrn": "MRN001"})),
        (
            "record_vital_signs",
            json!({"mrn": "MRN001", "heart_rate": 64}),
        ),
        ("get_allergies", json!({"mrn": "MRN001"})),
        (
            "add_allergy",
            json!({"mrn": "MRN001", "allergen": "Sulfa", "severity": "moderate"}),
        ),
        ("get_patient_summary", json!({"mrn": "MRN001"})),
        ("query_audit_log", json!({"limit": 5})),
        (
            "register_client",
            json!({"app_id": "x", "app_name": "X", "role": "nurse", "scopes": "read:patients"}),
        ),
    ]
}

async fn authenticated(mcp: &crate::mcp_support::McpApp, client_id: &str) -> (WsClient, String) {
    let credentials = mcp.client(client_id).clone();
    let mut client = WsClient::connect(&mcp.app, "/ws", None).await;
    let result = client
        .call_tool(
            "authenticate",
            json!({"client_id": client_id, "client_secret": credentials["client_secret"],
                   "app_id": credentials["app_id"]}),
        )
        .await;
    let body = success(&result);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["client_info"]["client_id"], client_id);
    let token = body["access_token"].as_str().unwrap().to_owned();
    (client, token)
}

#[tokio::test]
async fn the_earlier_systems_client_flow_works() {
    let mcp = spawn_mcp_app(&[]).await;
    let (mut client, token) = authenticated(&mcp, "copilot-studio").await;
    let calls = [
        (
            "search_patients",
            json!({"search_term": "John", "access_token": token}),
        ),
        (
            "get_patient",
            json!({"mrn": "MRN001", "access_token": token}),
        ),
        (
            "get_appointments",
            json!({"mrn": "MRN001", "access_token": token}),
        ),
        (
            "get_medications",
            json!({"mrn": "MRN001", "access_token": token}),
        ),
        (
            "get_vital_signs",
            json!({"mrn": "MRN001", "access_token": token}),
        ),
        (
            "get_lab_results",
            json!({"mrn": "MRN001", "access_token": token}),
        ),
        (
            "get_allergies",
            json!({"mrn": "MRN002", "access_token": token}),
        ),
    ];
    let mut bodies = Vec::new();
    for (tool, arguments) in calls {
        bodies.push(success(&client.call_tool(tool, arguments).await));
    }
    assert!(bodies[0]["count"].as_u64().unwrap() >= 1);
    assert_eq!(bodies[1]["patient"]["first_name"], "John");
    assert_eq!(bodies[2]["mrn"], "MRN001");
    assert_eq!(bodies[2]["appointments"][0]["time"], "10:00 AM");
    assert_eq!(bodies[3]["medications"][0]["name"], "Lisinopril");
    assert_eq!(bodies[4]["vital_signs"][0]["blood_pressure"], "128/82");
    assert_eq!(
        bodies[5]["lab_results"][0]["results"][0]["component"],
        "WBC"
    );
    assert_eq!(bodies[6]["allergies"][0]["allergen"], "Peanuts");
    // `authenticate` also authenticated the connection: no access_token needed now.
    success(
        &client
            .call_tool("get_patient", json!({"mrn": "MRN001"}))
            .await,
    );
    client.close().await;
    mcp.shutdown().await;
}

#[tokio::test]
async fn every_demo_client_gets_data_or_a_clean_refusal_for_every_tool() {
    let mcp = spawn_mcp_app(&[]).await;
    for client_id in mcp.client_ids() {
        let token = mcp.token(&client_id).await;
        let mut client = WsClient::connect(&mcp.app, "/ws", None).await;
        for (tool, mut arguments) in sample_calls() {
            arguments["access_token"] = json!(token);
            let result = client.call_tool(tool, arguments).await;
            if result["isError"] == true {
                let code = error_code(&result);
                assert!(
                    ["forbidden", "not_found", "conflict", "invalid_input"]
                        .contains(&code.as_str()),
                    "{client_id} × {tool}: unexpected {code}: {result}"
                );
            } else {
                success(&result);
            }
        }
        client.close().await;
    }
    mcp.shutdown().await;
}

#[tokio::test]
async fn roles_and_patient_binding_are_enforced() {
    let mcp = spawn_mcp_app(&[]).await;
    let cases = [
        (
            "patient-portal",
            "get_patient",
            json!({"mrn": "MRN001"}),
            None,
        ),
        (
            "patient-portal",
            "get_patient",
            json!({"mrn": "MRN002"}),
            Some("forbidden"),
        ),
        (
            "patient-portal",
            "get_allergies",
            json!({"mrn": "MRN002"}),
            Some("forbidden"),
        ),
        (
            "patient-portal",
            "get_patient_summary",
            json!({"mrn": "MRN002"}),
            Some("forbidden"),
        ),
        (
            "nurse-station",
            "get_vital_signs",
            json!({"mrn": "MRN001"}),
            None,
        ),
        (
            "nurse-station",
            "prescribe_medication",
            json!({"mrn": "MRN001", "medication_name": "X", "dosage": "1mg", "frequency": "daily"}),
            Some("forbidden"),
        ),
        (
            "lab-integration",
            "get_lab_results",
            json!({"mrn": "MRN001"}),
            None,
        ),
        (
            "lab-integration",
            "get_medications",
            json!({"mrn": "MRN001"}),
            Some("forbidden"),
        ),
        (
            "pharmacy-system",
            "get_medications",
            json!({"mrn": "MRN001"}),
            None,
        ),
        (
            "admin-console",
            "get_patient",
            json!({"mrn": "MRN001"}),
            Some("forbidden"),
        ),
        ("admin-console", "query_audit_log", json!({}), None),
        (
            "copilot-studio",
            "query_audit_log",
            json!({}),
            Some("forbidden"),
        ),
    ];
    for (client_id, tool, mut arguments, expected) in cases {
        arguments["access_token"] = json!(mcp.token(client_id).await);
        let mut client = WsClient::connect(&mcp.app, "/ws", None).await;
        let result = client.call_tool(tool, arguments).await;
        match expected {
            None => {
                success(&result);
            }
            Some(code) => assert_eq!(error_code(&result), code, "{client_id} × {tool}"),
        }
        client.close().await;
    }
    mcp.shutdown().await;
}

#[tokio::test]
async fn missing_garbage_and_revoked_tokens_are_unauthenticated() {
    let mcp = spawn_mcp_app(&[]).await;
    let mut client = WsClient::connect(&mcp.app, "/ws", None).await;
    let none = client
        .call_tool("get_patient", json!({"mrn": "MRN001"}))
        .await;
    assert_eq!(error_code(&none), "unauthenticated");
    let garbage = client
        .call_tool(
            "get_patient",
            json!({"mrn": "MRN001", "access_token": "eyJhbGciOiJub25lIn0.e30."}),
        )
        .await;
    assert_eq!(error_code(&garbage), "unauthenticated");

    let token = mcp.token("copilot-studio").await;
    success(
        &client
            .call_tool(
                "get_patient",
                json!({"mrn": "MRN001", "access_token": token}),
            )
            .await,
    );
    let doctor = mcp.client("copilot-studio").clone();
    let revoked = reqwest::Client::new()
        .post(mcp.app.url("/oauth/revoke"))
        .form(&[
            ("token", token.as_str()),
            ("client_id", doctor["client_id"].as_str().unwrap()),
            ("client_secret", doctor["client_secret"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    let after = client
        .call_tool(
            "get_patient",
            json!({"mrn": "MRN001", "access_token": token}),
        )
        .await;
    assert_eq!(error_code(&after), "unauthenticated");

    // A bearer token on the upgrade authenticates the connection; a bad one is refused with 401.
    let fresh = mcp.token("copilot-studio").await;
    let mut with_header = WsClient::connect(&mcp.app, "/ws", Some(&fresh)).await;
    success(
        &with_header
            .call_tool("get_patient", json!({"mrn": "MRN001"}))
            .await,
    );
    with_header.close().await;
    assert!(
        WsClient::try_connect(&mcp.app, "/ws", Some("garbage"))
            .await
            .is_err()
    );
    client.close().await;
    mcp.shutdown().await;
}

#[tokio::test]
async fn bad_input_gets_clear_errors_naming_the_field() {
    let mcp = spawn_mcp_app(&[]).await;
    let (mut client, _) = authenticated(&mcp, "copilot-studio").await;
    let cases = [
        (
            "get_patient",
            json!({"mrn": "MRN999"}),
            "not_found",
            "patient",
        ),
        (
            "get_patient",
            json!({"mrn": "M'; DROP TABLE patients;--"}),
            "invalid_input",
            "mrn",
        ),
        ("get_patient", json!({}), "invalid_input", "mrn"),
        (
            "schedule_appointment",
            json!({"mrn": "MRN001", "provider_npi": PROVIDER_NPI, "date": "2099-02-30", "time": "10:00"}),
            "invalid_input",
            "date",
        ),
        (
            "schedule_appointment",
            json!({"mrn": "MRN001", "provider_npi": PROVIDER_NPI, "date": "2099-02-03", "time": "25:00"}),
            "invalid_input",
            "time",
        ),
        (
            "schedule_appointment",
            json!({"mrn": "MRN001", "provider_npi": "123", "date": "2099-02-03", "time": "10:00"}),
            "invalid_input",
            "npi",
        ),
        (
            "record_vital_signs",
            json!({"mrn": "MRN001", "heart_rate": 400}),
            "invalid_input",
            "heart_rate",
        ),
        (
            "record_vital_signs",
            json!({"mrn": "MRN001", "systolic_bp": 80, "diastolic_bp": 90}),
            "invalid_input",
            "diastolic_bp",
        ),
        (
            "record_vital_signs",
            json!({"mrn": "MRN001", "temperature": "hot"}),
            "invalid_input",
            "temperature",
        ),
        (
            "add_allergy",
            json!({"mrn": "MRN001", "allergen": "Dust", "severity": "deadly"}),
            "invalid_input",
            "severity",
        ),
        // Parsed once at the boundary into domain types: impossible values never reach a tool.
        (
            "schedule_appointment",
            json!({"mrn": "MRN001", "provider_npi": PROVIDER_NPI, "date": "2099-02-03", "time": "13:00 PM"}),
            "invalid_input",
            "time",
        ),
        (
            "create_patient",
            json!({"first_name": "Ann", "last_name": "Lee", "dob": "+10000-01-01"}),
            "invalid_input",
            "dob",
        ),
        (
            "add_allergy",
            json!({"mrn": "MRN001", "allergen": "Dust", "severity": "mild", "onset_date": "-0001-01-01"}),
            "invalid_input",
            "onset_date",
        ),
        (
            "create_patient",
            json!({"first_name": "Ann", "last_name": "Lee", "dob": "1990-01-01", "gender": "robot"}),
            "invalid_input",
            "gender",
        ),
        (
            "create_patient",
            json!({"first_name": " ", "last_name": "Lee", "dob": "1990-01-01"}),
            "invalid_input",
            "first_name",
        ),
        (
            "prescribe_medication",
            json!({"mrn": "MRN001", "medication_name": "x".repeat(201), "dosage": "1mg", "frequency": "daily"}),
            "invalid_input",
            "medication_name",
        ),
        (
            "search_patients",
            json!({"search_term": "ZZZZ-nobody"}),
            "",
            "",
        ),
    ];
    for (tool, arguments, code, field) in cases {
        let result = client.call_tool(tool, arguments.clone()).await;
        if code.is_empty() {
            // The earlier system's answer to a search without a match.
            assert_ne!(result["isError"], true, "{result}");
            let body = crate::mcp_client::text_body(&result);
            assert_eq!(body["status"], "not_found");
            assert_eq!(body["count"], 0);
            assert_eq!(body["patients"], json!([]));
            assert_eq!(body["message"], "no patients match this search");
            assert!(body["suggestion"].is_string());
            continue;
        }
        assert_eq!(error_code(&result), code, "{tool} {arguments}");
        let message = crate::mcp_client::text_body(&result)["message"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(
            message.contains(field),
            "{tool}: {message:?} should name {field}"
        );
        assert!(!message.to_lowercase().contains("sql"), "{message}");
    }
    client.close().await;
    mcp.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_bookings_of_one_slot_exactly_one_wins() {
    let mcp = spawn_mcp_app(&[]).await;
    let token = mcp.token("copilot-studio").await;
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let token = token.clone();
        let port = mcp.app.port;
        tasks.push(tokio::spawn(async move {
            let url = format!("ws://127.0.0.1:{port}/ws");
            let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
            use futures::{SinkExt, StreamExt};
            let request = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
                "name": "schedule_appointment",
                "arguments": {"mrn": "MRN002", "provider_npi": PROVIDER_NPI, "date": "2097-07-07",
                              "time": "2:00 PM", "access_token": token}}});
            socket
                .send(tokio_tungstenite::tungstenite::Message::Text(
                    request.to_string().into(),
                ))
                .await
                .unwrap();
            loop {
                if let tokio_tungstenite::tungstenite::Message::Text(text) =
                    socket.next().await.unwrap().unwrap()
                {
                    let reply: Value = serde_json::from_str(&text).unwrap();
                    return reply["result"].clone();
                }
            }
        }));
    }
    let mut wins = 0;
    let mut conflicts = 0;
    for task in tasks {
        let result = task.await.unwrap();
        if result["isError"] == true {
            assert_eq!(error_code(&result), "conflict");
            conflicts += 1;
        } else {
            wins += 1;
        }
    }
    assert_eq!((wins, conflicts), (1, 19));
    // The same slot written in 24-hour form is the same slot.
    let (mut client, _) = authenticated(&mcp, "copilot-studio").await;
    let again = client
        .call_tool("schedule_appointment", json!({"mrn": "MRN001", "provider_npi": PROVIDER_NPI, "date": "2097-07-07", "time": "14:00"}))
        .await;
    assert_eq!(error_code(&again), "conflict");
    client.close().await;
    mcp.shutdown().await;
}

#[tokio::test]
async fn an_expired_token_is_unauthenticated() {
    const SECRET: &str = "an-hs256-test-secret-of-at-least-32-bytes!";
    let mcp = spawn_mcp_app(&["--jwt-secret-key", SECRET]).await;
    let now = chrono::Utc::now().timestamp();
    let claims = |exp: i64| {
        json!({
            "iss": mcp.app.base_url, "sub": "copilot-studio", "aud": format!("{}/mcp", mcp.app.base_url),
            "exp": exp, "iat": exp - 3600, "nbf": exp - 3600, "jti": uuid::Uuid::new_v4().to_string(),
            "client_id": "copilot-studio", "scope": "read:patients", "role": "doctor",
            "app_id": mcp.client("copilot-studio")["app_id"], "app_name": "Copilot Studio"
        })
    };
    let sign = |claims: Value| {
        let header = jsonwebtoken::Header {
            typ: Some("at+jwt".to_owned()),
            ..jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256)
        };
        jsonwebtoken::encode(
            &header,
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap()
    };
    let mut client = WsClient::connect(&mcp.app, "/ws", None).await;
    let fresh = sign(claims(now + 600));
    success(
        &client
            .call_tool(
                "get_patient",
                json!({"mrn": "MRN001", "access_token": fresh}),
            )
            .await,
    );
    let expired = sign(claims(now - 600));
    let result = client
        .call_tool(
            "get_patient",
            json!({"mrn": "MRN001", "access_token": expired}),
        )
        .await;
    assert_eq!(error_code(&result), "unauthenticated");
    client.close().await;
    mcp.shutdown().await;
}

#[tokio::test]
async fn allowed_refused_and_failed_calls_are_all_in_the_audit_log() {
    let mcp = spawn_mcp_app(&[]).await;
    let portal = mcp.token("patient-portal").await;
    let doctor = mcp.token("copilot-studio").await;
    let admin = mcp.token("admin-console").await;
    let mut client = WsClient::connect(&mcp.app, "/ws", None).await;
    success(
        &client
            .call_tool(
                "get_patient",
                json!({"mrn": "MRN001", "access_token": portal}),
            )
            .await,
    );
    let refused = client
        .call_tool(
            "get_patient",
            json!({"mrn": "MRN002", "access_token": portal}),
        )
        .await;
    assert_eq!(error_code(&refused), "forbidden");
    let missing = client
        .call_tool(
            "get_patient",
            json!({"mrn": "MRN404", "access_token": doctor}),
        )
        .await;
    assert_eq!(error_code(&missing), "not_found");
    let audit = success(
        &client
            .call_tool(
                "query_audit_log",
                json!({"action": "get_patient", "limit": 10, "access_token": admin}),
            )
            .await,
    );
    let entries = audit["entries"].as_array().unwrap();
    let outcome_for = |mrn: &str| {
        entries.iter().find(|e| e["patient_mrn"] == mrn).map(|e| {
            (
                e["outcome"].clone(),
                e["client_id"].clone(),
                e["transport"].clone(),
            )
        })
    };
    assert_eq!(
        outcome_for("MRN001"),
        Some((
            json!("success"),
            json!("patient-portal"),
            json!("websocket")
        ))
    );
    assert_eq!(outcome_for("MRN002").map(|o| o.0), Some(json!("denied")));
    assert_eq!(outcome_for("MRN404").map(|o| o.0), Some(json!("failed")));
    client.close().await;
    mcp.shutdown().await;
}
