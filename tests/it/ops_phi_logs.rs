//! Logs hold no PHI, secrets or tokens: the real binary at its default level (both log formats) serves token
//! requests, tool calls on the demo patients over Streamable HTTP and WebSocket (reads, writes, refusals,
//! bad input), introspection and revocation; then its whole stderr is searched for every demo patient's
//! name, date of birth, SSN, phone, e-mail, street and MRN, every client secret and every token.

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use crate::ops_binary::BinaryServer;

/// A patient created during the run, with identifiers that exist nowhere else.
const NEW_PATIENT: &[(&str, &str)] = &[
    ("first_name", "Zebulon"),
    ("last_name", "Quixotte"),
    ("dob", "1977-07-07"),
    ("ssn", "987-65-4320"),
    ("phone", "+1-555-0177"),
    ("email", "zebulon.quixotte@example.org"),
];

#[test]
fn the_log_holds_no_phi_secret_or_token_in_either_format() {
    for format in ["pretty", "json"] {
        let dir = tempfile::tempdir().unwrap();
        let database_url = format!("sqlite://{}", dir.path().join("ehr.db").display());
        let credentials = dir.path().join("credentials.json").display().to_string();
        let server = BinaryServer::start(
            &["--demo", "--credentials-file", &credentials],
            &[
                ("DATABASE_URL", database_url.as_str()),
                ("EHR_MCP_LOG_FORMAT", format),
            ],
        );
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let patients = runtime.block_on(patient_identifiers(&database_url));
        assert!(patients.len() >= 30, "demo patients loaded");
        let secrets = runtime.block_on(exercise(&server, &credentials));
        let (status, log) = server.stop_with("TERM");
        assert_eq!(status.code(), Some(0));
        assert!(
            log.contains("request finished"),
            "the log was captured:\n{log}"
        );
        assert!(log.contains("tool call"), "tool calls were logged:\n{log}");

        let log_lines: Vec<&str> = log
            .lines()
            .filter(|line| !line.starts_with("demo data loaded"))
            .collect();
        let searched = log_lines.join("\n");
        for patient in &patients {
            for identifier in patient {
                assert!(
                    !contains_word(&searched, identifier),
                    "{format} log holds the patient identifier {identifier:?}:\n{searched}"
                );
            }
        }
        for (_, value) in NEW_PATIENT {
            assert!(
                !contains_word(&searched, value),
                "{format} log holds {value:?}"
            );
        }
        assert!(secrets.len() >= 10);
        for secret in &secrets {
            assert!(
                !searched.contains(secret.as_str()),
                "{format} log holds a secret or token"
            );
        }
    }
}

