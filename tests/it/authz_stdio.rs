//! A minimal MCP client over `ehr-mcp stdio` (the real binary, one JSON-RPC message per line) for the
//! data-authorization tests: the identity comes from `EHR_MCP_CLIENT_ID`/`EHR_MCP_CLIENT_SECRET`.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::mcp_support::McpApp;

/// Runs `ehr-mcp stdio` as `client_id` over the app's database: lists the tools, asks for MRN001's
/// summary, and returns the summary's result body (`content[0].text`) plus the listed tool names.
pub async fn stdio_session(mcp: &McpApp, client_id: &str) -> (Value, Vec<String>) {
    let entry = mcp.client(client_id);
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_ehr-mcp"))
        .arg("stdio")
        .env("EHR_MCP_KEY_ENCRYPTION_KEY", crate::support::TEST_KEK)
        .env("DATABASE_URL", &mcp.app.db.url)
        .env("EHR_MCP_PUBLIC_URL", &mcp.app.base_url)
        .env("EHR_MCP_CLIENT_ID", entry["client_id"].as_str().unwrap())
        .env(
            "EHR_MCP_CLIENT_SECRET",
            entry["client_secret"].as_str().unwrap(),
        )
        .env("LOG_LEVEL", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start ehr-mcp stdio");
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let messages = [
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "authz-test", "version": "1"}}}),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
        json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
               "params": {"name": "get_patient_summary", "arguments": {"mrn": "MRN001"}}}),
    ];
    for message in &messages {
        stdin
            .write_all(format!("{message}\n").as_bytes())
            .await
            .unwrap();
    }
    stdin.flush().await.unwrap();
    let (mut listed, mut summary) = (None, None);
    while listed.is_none() || summary.is_none() {
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("an answer within 30 s")
            .unwrap()
            .expect("ehr-mcp stdio answered before closing");
        let reply: Value = serde_json::from_str(&line).expect("one JSON message per line");
        match reply["id"].as_i64() {
            Some(2) => listed = Some(reply["result"]["tools"].clone()),
            Some(3) => summary = Some(crate::mcp_client::text_body(&reply["result"])),
            _ => {}
        }
    }
    drop(stdin);
    let _ = child.kill().await;
    let names = listed
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|tool| tool["name"].as_str().unwrap().to_owned())
        .collect();
    (summary.unwrap(), names)
}
