//! Keys at rest (#9 item 4): the private signing key is stored sealed with the key-encryption key, so a
//! copy of the database yields no key that signs a token the server accepts; clear keys of an older
//! database are sealed at start-up; `serve` without a KEK (outside `--demo`) stops with a clear error;
//! `keys rewrap` moves every key to a new KEK.

use std::process::Command;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

use crate::support::{TEST_KEK, TestDb, spawn_app_on};

async fn stored_privates(db: &TestDb) -> Vec<(String, String)> {
    sqlx::query_as::<_, (String, String)>("SELECT kid, private_pem FROM signing_keys")
        .fetch_all(db.store.pool())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copied_database_yields_no_usable_signing_key() {
    let db = TestDb::for_app().await;
    let app = spawn_app_on(db, &[]).await;
    let jwks: serde_json::Value = reqwest::get(app.url("/.well-known/jwks.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kid = jwks["keys"][0]["kid"].as_str().unwrap().to_owned();
    let rows = stored_privates(&app.db).await;
    assert_eq!(rows.len(), 1);
    let (stored_kid, private) = &rows[0];
    assert_eq!(stored_kid, &kid);
    // What another party reading the database gets: no PEM, nothing a JWT library can sign with.
    assert!(private.starts_with("ehr-mcp-sealed:v1:"), "{private:.40}");
    assert!(!private.contains("PRIVATE KEY"));
    assert!(EncodingKey::from_ec_pem(private.as_bytes()).is_err());
    // A key guessed from the row's bytes does not open it, nor does any other KEK.
    let other = ehr_mcp::auth::key_encryption::KeyEncryptionKey::parse(
        &ehr_mcp::auth::key_encryption::KeyEncryptionKey::generate_text(),
        "other",
    )
    .unwrap();
    assert!(other.open(&kid, private).is_err());
    // A token signed with any key the attacker can make is refused by the server.
    let forged_key = EncodingKey::from_ec_pem(
        ehr_mcp::auth::keys::generate_es256(None)
            .unwrap()
            .private_pem
            .as_bytes(),
    )
    .unwrap();
    let now = chrono::Utc::now().timestamp();
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid.clone());
    header.typ = Some("at+jwt".to_owned());
    let forged = jsonwebtoken::encode(
        &header,
        &json!({"iss": app.base_url, "aud": app.url("/mcp"), "sub": "admin", "exp": now + 600,
                "iat": now, "nbf": now, "jti": "forged", "client_id": "admin", "scope": "admin:clients",
                "role": "admin", "app_id": "admin", "app_name": "admin"}),
        &forged_key,
    )
    .unwrap();
    let refused = reqwest::Client::new()
        .post(app.url("/mcp"))
        .bearer_auth(&forged)
        .header("Content-Type", "application/json")
        .header("Accept", "application/json, text/event-stream")
        .body(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clear_keys_of_an_older_database_are_sealed_at_start_and_keep_their_kid() {
    let db = TestDb::for_app().await;
    let clear = ehr_mcp::auth::keys::generate_es256(None).unwrap();
    assert!(clear.private_pem.contains("PRIVATE KEY"));
    db.store.insert_signing_key(&clear).await.unwrap();
    let app = spawn_app_on(db, &[]).await;
    let rows = stored_privates(&app.db).await;
    assert_eq!(rows.len(), 1, "no second key generated");
    assert_eq!(rows[0].0, clear.kid);
    assert!(rows[0].1.starts_with("ehr-mcp-sealed:v1:"));
    let kek = crate::auth_support::test_kek();
    assert_eq!(kek.open(&clear.kid, &rows[0].1).unwrap(), clear.private_pem);
    app.shutdown().await;
}

fn ehr_mcp(database_url: &str, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ehr-mcp"));
    command
        .args(args)
        .env("DATABASE_URL", database_url)
        .env_remove("EHR_MCP_KEY_ENCRYPTION_KEY")
        .env_remove("EHR_MCP_KEY_ENCRYPTION_KEY_FILE");
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("run ehr-mcp")
}

#[test]
fn serve_without_a_kek_stops_with_a_clear_error_and_keys_rewrap_moves_to_a_new_kek() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("ehr.db").display());
    let missing = ehr_mcp(&url, &["serve", "--port", "0"], &[]);
    assert_eq!(missing.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(stderr.contains("EHR_MCP_KEY_ENCRYPTION_KEY"), "{stderr}");
    assert!(stderr.contains("keys generate-kek"), "{stderr}");

    let generated = ehr_mcp(&url, &["keys", "generate-kek"], &[]);
    assert!(generated.status.success());
    let new_kek = String::from_utf8_lossy(&generated.stdout).trim().to_owned();
    let new = ehr_mcp::auth::key_encryption::KeyEncryptionKey::parse(&new_kek, "new").unwrap();

    let current = [("EHR_MCP_KEY_ENCRYPTION_KEY", TEST_KEK)];
    let rotated = ehr_mcp(&url, &["keys", "rotate"], &current);
    assert!(
        rotated.status.success(),
        "{}",
        String::from_utf8_lossy(&rotated.stderr)
    );
    let rewrapped = ehr_mcp(
        &url,
        &["keys", "rewrap"],
        &[
            ("EHR_MCP_KEY_ENCRYPTION_KEY", TEST_KEK),
            ("EHR_MCP_NEW_KEY_ENCRYPTION_KEY", &new_kek),
        ],
    );
    assert!(
        rewrapped.status.success(),
        "{}",
        String::from_utf8_lossy(&rewrapped.stderr)
    );
    assert!(String::from_utf8_lossy(&rewrapped.stdout).contains(new.id()));
    // The old KEK no longer opens the keys: rotating with it is refused, naming both KEK ids.
    let stale = ehr_mcp(&url, &["keys", "rotate"], &current);
    assert!(!stale.status.success());
    let stale_error = String::from_utf8_lossy(&stale.stderr);
    assert!(stale_error.contains(new.id()), "{stale_error}");
    let fresh = ehr_mcp(
        &url,
        &["keys", "rotate"],
        &[("EHR_MCP_KEY_ENCRYPTION_KEY", &new_kek)],
    );
    assert!(
        fresh.status.success(),
        "{}",
        String::from_utf8_lossy(&fresh.stderr)
    );
}
