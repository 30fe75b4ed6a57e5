//! A client in the earlier system's style on the earlier system's own data: the seed export imported, then
//! WebSocket with no `initialize`, `authenticate`, and `access_token` in every call.

use serde_json::json;

use crate::mcp_client::{WsClient, success};
use crate::mcp_support::spawn_on_seed_export;
use crate::support::TestDb;

#[tokio::test]
async fn the_earlier_systems_client_works_on_the_imported_seed_export() {
    let mcp = spawn_on_seed_export(TestDb::sqlite().await).await;
    let doctor = mcp.client("copilot-studio").clone();
    let mut client = WsClient::connect(&mcp.app, "/", None).await;
    let auth = success(
        &client
            .call_tool(
                "authenticate",
                json!({"client_id": doctor["client_id"], "client_secret": doctor["client_secret"],
                       "app_id": doctor["app_id"]}),
            )
            .await,
    );
    let token = auth["access_token"].as_str().unwrap().to_owned();
    let found = success(
        &client
            .call_tool(
                "search_patients",
                json!({"search_term": "John", "access_token": token}),
            )
            .await,
    );
    assert!(found["count"].as_u64().unwrap() >= 1, "{found}");
    let patient = success(
        &client
            .call_tool(
                "get_patient",
                json!({"mrn": "MRN001", "access_token": token}),
            )
            .await,
    );
    assert_eq!(patient["patient"]["first_name"], "John");
    assert_eq!(patient["patient"]["ssn"], "***-**-1234");
    for tool in [
        "get_appointments",
        "get_medications",
        "get_vital_signs",
        "get_lab_results",
    ] {
        let body = success(
            &client
                .call_tool(tool, json!({"mrn": "MRN001", "access_token": token}))
                .await,
        );
        assert_eq!(body["mrn"], "MRN001", "{tool}");
        assert!(body["count"].as_u64().unwrap() >= 1, "{tool}: {body}");
    }
    let allergies = success(
        &client
            .call_tool(
                "get_allergies",
                json!({"mrn": "MRN002", "access_token": token}),
            )
            .await,
    );
    assert_eq!(allergies["mrn"], "MRN002");
    client.close().await;
    mcp.shutdown().await;
}
