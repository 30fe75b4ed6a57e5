//! Streamable HTTP at `/mcp`: the 401 that points to our OAuth metadata, stateless JSON answers, sessions
//! over SSE, Origin validation, and the opt-in in-band authentication.

use serde_json::{Value, json};

use crate::mcp_support::spawn_mcp_app;

fn post(url: &str) -> reqwest::RequestBuilder {
    reqwest::Client::new()
        .post(url)
        .header("Accept", "application/json, text/event-stream")
        .header("Content-Type", "application/json")
}

#[tokio::test]
async fn without_a_token_mcp_answers_401_with_the_resource_metadata() {
    let mcp = spawn_mcp_app(&[]).await;
    let response = post(&mcp.mcp_url())
        .body(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        challenge,
        format!(
            "Bearer resource_metadata=\"{}/.well-known/oauth-protected-resource/mcp\"",
            mcp.app.base_url
        )
    );
    let garbage = post(&mcp.mcp_url())
        .bearer_auth("garbage")
        .body(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status(), 401);
    assert!(
        garbage.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
    mcp.shutdown().await;
}

#[tokio::test]
async fn a_stateless_request_gets_a_json_answer_and_a_session_gets_sse() {
    let mcp = spawn_mcp_app(&[]).await;
    let token = mcp.token("copilot-studio").await;
    let stateless = post(&mcp.mcp_url())
        .bearer_auth(&token)
        .header("MCP-Protocol-Version", "2025-06-18")
        .body(
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                     "params": {"name": "get_patient", "arguments": {"mrn": "MRN001"}}})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(stateless.status(), 200);
    assert!(
        stateless.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let body: Value = stateless.json().await.unwrap();
    assert_eq!(
        body["result"]["structuredContent"]["patient"]["mrn"], "MRN001",
        "{body}"
    );

    let init = post(&mcp.mcp_url())
        .bearer_auth(&token)
        .body(
            json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"}}})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(init.status(), 200);
    assert!(init.headers().contains_key("mcp-session-id"));
    assert!(
        init.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    mcp.shutdown().await;
}

#[tokio::test]
async fn a_foreign_origin_is_refused() {
    let mcp = spawn_mcp_app(&[]).await;
    let token = mcp.token("copilot-studio").await;
    let request = |origin: &str| {
        post(&mcp.mcp_url())
            .bearer_auth(&token)
            .header("Origin", origin)
            .header("MCP-Protocol-Version", "2025-06-18")
            .body(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).to_string())
    };
    assert_eq!(
        request("http://evil.example")
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    let own = format!("http://127.0.0.1:{}", mcp.app.port);
    assert_eq!(request(&own).send().await.unwrap().status(), 200);
    mcp.shutdown().await;
}

#[tokio::test]
async fn in_band_authentication_on_http_is_opt_in() {
    let mcp = spawn_mcp_app(&["--http-in-band-auth", "true"]).await;
    let response = post(&mcp.mcp_url())
        .header("MCP-Protocol-Version", "2025-06-18")
        .body(
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                     "params": {"name": "get_patient", "arguments": {"mrn": "MRN001"}}})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["result"]["isError"], true, "{body}");
    let token = mcp.token("copilot-studio").await;
    let with_argument = post(&mcp.mcp_url())
        .header("MCP-Protocol-Version", "2025-06-18")
        .body(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                     "params": {"name": "get_patient", "arguments": {"mrn": "MRN001", "access_token": token}}}).to_string())
        .send()
        .await
        .unwrap();
    let body: Value = with_argument.json().await.unwrap();
    assert_eq!(
        body["result"]["structuredContent"]["status"], "success",
        "{body}"
    );
    mcp.shutdown().await;
}

#[tokio::test]
async fn a_token_without_the_tools_scope_gets_a_tool_error_naming_the_scope() {
    let mcp = spawn_mcp_app(&[]).await;
    let admin = mcp.token("admin-console").await;
    let call = |token: String, id: i64, name: &str, arguments: Value| {
        post(&mcp.mcp_url())
            .bearer_auth(token)
            .header("MCP-Protocol-Version", "2025-06-18")
            .body(
                json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                         "params": {"name": name, "arguments": arguments}})
                .to_string(),
            )
            .send()
    };
    let registered: Value = call(
        admin,
        1,
        "register_client",
        json!({"app_id": "ward-tablet", "app_name": "Ward tablet", "role": "nurse",
               "scopes": "read:patients"}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let client = &registered["result"]["structuredContent"];
    assert_eq!(client["role"], "nurse", "{registered}");
    // The client committed with its one audit row, which names what was created and not the secret.
    let rows = mcp
        .app
        .db
        .store
        .query_audit(&ehr_mcp::store::audit::AuditFilter {
            action: Some("register_client".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "one row per call");
    let detail = rows[0].detail.clone().unwrap_or_default();
    let expected = format!(
        "created client_id={} app_id=ward-tablet role=nurse scopes=read:patients rate_limit=",
        client["client_id"].as_str().unwrap()
    );
    assert!(detail.starts_with(&expected), "{detail}");
    assert!(!detail.contains(client["client_secret"].as_str().unwrap()));
    let token: Value = reqwest::Client::new()
        .post(mcp.app.url("/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client["client_id"].as_str().unwrap()),
            ("client_secret", client["client_secret"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["access_token"].as_str().unwrap().to_owned();
    let allowed: Value = call(token.clone(), 2, "get_patient", json!({"mrn": "MRN001"}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        allowed["result"]["structuredContent"]["status"], "success",
        "{allowed}"
    );
    let refused: Value = call(token, 3, "get_vital_signs", json!({"mrn": "MRN001"}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(refused["result"]["isError"], true, "{refused}");
    let body: Value =
        serde_json::from_str(refused["result"]["content"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(body["code"], "forbidden");
    assert!(
        body["message"].as_str().unwrap().contains("read:vitals"),
        "{body}"
    );
    mcp.shutdown().await;
}