/// mrn, first and last name, DOB, then the optional SSN, phone, e-mail and street.
type PatientRow = (
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// Every identifying value of every patient: names, DOB, SSN, phone, e-mail, street, MRN.
async fn patient_identifiers(database_url: &str) -> Vec<Vec<String>> {
    let store = ehr_mcp::store::Store::connect(&ehr_mcp::store::StoreOptions::new(database_url))
        .await
        .unwrap();
    let rows: Vec<PatientRow> = sqlx::query_as(
        "SELECT mrn, first_name, last_name, dob, ssn, phone, email, street FROM patients",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    store.close().await.expect("close");
    rows.into_iter()
        .map(|(mrn, first, last, dob, ssn, phone, email, street)| {
            let mut identifiers = vec![mrn, format!("{first} {last}"), dob];
            identifiers.extend([first, last].into_iter().filter(|name| name.len() >= 4));
            identifiers.extend([ssn, phone, email, street].into_iter().flatten());
            identifiers.retain(|value| !value.is_empty() && !value.starts_with("***"));
            identifiers
        })
        .collect()
}

/// `needle` in `haystack` with no letter or digit on either side.
fn contains_word(haystack: &str, needle: &str) -> bool {
    haystack.match_indices(needle).any(|(at, _)| {
        let before = haystack[..at].chars().next_back();
        let after = haystack[at + needle.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

/// Runs the flow; returns every secret and token it used.
async fn exercise(server: &BinaryServer, credentials_path: &str) -> Vec<String> {
    let credentials: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(credentials_path).unwrap()).unwrap();
    let http = reqwest::Client::new();
    let mut secrets = vec!["wrong-secret-3f9a1c77".to_owned()];
    let mut tokens = std::collections::HashMap::new();
    for client in &credentials {
        let id = client["client_id"].as_str().unwrap().to_owned();
        let secret = client["client_secret"].as_str().unwrap().to_owned();
        let response = http
            .post(server.url("/oauth/token"))
            .basic_auth(&id, Some(&secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "token for {id}");
        let body: Value = response.json().await.unwrap();
        let token = body["access_token"].as_str().unwrap().to_owned();
        secrets.extend([secret, token.clone()]);
        tokens.insert(id, token);
    }
    let refused = http
        .post(server.url("/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "copilot-studio"),
            ("client_secret", "wrong-secret-3f9a1c77"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);

    let doctor = tokens["copilot-studio"].clone();
    let patient_app = tokens["patient-portal"].clone();
    let new_patient: serde_json::Map<String, Value> = NEW_PATIENT
        .iter()
        .map(|(field, value)| ((*field).to_owned(), json!(value)))
        .collect();
    let calls: Vec<(&str, &str, Value)> = vec![
        (&doctor, "get_patient", json!({"mrn": "MRN001"})),
        (
            &doctor,
            "search_patients",
            json!({"search_term": "Johnson"}),
        ),
        (
            &doctor,
            "search_patients",
            json!({"search_term": "1985-06-15"}),
        ),
        (&doctor, "get_patient_summary", json!({"mrn": "MRN002"})),
        (&doctor, "create_patient", Value::Object(new_patient)),
        (
            &doctor,
            "update_patient",
            json!({"mrn": "MRN003", "phone": "+1-555-0199"}),
        ),
        (
            &doctor,
            "record_vital_signs",
            json!({"mrn": "MRN001", "heart_rate": 72}),
        ),
        (
            &doctor,
            "add_allergy",
            json!({"mrn": "MRN001", "allergen": "Peanuts", "severity": "severe"}),
        ),
        (&doctor, "get_patient", json!({"mrn": "MRN999"})),
        (
            &doctor,
            "record_vital_signs",
            json!({"mrn": "MRN001", "heart_rate": "Sarah Johnson"}),
        ),
        (&patient_app, "get_patient", json!({"mrn": "MRN002"})),
        (
            "garbage.token.value",
            "get_patient",
            json!({"mrn": "MRN001"}),
        ),
    ];
    for (token, tool, arguments) in calls {
        mcp_post(
            server,
            token,
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                                       "params": {"name": tool, "arguments": arguments}}),
        )
        .await;
    }
    // An unknown method named after a patient: the SDK's own error log must not repeat it.
    mcp_post(
        server,
        &doctor,
        json!({"jsonrpc": "2.0", "id": 2, "method": "John Doe", "params": {}}),
    )
    .await;

    // WebSocket: in-band authentication with the client secret, then calls.
    let copilot = &credentials[0];
    let mut request = server
        .url("/ws")
        .replace("http", "ws")
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", HeaderValue::from_static("mcp"));
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let frames = [
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "authenticate",
               "arguments": {"client_id": copilot["client_id"], "client_secret": copilot["client_secret"]}}}),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
               "params": {"name": "get_allergies", "arguments": {"mrn": "MRN001"}}}),
        json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "get_patient",
               "arguments": {"mrn": "MRN002", "access_token": doctor}}}),
        json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call",
               "params": {"name": "search_patients", "arguments": {"search_term": "Doe"}}}),
    ];
    for frame in frames {
        socket
            .send(Message::Text(frame.to_string().into()))
            .await
            .unwrap();
        loop {
            match socket.next().await {
                Some(Ok(Message::Text(text))) => {
                    let reply: Value = serde_json::from_str(&text).unwrap();
                    if let Some(token) =
                        reply["result"]["structuredContent"]["access_token"].as_str()
                    {
                        secrets.push(token.to_owned());
                    }
                    break;
                }
                Some(Ok(_)) => continue,
                other => panic!("websocket ended: {other:?}"),
            }
        }
    }
    let _ = socket.close(None).await;

    // Introspection and revocation, then the revoked token is refused.
    let lab = &credentials
        .iter()
        .find(|c| c["client_id"] == "lab-integration")
        .unwrap();
    let lab_token = &tokens["lab-integration"];
    for path in ["/oauth/introspect", "/oauth/revoke"] {
        let response = http
            .post(server.url(path))
            .basic_auth(
                lab["client_id"].as_str().unwrap(),
                lab["client_secret"].as_str(),
            )
            .form(&[("token", lab_token.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
    mcp_post(server, lab_token, json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                                       "params": {"name": "get_lab_results", "arguments": {"mrn": "MRN001"}}}))
    .await;
    secrets
}

async fn mcp_post(server: &BinaryServer, token: &str, body: Value) {
    let response = reqwest::Client::new()
        .post(server.url("/mcp"))
        .bearer_auth(token)
        .header("Accept", "application/json, text/event-stream")
        .header("MCP-Protocol-Version", "2025-06-18")
        .json(&body)
        .send()
        .await
        .unwrap();
    let _ = response.bytes().await;
}
