//! Client ID metadata documents (issue #10): an https `client_id` is fetched and used as the client; a
//! document on a private or loopback address is refused unless the operator allows it.

use axum::Router;
use axum::routing::get;
use ehr_mcp::domain::access::Role;
use serde_json::json;

use crate::mcp_support::spawn_mcp_app;
use crate::signin_support::*;

/// Serves `document` at `/client.json` on 127.0.0.1; returns the URL.
async fn serve_document(document: impl Fn(&str) -> serde_json::Value) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/client.json", listener.local_addr().unwrap());
    let body = document(&url).to_string();
    let router = Router::new().route("/client.json", get(move || async move { body }));
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

#[tokio::test]
async fn a_metadata_document_on_a_private_address_is_refused() {
    let app = spawn_mcp_app(&[]).await;
    let (_, challenge) = pkce();
    for client_id in [
        "https://127.0.0.1:1/client.json",
        "https://10.0.0.1/client.json",
        "https://[::1]/client.json",
        "https://localhost/client.json",
    ] {
        let response = get_authorize(&app, &authorize_params(client_id, &challenge, None)).await;
        assert_eq!(response.status(), 400, "{client_id}");
        assert!(response.headers().get("location").is_none());
        let html = response.text().await.unwrap();
        assert!(html.contains("private or loopback"), "{html}");
    }
    app.shutdown().await;
}

#[tokio::test]
async fn a_metadata_document_client_signs_a_user_in_when_the_operator_allows_private_addresses() {
    let app = spawn_mcp_app(&["--cimd-allow-private"]).await;
    add_user(&app, "dr.who", Role::Doctor, None).await;
    let url = serve_document(|url| {
        json!({
            "client_id": url,
            "client_name": "Metadata Document Agent",
            "redirect_uris": [REDIRECT],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
        })
    })
    .await;
    let (verifier, challenge) = pkce();
    let params = authorize_params(&url, &challenge, None);
    let mut browser = Browser::new(&app);
    let consent = browser.sign_in(&params, "dr.who").await;
    assert!(consent.contains("Metadata Document Agent"), "{consent}");
    let back = browser.decide(&params, &consent, "allow").await;
    let code = query_param(&back, "code").unwrap();
    let (status, body) = exchange(&app, &url, &code, &verifier).await;
    assert_eq!(status, 200, "{body}");
    let claims = claims(body["access_token"].as_str().unwrap());
    assert!(claims["client_id"].as_str().unwrap().starts_with("cimd-"));
    assert_eq!(claims["sub"], "dr.who");

    // A document whose client_id is not its own URL is refused.
    let liar = serve_document(
        |_| json!({"client_id": "https://claude.ai/x", "redirect_uris": [REDIRECT]}),
    )
    .await;
    let response = get_authorize(&app, &authorize_params(&liar, &challenge, None)).await;
    assert_eq!(response.status(), 400);
    app.shutdown().await;
}
