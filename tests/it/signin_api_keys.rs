//! API keys (issue #10): accepted as `Authorization: Bearer` and `X-API-Key` on `/mcp` and on the
//! WebSocket upgrade, acting as their client; refused at once after revocation or when the client is
//! disabled; stored hashed.

use ehr_mcp::auth::{api_keys, clients};
use ehr_mcp::domain::ids::ClientId;
use serde_json::{Value, json};

use crate::mcp_support::spawn_mcp_app;

async fn get_patient(url: &str, header: (&str, String)) -> reqwest::Response {
    reqwest::Client::new()
        .post(url)
        .header("Accept", "application/json, text/event-stream")
        .header("Content-Type", "application/json")
        .header(header.0, header.1)
        .body(
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                   "params": {"name": "get_patient", "arguments": {"mrn": "MRN001"}}})
            .to_string(),
        )
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_api_key_acts_as_its_client_until_revoked() {
    let mcp = spawn_mcp_app(&[]).await;
    let store = &mcp.app.db.store;
    let client_id = ClientId::parse("copilot-studio").unwrap();
    let (info, key) = api_keys::create(store, &client_id, "copilot", Some(30))
        .await
        .expect("create");
    assert!(key.starts_with("ehrk_"));
    let stored = store.find_api_key(&info.key_id).await.unwrap().unwrap();
    assert!(
        !stored.key_hash.contains(&key[38..]),
        "only a hash is stored"
    );

    for header in [
        ("Authorization", format!("Bearer {key}")),
        ("X-API-Key", key.clone()),
    ] {
        let answer = get_patient(&mcp.mcp_url(), header).await;
        assert_eq!(answer.status(), 200);
        let body: Value = answer.json().await.unwrap();
        assert_eq!(
            body["result"]["structuredContent"]["patient"]["mrn"], "MRN001",
            "{body}"
        );
    }
    let wrong = format!("{}x", &key[..key.len() - 1]);
    assert_eq!(
        get_patient(&mcp.mcp_url(), ("X-API-Key", wrong))
            .await
            .status(),
        401
    );

    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
            mcp.ws_url(),
        )
        .unwrap();
    request
        .headers_mut()
        .insert("x-api-key", key.parse().unwrap());
    assert!(
        tokio_tungstenite::connect_async(request).await.is_ok(),
        "WebSocket upgrade with a key"
    );

    let listed = api_keys::list(store, Some(&client_id)).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].last_used_at.is_some());

    api_keys::revoke(store, &info.key_id).await.unwrap();
    let refused = get_patient(&mcp.mcp_url(), ("X-API-Key", key.clone())).await;
    assert_eq!(refused.status(), 401, "a revoked key stops at once");
    assert!(api_keys::revoke(store, &info.key_id).await.is_err());

    let (_, second) = api_keys::create(store, &client_id, "", None).await.unwrap();
    clients::set_active(store, &client_id, false).await.unwrap();
    let disabled = get_patient(
        &mcp.mcp_url(),
        ("Authorization", format!("Bearer {second}")),
    )
    .await;
    assert_eq!(
        disabled.status(),
        401,
        "a disabled client's key stops at once"
    );
    mcp.shutdown().await;
}
