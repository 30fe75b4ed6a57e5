//! Token and session hygiene (#9 item 9): `iat` in the future beyond the leeway and `exp − iat` beyond the
//! accepted maximum are refused even when correctly signed; only low-S ECDSA signatures are issued and
//! accepted; a `private_key_jwt` client has no working secret; an `/mcp` session belongs to the client
//! that opened it (another client can neither use nor DELETE it).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::elliptic_curve::scalar::IsHigh;
use serde_json::{Value, json};

use crate::auth_support::{
    es256_signature, http_origin, low_s, register, register_with, service, test_kek,
};
use crate::mcp_support::spawn_mcp_app;
use crate::support::TestDb;
use ehr_mcp::auth::AuthError;
use ehr_mcp::domain::access::Role;

async fn issue(
    auth: &ehr_mcp::auth::AuthService,
    client: &ehr_mcp::auth::RegisteredClient,
) -> String {
    auth.issue_for_client_secret(
        client.client_id.as_str(),
        client.client_secret.expose(),
        None,
        None,
        http_origin("10.2.2.2"),
    )
    .await
    .expect("issue")
    .access_token
}

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

#[tokio::test]
async fn correctly_signed_tokens_with_bad_times_or_a_high_s_signature_are_refused() {
    let db = TestDb::sqlite().await;
    let client = register(&db.store, Role::Doctor, "read:patients").await;
    let auth = service(&db.store, None).await;
    let token = issue(&auth, &client).await;
    assert!(auth.validate(&token).await.is_ok());
    // The server's own key, opened with the KEK, to sign tokens the server would otherwise accept.
    let (kid, sealed): (String, String) =
        sqlx::query_as("SELECT kid, private_pem FROM signing_keys WHERE retired_at IS NULL")
            .fetch_one(db.store.pool())
            .await
            .unwrap();
    let key = EncodingKey::from_ec_pem(test_kek().open(&kid, &sealed).unwrap().as_bytes()).unwrap();
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid);
    header.typ = Some("at+jwt".to_owned());
    // Re-signed in the low-S form, as the server signs.
    let resign = |claims: &Value| low_s(jsonwebtoken::encode(&header, claims, &key).unwrap());
    let now = chrono::Utc::now().timestamp();
    let mut claims = claims_of(&token);
    claims["jti"] = json!("resigned-ok");
    let resigned = resign(&claims);
    assert!(auth.validate(&resigned).await.is_ok(), "control");
    let refused = |result: Result<ehr_mcp::auth::Principal, AuthError>, what: &str| match result {
        Err(AuthError::Unauthenticated(reason)) => reason,
        other => panic!("{what}: {:?}", other.map(|p| p.client_id.to_string())),
    };

    let mut future = claims.clone();
    future["iat"] = json!(now + 3600);
    future["jti"] = json!("future");
    let reason = refused(auth.validate(&resign(&future)).await, "iat an hour ahead");
    assert!(reason.contains("future"), "{reason}");

    let mut long = claims.clone();
    long["exp"] = json!(now + 100 * 365 * 86_400);
    long["jti"] = json!("long");
    let reason = refused(auth.validate(&resign(&long)).await, "exp 100 years ahead");
    assert!(reason.contains("lifetime"), "{reason}");

    // Issued signatures are low-S; the high-S twin of a valid signature is refused.
    for _ in 0..16 {
        let token = issue(&auth, &client).await;
        let signature = es256_signature(&token);
        assert!(!bool::from(signature.s().is_high()), "issued high-S");
        let (r, s) = signature.split_scalars();
        let high = p256::ecdsa::Signature::from_scalars(r.to_bytes(), (-*s).to_bytes()).unwrap();
        assert!(bool::from(high.s().is_high()));
        let signed = token.rsplit_once('.').unwrap().0;
        let twin = format!("{signed}.{}", URL_SAFE_NO_PAD.encode(high.to_bytes()));
        let reason = refused(auth.validate(&twin).await, "high-S twin");
        assert!(reason.contains("high-S"), "{reason}");
    }
}

#[tokio::test]
async fn a_private_key_jwt_client_has_no_working_secret() {
    let db = TestDb::sqlite().await;
    let public = ehr_mcp::auth::keys::generate_es256(None)
        .unwrap()
        .public_jwk;
    let jwks = json!({"keys": [serde_json::from_str::<Value>(&public).unwrap()]}).to_string();
    let client = register_with(&db.store, Role::System, "read:labs", Some(jwks), None).await;
    let auth = service(&db.store, None).await;
    let outcome = auth
        .issue_for_client_secret(
            client.client_id.as_str(),
            client.client_secret.expose(),
            None,
            None,
            http_origin("10.3.3.3"),
        )
        .await;
    assert!(
        matches!(outcome, Err(AuthError::InvalidClient(_))),
        "{:?}",
        outcome.map(|t| t.scope)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mcp_session_belongs_to_the_client_that_opened_it() {
    let mcp = spawn_mcp_app(&[]).await;
    let owner = mcp.token("copilot-studio").await;
    let other = mcp.token("hospital-ehr-app").await;
    let post = |token: &str, session: Option<&str>, body: Value| {
        let mut request = reqwest::Client::new()
            .post(mcp.mcp_url())
            .bearer_auth(token)
            .header("Accept", "application/json, text/event-stream")
            .header("Content-Type", "application/json")
            .header("MCP-Protocol-Version", "2025-06-18")
            .body(body.to_string());
        if let Some(session) = session {
            request = request.header("Mcp-Session-Id", session);
        }
        request.send()
    };
    let init = post(
        &owner,
        None,
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"}}}),
    )
    .await
    .unwrap();
    assert_eq!(init.status(), 200);
    let session = init.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    drop(init);
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let accepted = post(&owner, Some(&session), initialized.clone())
        .await
        .unwrap();
    assert!(accepted.status().is_success(), "{}", accepted.status());

    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    let foreign = post(&other, Some(&session), list.clone()).await.unwrap();
    assert_eq!(
        foreign.status(),
        404,
        "another client cannot use the session"
    );
    let delete = |token: &str| {
        reqwest::Client::new()
            .delete(mcp.mcp_url())
            .bearer_auth(token)
            .header("Mcp-Session-Id", &session)
            .header("MCP-Protocol-Version", "2025-06-18")
            .send()
    };
    assert_eq!(delete(&other).await.unwrap().status(), 404);
    let still = post(&owner, Some(&session), list).await.unwrap();
    assert_eq!(still.status(), 200, "the owner's session survived");
    drop(still);
    assert!(delete(&owner).await.unwrap().status().is_success());
    mcp.shutdown().await;
}
