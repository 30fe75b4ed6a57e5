//! The official SDKs of the newest generation against the real server over Streamable HTTP, at each
//! protocol generation: the Python SDK 2.x (`mcp`, pinned in `tests/clients/requirements-mcp2.txt`) at
//! 2026-07-28 (stateless: no initialize, no session, `_meta` on every request, Mcp-Method/Mcp-Name
//! headers), 2025-11-25 and 2024-11-05 (initialize handshake), listing and reading resources and prompts,
//! completing arguments and calling tools with `fields`; and the TypeScript SDK 2.x
//! (`@modelcontextprotocol/client`) the same way. Installed by `tests/clients/setup.sh`.

use serde_json::Value;

use crate::mcp_support::{clients_dir, run_client, spawn_mcp_app};

async fn python_sdk2(protocol: &str) -> Value {
    let python = clients_dir().join(".venv-mcp2/bin/python");
    assert!(
        python.exists(),
        "the Python MCP SDK 2.x is not installed: run tests/clients/setup.sh (scripts/test and .ci/run do)"
    );
    let mcp = spawn_mcp_app(&[]).await;
    let token = mcp.token("copilot-studio").await;
    let mut command = tokio::process::Command::new(python);
    command
        .arg(clients_dir().join("python_sdk2_check.py"))
        .args([
            "--url",
            &mcp.mcp_url(),
            "--token",
            &token,
            "--protocol",
            protocol,
        ]);
    let summary = run_client(command).await;
    mcp.shutdown().await;
    summary
}

fn assert_full_surface(summary: &Value, protocol: &str) {
    assert_eq!(summary["protocol_version"], protocol, "{summary}");
    assert_eq!(summary["tools_listed"], 23, "{summary}");
    assert_eq!(summary["templates_listed"], 5, "{summary}");
    assert_eq!(
        summary["prompts_listed"],
        serde_json::json!([
            "discharge_checklist",
            "lab_trend",
            "medication_review",
            "pre_visit_summary"
        ]),
        "{summary}"
    );
    assert!(
        summary["bundle_entries"].as_u64().unwrap_or(0) >= 4,
        "{summary}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk2_on_the_stateless_protocol() {
    let summary = python_sdk2("2026-07-28").await;
    assert_full_surface(&summary, "2026-07-28");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk2_on_2025_11_25() {
    let summary = python_sdk2("2025-11-25").await;
    assert_full_surface(&summary, "2025-11-25");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk2_on_2024_11_05() {
    let summary = python_sdk2("2024-11-05").await;
    assert_full_surface(&summary, "2024-11-05");
}

async fn typescript_sdk2(protocol: &str) -> Value {
    let sdk = clients_dir().join("node_modules/@modelcontextprotocol/client");
    assert!(
        sdk.exists(),
        "the TypeScript MCP SDK 2.x is not installed: run tests/clients/setup.sh (scripts/test and .ci/run do)"
    );
    let mcp = spawn_mcp_app(&[]).await;
    let token = mcp.token("copilot-studio").await;
    let mut command = tokio::process::Command::new("node");
    command
        .current_dir(clients_dir())
        .arg("ts_sdk2_check.mjs")
        .args([&mcp.mcp_url(), &token, protocol]);
    let summary = run_client(command).await;
    mcp.shutdown().await;
    summary
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typescript_sdk2_at_every_generation() {
    for protocol in ["2026-07-28", "2025-11-25", "2024-11-05"] {
        let summary = typescript_sdk2(protocol).await;
        assert_eq!(summary["protocol_version"], protocol, "{summary}");
        assert_eq!(summary["tools_listed"], 23, "{summary}");
        assert_eq!(summary["templates_listed"], 5, "{summary}");
        assert_eq!(
            summary["prompts_listed"].as_array().map(Vec::len),
            Some(4),
            "{summary}"
        );
    }
}
