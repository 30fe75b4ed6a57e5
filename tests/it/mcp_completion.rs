//! `completion/complete` through the real server over Streamable HTTP: MRNs, NPIs and provider names by
//! argument name, scoped by the same policy as the tools (a patient client completes only its own MRN),
//! audited; and `logging/setLevel` accepted with an empty result.

use ehr_mcp::store::audit::AuditFilter;
use serde_json::{Value, json};

use crate::mcp_support::{McpApp, PROVIDER_NPI, spawn_mcp_app};

async fn complete(mcp: &McpApp, token: &str, argument: &str, value: &str) -> Value {
    mcp.rpc(
        token,
        "completion/complete",
        json!({"ref": {"type": "ref/prompt", "name": "patient_summary"},
               "argument": {"name": argument, "value": value}}),
    )
    .await
}

fn values(answer: &Value) -> Vec<String> {
    answer["result"]["completion"]["values"]
        .as_array()
        .unwrap_or_else(|| panic!("no values in {answer}"))
        .iter()
        .map(|value| value.as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn completion_offers_what_the_caller_may_open() {
    let mcp = spawn_mcp_app(&[]).await;
    let doctor = mcp.token("copilot-studio").await;
    assert_eq!(
        values(&complete(&mcp, &doctor, "mrn", "mrn0").await),
        ["MRN001", "MRN002"]
    );
    assert_eq!(
        values(&complete(&mcp, &doctor, "patient_mrn", "MRN002").await),
        ["MRN002"]
    );
    assert_eq!(
        values(&complete(&mcp, &doctor, "provider_npi", "123").await),
        [PROVIDER_NPI]
    );
    assert_eq!(
        values(&complete(&mcp, &doctor, "provider", "smi").await),
        ["Dr. Sarah Smith"]
    );
    assert!(values(&complete(&mcp, &doctor, "mrn", "MRN%").await).is_empty());
    let unknown = complete(&mcp, &doctor, "arg1", "x").await;
    assert!(values(&unknown).is_empty(), "{unknown}");

    let patient = mcp.token("patient-portal").await;
    assert_eq!(
        values(&complete(&mcp, &patient, "mrn", "MRN").await),
        ["MRN001"]
    );
    assert!(values(&complete(&mcp, &patient, "mrn", "MRN002").await).is_empty());

    let lab = mcp.token("lab-integration").await;
    let refused = complete(&mcp, &lab, "npi", "1").await;
    assert_eq!(refused["error"]["code"], -32600, "{refused}");
    assert_eq!(refused["error"]["data"]["code"], "forbidden", "{refused}");

    let rows = mcp
        .app
        .db
        .store
        .query_audit(&AuditFilter {
            action: Some("completion/complete".to_owned()),
            limit: 100,
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(
        rows.len(),
        8,
        "every completion that asks the store is audited"
    );
    mcp.shutdown().await;
}

#[tokio::test]
async fn set_level_is_accepted_with_an_empty_result() {
    let mcp = spawn_mcp_app(&[]).await;
    let token = mcp.token("copilot-studio").await;
    let answer = mcp
        .rpc(&token, "logging/setLevel", json!({"level": "debug"}))
        .await;
    assert_eq!(answer["result"], json!({}), "{answer}");
    mcp.shutdown().await;
}
