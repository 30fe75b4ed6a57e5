//! Token hygiene on `/mcp`: the request's bearer token decides who calls.

use serde_json::{Value, json};

/// On `/mcp` the bearer token is the caller: an `access_token` argument naming a more privileged client is
/// not honoured (a patient's bearer with a doctor's token in the arguments stays the patient).
#[tokio::test]
async fn an_access_token_argument_cannot_override_the_bearer_on_mcp() {
    let mcp = crate::mcp_support::spawn_mcp_app(&[]).await;
    let patient = mcp.token("patient-portal").await;
    let doctor = mcp.token("copilot-studio").await;
    let reply: Value = reqwest::Client::new()
        .post(mcp.mcp_url())
        .bearer_auth(&patient)
        .header("Accept", "application/json, text/event-stream")
        .header("Content-Type", "application/json")
        .header("MCP-Protocol-Version", "2025-06-18")
        .body(
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
                "name": "get_patient", "arguments": {"mrn": "MRN002", "access_token": doctor}}})
            .to_string(),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        reply["result"]["isError"], true,
        "the patient's own rights apply: {reply}"
    );
    mcp.shutdown().await;
}
