//! MCP over WebSocket: the earlier system's clients (no `initialize`), SDK-style clients, JSON-RPC framing
//! (batches, notifications, bad frames, oversized messages) — the connection survives every bad frame.

use serde_json::json;

use crate::mcp_client::{WsClient, error_code, success};
use crate::support::spawn_app;

const TOOL_COUNT: usize = 25;

#[tokio::test]
async fn a_client_without_initialize_lists_tools_on_both_paths() {
    let app = spawn_app().await;
    for path in ["/", "/ws"] {
        let mut client = WsClient::connect(&app, path, None).await;
        assert_eq!(client.protocol.as_deref(), Some("mcp"));
        let reply = client.request("tools/list", json!({})).await;
        let tools = reply["result"]["tools"].as_array().expect("tools");
        assert_eq!(tools.len(), TOOL_COUNT, "{reply}");
        for tool in tools {
            assert!(tool["title"].is_string(), "{tool}");
            assert!(tool["outputSchema"]["type"] == "object", "{tool}");
            assert!(tool["inputSchema"]["properties"]["access_token"].is_object());
            assert!(tool["annotations"]["readOnlyHint"].is_boolean());
        }
        client.close().await;
    }
    app.shutdown().await;
}

#[tokio::test]
async fn an_sdk_style_client_initializes_first() {
    let app = spawn_app().await;
    let mut client = WsClient::connect(&app, "/ws", None).await;
    let init = client
        .request(
            "initialize",
            json!({"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "test", "version": "1"}}),
        )
        .await;
    assert_eq!(init["result"]["protocolVersion"], "2025-06-18");
    assert_eq!(init["result"]["serverInfo"]["name"], "ehr-mcp");
    assert!(init["result"]["capabilities"]["tools"].is_object());
    client
        .send_json(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        .await;
    let ping = client.request("ping", json!({})).await;
    assert_eq!(ping["result"], json!({}));
    client.close().await;
    app.shutdown().await;
}

#[tokio::test]
async fn tool_calls_without_a_token_are_refused_but_listing_works() {
    let app = spawn_app().await;
    let mut client = WsClient::connect(&app, "/ws", None).await;
    for (tool, arguments) in [
        ("get_patient", json!({"mrn": "MRN001"})),
        ("search_patients", json!({"search_term": "John"})),
        ("query_audit_log", json!({})),
    ] {
        let result = client.call_tool(tool, arguments).await;
        assert_eq!(error_code(&result), "unauthenticated", "{tool}");
    }
    let garbage = client
        .call_tool(
            "get_patient",
            json!({"mrn": "MRN001", "access_token": "not-a-token"}),
        )
        .await;
    assert_eq!(error_code(&garbage), "unauthenticated");
    client.close().await;
    app.shutdown().await;
}

#[tokio::test]
async fn bad_frames_get_jsonrpc_errors_and_the_connection_lives_on() {
    let app = spawn_app().await;
    let mut client = WsClient::connect(&app, "/ws", None).await;

    client.send_text("{this is not json").await;
    let parse = client.recv_json().await;
    assert_eq!(parse["error"]["code"], -32700, "{parse}");
    assert_eq!(parse["id"], serde_json::Value::Null);

    client
        .send_text(r#"{"id": 5, "method": "tools/list"}"#)
        .await;
    let invalid = client.recv_json().await;
    assert_eq!(invalid["error"]["code"], -32600, "{invalid}");
    assert_eq!(invalid["id"], 5);

    let unknown_tool = client
        .request(
            "tools/call",
            json!({"name": "drop_all_tables", "arguments": {}}),
        )
        .await;
    assert!(unknown_tool["error"]["code"].is_i64(), "{unknown_tool}");

    let string_arguments = client
        .request(
            "tools/call",
            json!({"name": "search_patients", "arguments": "{\"query\": \"John\"}"}),
        )
        .await;
    assert_eq!(
        string_arguments["error"]["code"], -32602,
        "arguments as a string are invalid params: {string_arguments}"
    );

    let unknown_method = client.request("no/such/method", json!({})).await;
    assert_eq!(unknown_method["error"]["code"], -32601, "{unknown_method}");

    let still_alive = client.request("tools/list", json!({})).await;
    assert!(still_alive["result"]["tools"].is_array());
    client.close().await;
    app.shutdown().await;
}

#[tokio::test]
async fn batches_get_one_array_reply_and_notifications_none() {
    let app = spawn_app().await;
    let mut client = WsClient::connect(&app, "/ws", None).await;
    client
        .send_text(
            r#"[{"jsonrpc":"2.0","id":"a","method":"ping"},
                {"jsonrpc":"2.0","method":"notifications/initialized"},
                {"jsonrpc":"2.0","id":"b","method":"tools/list"},
                {"bogus": true}]"#,
        )
        .await;
    let reply = client.recv_json().await;
    let members = reply.as_array().expect("a batch reply is an array");
    assert_eq!(members.len(), 3, "{reply}");
    assert!(
        members
            .iter()
            .any(|m| m["id"] == "a" && m["result"] == json!({}))
    );
    assert!(
        members
            .iter()
            .any(|m| m["id"] == "b" && m["result"]["tools"].is_array())
    );
    assert!(members.iter().any(|m| m["error"]["code"] == -32600));

    client.send_text("[]").await;
    let empty = client.recv_json().await;
    assert_eq!(empty["error"]["code"], -32600);

    // A notification alone gets no reply: the next reply is for the next request.
    client
        .send_text(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
        .await;
    let after = client.request("ping", json!({})).await;
    assert_eq!(after["result"], json!({}));
    client.close().await;
    app.shutdown().await;
}

#[tokio::test]
async fn an_oversized_message_gets_a_clear_error_and_the_server_keeps_serving() {
    let app = crate::support::spawn_app_on(
        crate::support::TestDb::sqlite().await,
        &["--max-message-bytes", "65536"],
    )
    .await;
    let mut client = WsClient::connect(&app, "/ws", None).await;
    let huge = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                      "params": {"name": "search_patients", "arguments": {"search_term": "x".repeat(100_000)}}});
    client.send_json(&huge).await;
    let reply = client.recv_json().await;
    assert_eq!(reply["error"]["code"], -32600, "{reply}");
    assert!(
        reply["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("exceeds the limit")
    );
    let still_alive = client.request("tools/list", json!({})).await;
    assert!(still_alive["result"]["tools"].is_array());
    client.close().await;
    app.shutdown().await;
}

/// POSTs `/oauth/revoke` for `token` as the demo client `client_id`.
async fn revoke(mcp: &crate::mcp_support::McpApp, client_id: &str, token: &str) {
    let client = mcp.client(client_id).clone();
    let revoked = reqwest::Client::new()
        .post(mcp.app.url("/oauth/revoke"))
        .form(&[
            ("token", token),
            ("client_id", client["client_id"].as_str().unwrap()),
            ("client_secret", client["client_secret"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
}

#[tokio::test]
async fn a_connection_keeps_the_caller_its_upgrade_proved_until_revoked() {
    let mcp = crate::mcp_support::spawn_mcp_app(&[]).await;
    let get_patient = json!({"mrn": "MRN001"});

    // A token on the upgrade: the connection acts as its client, and stops at once when it is revoked.
    let token = mcp.token("copilot-studio").await;
    let mut client = WsClient::connect(&mcp.app, "/ws", Some(&token)).await;
    success(&client.call_tool("get_patient", get_patient.clone()).await);
    success(&client.call_tool("get_patient", get_patient.clone()).await);
    revoke(&mcp, "copilot-studio", &token).await;
    let after = client.call_tool("get_patient", get_patient.clone()).await;
    assert_eq!(error_code(&after), "unauthenticated", "{after}");
    client.close().await;

    // The same for the caller `authenticate` proved on the connection.
    let mut client = WsClient::connect(&mcp.app, "/ws", None).await;
    let doctor = mcp.client("copilot-studio").clone();
    let issued = success(
        &client
            .call_tool(
                "authenticate",
                json!({"client_id": doctor["client_id"], "client_secret": doctor["client_secret"]}),
            )
            .await,
    );
    success(&client.call_tool("get_patient", get_patient.clone()).await);
    let in_band = issued["access_token"].as_str().unwrap().to_owned();
    revoke(&mcp, "copilot-studio", &in_band).await;
    let after = client.call_tool("get_patient", get_patient.clone()).await;
    assert_eq!(error_code(&after), "unauthenticated", "{after}");
    client.close().await;

    // An API key on the upgrade: its row is read again on every call.
    let client_id = ehr_mcp::domain::ids::ClientId::parse("copilot-studio").unwrap();
    let store = &mcp.app.db.store;
    let (info, key) = ehr_mcp::auth::api_keys::create(store, &client_id, "ws", None)
        .await
        .unwrap();
    let mut client = WsClient::connect(&mcp.app, "/ws", Some(&key)).await;
    success(&client.call_tool("get_patient", get_patient.clone()).await);
    ehr_mcp::auth::api_keys::revoke(store, &info.key_id)
        .await
        .unwrap();
    let after = client.call_tool("get_patient", get_patient.clone()).await;
    assert_eq!(error_code(&after), "unauthenticated", "{after}");
    client.close().await;
    mcp.shutdown().await;
}

/// A `get_patient` call for MRN001 with request id `id`.
fn call(id: &str) -> serde_json::Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
           "params": {"name": "get_patient", "arguments": {"mrn": "MRN001"}}})
}

/// The client's cancellation of request `id`.
fn cancel(id: &str) -> serde_json::Value {
    json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
           "params": {"requestId": id, "reason": "test"}})
}

#[tokio::test]
async fn a_cancelled_call_gets_no_answer_but_is_audited_and_its_batch_goes_out_without_it() {
    let mcp = crate::mcp_support::spawn_mcp_app(&[]).await;
    let token = mcp.token("copilot-studio").await;
    let mut client = WsClient::connect(&mcp.app, "/ws", Some(&token)).await;
    // The handshake first, so the calls below run on the connection's own path.
    success(
        &client
            .call_tool("get_patient", json!({"mrn": "MRN001"}))
            .await,
    );
    let store = &mcp.app.db.store;
    let before = store.count_audit_rows().await.unwrap();
    client
        .send_json(&json!([call("gone"), cancel("gone"), call("kept")]))
        .await;
    let reply = client.recv_json().await;
    let members = reply.as_array().expect("a batch reply");
    assert_eq!(members.len(), 1, "{reply}");
    assert_eq!(members[0]["id"], "kept");
    success(&members[0]["result"]);

    // A batch whose only call is cancelled gets no frame at all: the next frame answers the ping.
    client
        .send_json(&json!([call("alone"), cancel("alone")]))
        .await;
    let ping = client.request("ping", json!({})).await;
    assert_eq!(ping["result"], json!({}), "{ping}");
    // Every call ran and was audited, the cancelled ones included.
    let audited = crate::fault_support::eventually(std::time::Duration::from_secs(5), || async {
        store.count_audit_rows().await.unwrap() >= before + 3
    })
    .await;
    assert!(audited.is_some(), "three calls, three audit rows");
    // The connection serves on.
    success(
        &client
            .call_tool("get_patient", json!({"mrn": "MRN001"}))
            .await,
    );
    client.close().await;
    mcp.shutdown().await;
}

#[tokio::test]
async fn calls_in_the_first_frame_wait_for_the_handshake_and_a_cancelled_one_frees_its_batch() {
    let mcp = crate::mcp_support::spawn_mcp_app(&[]).await;
    let token = mcp.token("copilot-studio").await;
    let initialize = json!({"jsonrpc": "2.0", "id": "init", "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "test", "version": "1"}}});
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let list = json!({"jsonrpc": "2.0", "id": "list", "method": "tools/list"});
    // The client's own handshake and the implicit one: either way the requests of the first frame are
    // read before the handshake is done; each is answered but the cancelled one, left out of its batch.
    for (first_frame, answered) in [
        (
            json!([
                initialize,
                initialized,
                list,
                call("gone"),
                cancel("gone"),
                call("kept")
            ]),
            json!(["init", "kept", "list"]),
        ),
        (
            json!([call("gone"), cancel("gone"), call("kept")]),
            json!(["kept"]),
        ),
    ] {
        let mut client = WsClient::connect(&mcp.app, "/ws", Some(&token)).await;
        client.send_json(&first_frame).await;
        let reply = client.recv_json().await;
        let members = reply.as_array().expect("a batch reply");
        let mut ids: Vec<_> = members.iter().map(|member| member["id"].clone()).collect();
        ids.sort_by_key(|id| id.to_string());
        assert_eq!(json!(ids), answered, "{reply}");
        for member in members {
            assert!(member["result"].is_object(), "{member}");
        }
        let kept = members
            .iter()
            .find(|member| member["id"] == "kept")
            .expect("the kept call answered");
        success(&kept["result"]);
        // Its in-flight slot is free again: the connection goes on serving.
        success(
            &client
                .call_tool("get_patient", json!({"mrn": "MRN002"}))
                .await,
        );
        client.close().await;
    }
    mcp.shutdown().await;
}

#[tokio::test]
async fn calls_in_flight_on_one_connection_are_all_answered() {
    let mcp = crate::mcp_support::spawn_mcp_app(&[]).await;
    let token = mcp.token("copilot-studio").await;
    let mut client = WsClient::connect(&mcp.app, "/ws", Some(&token)).await;
    let mrns = ["MRN001", "MRN002"];
    for id in 0..16 {
        let mrn = mrns[id % mrns.len()];
        client
            .send_json(&json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                               "params": {"name": "get_patient", "arguments": {"mrn": mrn}}}))
            .await;
    }
    let mut answered = std::collections::BTreeSet::new();
    for _ in 0..16 {
        let reply = client.recv_json().await;
        let id = reply["id"].as_u64().expect("an id") as usize;
        let patient = success(&reply["result"]);
        assert_eq!(patient["patient"]["mrn"], mrns[id % mrns.len()], "{reply}");
        assert!(answered.insert(id), "answered twice: {reply}");
    }
    assert_eq!(answered.len(), 16);
    client.close().await;
    mcp.shutdown().await;
}
