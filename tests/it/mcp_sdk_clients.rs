//! The official MCP client SDKs against the real server: the Python SDK (`mcp`) over WebSocket, Streamable
//! HTTP and stdio (every tool called, each structuredContent validated against its outputSchema by the
//! SDK), and the TypeScript SDK over Streamable HTTP with its OAuth client-credentials provider.
//! The SDKs are installed by `tests/clients/setup.sh` (run by `scripts/test` and `.ci/run`); without them
//! these tests fail and say so.

use std::path::PathBuf;

use serde_json::Value;

use crate::mcp_support::{clients_dir, run_client, spawn_mcp_app};

/// The Python of the test venv (`tests/clients/.venv`): tests never install into the system Python.
pub(crate) fn python() -> PathBuf {
    let python = clients_dir().join(".venv/bin/python");
    assert!(
        python.exists(),
        "the Python MCP SDK is not installed: run tests/clients/setup.sh (scripts/test and .ci/run do)"
    );
    python
}

fn node_client() -> PathBuf {
    let sdk = clients_dir().join("node_modules/@modelcontextprotocol/sdk");
    assert!(
        sdk.exists(),
        "the TypeScript MCP SDK is not installed: run tests/clients/setup.sh (scripts/test and .ci/run do)"
    );
    clients_dir().join("ts_client_credentials.mjs")
}

fn python_check(args: &[&str]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(python());
    command
        .arg(clients_dir().join("python_sdk_check.py"))
        .args(args);
    command
}

/// Every tool was called (but those in `except`); `listed` tools were in `tools/list` (all 25 before the
/// caller is known, the 23 a clinician may call when it is).
fn assert_every_tool_called(summary: &Value, listed: u64, except: &[&str]) {
    let called: Vec<&str> = summary["tools_called"]
        .as_array()
        .expect("tools_called")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(summary["tools_listed"], listed, "{summary}");
    assert_eq!(called.len() + except.len(), 25, "{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_over_websocket_calls_every_tool() {
    let mcp = spawn_mcp_app(&[]).await;
    let doctor = mcp.client("copilot-studio").clone();
    let admin_token = mcp.token("admin-console").await;
    // `--name=value`: a random secret may begin with `-`, which argparse would take for an option.
    let secret = format!(
        "--client-secret={}",
        doctor["client_secret"].as_str().unwrap()
    );
    let summary = run_client(python_check(&[
        "--transport",
        "ws",
        "--url",
        &mcp.ws_url(),
        "--client-id",
        doctor["client_id"].as_str().unwrap(),
        &secret,
        "--app-id",
        doctor["app_id"].as_str().unwrap(),
        "--admin-token",
        &admin_token,
    ]))
    .await;
    assert_every_tool_called(&summary, 25, &[]);
    mcp.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_over_streamable_http_calls_every_tool() {
    let mcp = spawn_mcp_app(&[]).await;
    let token = mcp.token("copilot-studio").await;
    let admin_token = mcp.token("admin-console").await;
    let summary = run_client(python_check(&[
        "--transport",
        "http",
        "--url",
        &mcp.mcp_url(),
        "--token",
        &token,
        "--admin-token",
        &admin_token,
    ]))
    .await;
    assert_every_tool_called(&summary, 23, &["authenticate"]);
    mcp.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_over_stdio_calls_every_tool() {
    let mcp = spawn_mcp_app(&[]).await;
    let doctor = mcp.client("copilot-studio").clone();
    let admin_token = mcp.token("admin-console").await;
    let database = format!("DATABASE_URL={}", mcp.app.db.url);
    let public_url = format!("EHR_MCP_PUBLIC_URL={}", mcp.app.base_url);
    let client_id = format!(
        "EHR_MCP_CLIENT_ID={}",
        doctor["client_id"].as_str().unwrap()
    );
    let secret = format!(
        "EHR_MCP_CLIENT_SECRET={}",
        doctor["client_secret"].as_str().unwrap()
    );
    let summary = run_client(python_check(&[
        "--transport",
        "stdio",
        "--command",
        env!("CARGO_BIN_EXE_ehr-mcp"),
        "--env",
        &database,
        "--env",
        &public_url,
        "--env",
        &client_id,
        "--env",
        &secret,
        "--env",
        "LOG_LEVEL=warn",
        "--env",
        &format!("EHR_MCP_KEY_ENCRYPTION_KEY={}", crate::support::TEST_KEK),
        "--admin-token",
        &admin_token,
    ]))
    .await;
    assert_every_tool_called(&summary, 23, &["authenticate"]);
    mcp.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typescript_sdk_discovers_oauth_from_the_401_and_calls_tools() {
    let mcp = spawn_mcp_app(&[]).await;
    let doctor = mcp.client("copilot-studio").clone();
    let mut command = tokio::process::Command::new("node");
    command.current_dir(clients_dir()).arg(node_client()).args([
        &mcp.mcp_url(),
        doctor["client_id"].as_str().unwrap(),
        doctor["client_secret"].as_str().unwrap(),
    ]);
    let summary = run_client(command).await;
    // The bearer token's caller (a doctor) is known: the admin tools are not listed.
    assert_eq!(summary["tools_listed"], 23, "{summary}");
    assert!(
        summary["tools_called"]
            .as_array()
            .is_some_and(|c| c.len() >= 5)
    );
    mcp.shutdown().await;
}
