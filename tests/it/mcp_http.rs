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
