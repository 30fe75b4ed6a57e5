//! The three protocol generations over Streamable HTTP against the real server: 2026-07-28 (no
//! `initialize`, no session, `_meta` on every request, `Mcp-Method`/`Mcp-Name` checked against the body,
//! the version-mismatch error per the specification), 2025-11-25 and 2024-11-05 sessions.

use serde_json::{Value, json};

use crate::mcp_resume::SseReader;
use crate::mcp_support::{McpApp, spawn_mcp_app};

const STATELESS: &str = "2026-07-28";

fn meta(version: &str) -> Value {
    json!({"io.modelcontextprotocol/protocolVersion": version,
           "io.modelcontextprotocol/clientCapabilities": {},
           "io.modelcontextprotocol/clientInfo": {"name": "generations-test", "version": "1"}})
}

/// A 2026-07-28 request: `_meta` in the body, the version and method (and name) in headers.
async fn stateless(
    mcp: &McpApp,
    token: &str,
    version: &str,
    method: &str,
    name: Option<&str>,
    mut params: Value,
) -> (u16, Value) {
    params["_meta"] = meta(version);
    let mut request = reqwest::Client::new()
        .post(mcp.mcp_url())
        .bearer_auth(token)
        .header("Accept", "application/json, text/event-stream")
        .header("Content-Type", "application/json")
        .header("MCP-Protocol-Version", version)
        .header("Mcp-Method", method);
    if let Some(name) = name {
        request = request.header("Mcp-Name", name);
    }
    let response = request
        .body(json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string())
        .send()
        .await
        .unwrap();
    assert!(
        !response.headers().contains_key("mcp-session-id"),
        "2026-07-28 has no sessions"
    );
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn protocol_2026_07_28_is_stateless_with_checked_headers() {
    let mcp = spawn_mcp_app(&[]).await;
    let token = mcp.token("copilot-studio").await;
    let (status, discovered) =
        stateless(&mcp, &token, STATELESS, "server/discover", None, json!({})).await;
    assert_eq!(status, 200, "{discovered}");
    let versions = &discovered["result"]["supportedVersions"];
    for version in [STATELESS, "2025-11-25", "2024-11-05"] {
        assert!(
            versions.as_array().unwrap().contains(&json!(version)),
            "{discovered}"
        );
    }
    assert!(discovered["result"]["capabilities"]["completions"].is_object());

    let call = json!({"name": "get_patient", "arguments": {"mrn": "MRN001"}});
    let (status, answer) = stateless(
        &mcp,
        &token,
        STATELESS,
        "tools/call",
        Some("get_patient"),
        call.clone(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        answer["result"]["structuredContent"]["patient"]["mrn"], "MRN001",
        "{answer}"
    );

    let (status, mismatch) = stateless(
        &mcp,
        &token,
        STATELESS,
        "tools/call",
        Some("get_vital_signs"),
        call,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(mismatch["error"]["code"], -32020, "{mismatch}");

    let (status, unsupported) =
        stateless(&mcp, &token, "2099-01-01", "tools/list", None, json!({})).await;
    assert_eq!(status, 400);
    assert_eq!(unsupported["error"]["code"], -32022, "{unsupported}");
    assert_eq!(unsupported["error"]["data"]["requested"], "2099-01-01");
    assert_eq!(unsupported["error"]["data"]["supported"], *versions);
    mcp.shutdown().await;
}

#[tokio::test]
async fn sessions_of_2025_11_25_and_2024_11_05_negotiate_their_version() {
    let mcp = spawn_mcp_app(&[]).await;
    let token = mcp.token("copilot-studio").await;
    for version in ["2025-11-25", "2024-11-05"] {
        let init = reqwest::Client::new()
            .post(mcp.mcp_url())
            .bearer_auth(&token)
            .header("Accept", "application/json, text/event-stream")
            .header("Content-Type", "application/json")
            .body(
                json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                    "protocolVersion": version, "capabilities": {},
                    "clientInfo": {"name": "generations-test", "version": "1"}}})
                .to_string(),
            )
            .send()
            .await
            .unwrap();
        assert!(init.headers().contains_key("mcp-session-id"));
        let answer = SseReader::new(init).answer_to(1).await;
        assert_eq!(answer["result"]["protocolVersion"], version, "{answer}");
    }
    mcp.shutdown().await;
}
