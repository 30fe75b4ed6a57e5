//! Complete, bounded audit (#9 items 6 and 7): refusals of callers who never authenticated are recorded
//! on every door — `/mcp` without, with a garbage or a forged token, a refused WebSocket upgrade, an
//! unauthenticated tool call (with the patient it named), a non-JSON body — aggregated per address into
//! rows with a count. 40,000 unauthenticated calls from one WebSocket give a handful of rows whose counts
//! add up to 40,000. `register_client`'s row names what it created.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use crate::fault_support::eventually;
use crate::mcp_support::spawn_mcp_app;
use crate::support::TestDb;

/// (action, detail, patient) of every denied row.
async fn denied_rows(db: &TestDb) -> Vec<(String, String, Option<String>)> {
    sqlx::query_as::<_, (String, Option<String>, Option<String>)>(
        "SELECT action, detail, patient_mrn FROM audit_log WHERE outcome = 'denied' ORDER BY seq",
    )
    .fetch_all(db.store.pool())
    .await
    .unwrap()
    .into_iter()
    .map(|(action, detail, patient)| (action, detail.unwrap_or_default(), patient))
    .collect()
}

fn count_of(detail: &str) -> u64 {
    detail
        .rsplit_once("count=")
        .and_then(|(_, count)| count.parse().ok())
        .unwrap_or(0)
}

async fn counted(db: &TestDb, action: &str, reason: &str) -> u64 {
    denied_rows(db)
        .await
        .iter()
        .filter(|(a, detail, _)| a == action && detail.starts_with(reason))
        .map(|(_, detail, _)| count_of(detail))
        .sum()
}

fn post(url: &str) -> reqwest::RequestBuilder {
    reqwest::Client::new()
        .post(url)
        .header("Accept", "application/json, text/event-stream")
        .header("Content-Type", "application/json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_unauthenticated_refusal_is_counted_in_a_bounded_number_of_rows() {
    // The flooding WebSocket stays unauthenticated on purpose (it would be closed after 30 s).
    let mcp = spawn_mcp_app(&["--unauthenticated-timeout-seconds", "600"]).await;
    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).to_string();
    // /mcp: no token (3×), a garbage token (2×), a forged one (1×).
    for _ in 0..3 {
        let response = post(&mcp.mcp_url())
            .body(list.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
    }
    for _ in 0..2 {
        let response = post(&mcp.mcp_url())
            .bearer_auth("garbage")
            .body(list.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
    }
    let real = mcp.token("copilot-studio").await;
    let at = real.len() - 10;
    let swapped = if &real[at..=at] == "A" { "B" } else { "A" };
    let forged = format!("{}{swapped}{}", &real[..at], &real[at + 1..]);
    let response = post(&mcp.mcp_url())
        .bearer_auth(&forged)
        .body(list.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    // A refused WebSocket upgrade.
    let mut request = mcp.ws_url().into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Authorization", HeaderValue::from_static("Bearer garbage"));
    assert!(tokio_tungstenite::connect_async(request).await.is_err());
    // A body that is not JSON, with a valid token: JSON-RPC parse error, HTTP 400.
    let response = post(&mcp.mcp_url())
        .bearer_auth(&real)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32700, "{body}");

    // 40,000 unauthenticated calls naming a patient, in batches of 64 on one WebSocket.
    let (mut socket, _) = tokio_tungstenite::connect_async(mcp.ws_url())
        .await
        .unwrap();
    const CALLS: usize = 40_000;
    let mut sent = 0;
    while sent < CALLS {
        let size = 64.min(CALLS - sent);
        let batch: Vec<Value> = (0..size)
            .map(|index| {
                json!({"jsonrpc": "2.0", "id": sent + index, "method": "tools/call",
                       "params": {"name": "get_patient", "arguments": {"mrn": "MRN002"}}})
            })
            .collect();
        socket
            .send(Message::Text(Value::Array(batch).to_string().into()))
            .await
            .unwrap();
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(30), socket.next())
                .await
                .expect("a reply")
                .unwrap()
                .unwrap();
            if let Message::Text(text) = frame {
                let reply: Value = serde_json::from_str(&text).unwrap();
                if let Some(replies) = reply.as_array() {
                    assert_eq!(replies.len(), size);
                    let text = replies[0]["result"]["content"][0]["text"]
                        .as_str()
                        .unwrap_or_default();
                    assert!(text.contains("unauthenticated"), "{reply}");
                    break;
                }
            }
        }
        sent += size;
    }

    let db = &mcp.app.db;
    let all_counted = eventually(Duration::from_secs(20), || async {
        counted(db, "get_patient", "unauthenticated").await == CALLS as u64
            && counted(db, "mcp.http", "no_token").await == 3
            && counted(db, "mcp.http", "invalid_token").await == 3
            && counted(db, "websocket.upgrade", "invalid_token").await == 1
            && counted(db, "mcp.http", "parse_error").await == 1
    })
    .await;
    let rows = denied_rows(db).await;
    assert!(all_counted.is_some(), "{rows:#?}");
    let call_rows: Vec<_> = rows.iter().filter(|(a, _, _)| a == "get_patient").collect();
    assert!(
        call_rows.len() <= 20,
        "{} rows for {CALLS} refusals",
        call_rows.len()
    );
    assert!(
        call_rows
            .iter()
            .all(|(_, detail, patient)| patient.as_deref() == Some("MRN002")
                && detail.contains("peer=127.0.0.1")),
        "{call_rows:#?}"
    );
    eprintln!(
        "{CALLS} unauthenticated calls → {} audit rows; {} rows in all",
        call_rows.len(),
        rows.len()
    );
    mcp.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_client_names_what_it_created_and_refuses_an_unknown_mrn() {
    let mcp = spawn_mcp_app(&[]).await;
    let admin = mcp.token("admin-console").await;
    let call = |arguments: Value| {
        post(&mcp.mcp_url())
            .bearer_auth(&admin)
            .header("MCP-Protocol-Version", "2025-06-18")
            .body(
                json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                       "params": {"name": "register_client", "arguments": arguments}})
                .to_string(),
            )
            .send()
    };
    let created: Value = call(json!({"app_id": "portal-two", "app_name": "Portal Two",
                                     "role": "patient", "scopes": "read:patients", "patient_mrn": "MRN002"}))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let client_id = created["result"]["structuredContent"]["client_id"]
        .as_str()
        .unwrap_or_else(|| panic!("{created}"))
        .to_owned();
    let detail: Option<String> = sqlx::query_scalar(
        "SELECT detail FROM audit_log WHERE action = 'register_client' AND outcome = 'success'",
    )
    .fetch_one(mcp.app.db.store.pool())
    .await
    .unwrap();
    let detail = detail.unwrap_or_default();
    assert!(
        detail.contains(&format!("client_id={client_id}")),
        "{detail}"
    );
    assert!(detail.contains("role=patient") && detail.contains("patient_mrn=MRN002"));
    assert!(!detail.contains("secret"));

    let refused: Value = call(json!({"app_id": "portal-three", "app_name": "Portal Three",
                                     "role": "patient", "scopes": "read:patients", "patient_mrn": "MRN999"}))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let text = refused["result"]["content"][0]["text"].as_str().unwrap();
    let error: Value = serde_json::from_str(text).unwrap();
    assert_eq!(error["code"], "invalid_input", "{refused}");
    assert!(error["message"].as_str().unwrap().contains("MRN999"));
    mcp.shutdown().await;
}
