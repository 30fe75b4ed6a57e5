//! A real browser signs demo users in (issue #10): headless Chromium from the Debian package, driven by
//! Playwright (`playwright-core`, `tests/clients/ts_oauth_browser.mjs`), for a client the official
//! TypeScript MCP SDK registers dynamically and drives (401 → discovery → DCR → PKCE → finishAuth →
//! tools/call) and for a pre-registered confidential client with a refresh. Chromium comes from
//! `apt-get install chromium` (`.ci/run` installs it); the npm packages from `tests/clients/setup.sh`.
//! With `EHR_MCP_SCREENSHOT_DIR` set, the browser saves `login.png` and `consent.png` there (the
//! screenshots in `docs/img/` were taken this way).

use std::path::PathBuf;
use std::time::Duration;

use ehr_mcp::auth::registration::{AuthMethod, save_operator_redirects};
use ehr_mcp::auth::{NewClient, clients};
use ehr_mcp::domain::access::Role;
use serde_json::Value;

use crate::mcp_support::spawn_mcp_app;

fn chromium() -> String {
    let path = std::env::var("EHR_MCP_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
    assert!(
        std::path::Path::new(&path).exists(),
        "Chromium is not installed: apt-get install -y chromium (.ci/run does), or set EHR_MCP_CHROMIUM"
    );
    path
}

#[tokio::test]
async fn a_browser_signs_demo_users_in_for_the_typescript_sdk_and_a_confidential_client() {
    let chromium = chromium();
    let clients_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clients");
    assert!(
        clients_dir.join("node_modules/playwright-core").exists(),
        "playwright-core is not installed: run tests/clients/setup.sh"
    );
    let app = spawn_mcp_app(&[]).await;
    let store = &app.app.db.store;

    // The demo users, as `serve --demo` creates them, read back from demo_users.json.
    let users_file = app._dir.path().join("demo_users.json");
    ehr_mcp::auth::demo::ensure_demo_users(store, &users_file)
        .await
        .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&users_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let demo_users: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(&users_file).unwrap()).unwrap();
    let user = |role: &str| {
        let entry = demo_users.iter().find(|u| u["role"] == role).unwrap();
        (
            entry["username"].as_str().unwrap().to_owned(),
            entry["password"].as_str().unwrap().to_owned(),
        )
    };
    assert_eq!(
        demo_users.iter().find(|u| u["role"] == "patient").unwrap()["patient_mrn"],
        "MRN001"
    );
    let (doctor, doctor_password) = user("doctor");
    let (nurse, nurse_password) = user("nurse");

    // The operator pre-registers a confidential client (what `client register --redirect-uri` does).
    let confidential = clients::register(
        store,
        NewClient {
            app_id: "ward-agent".to_owned(),
            app_name: "Ward agent".to_owned(),
            role: Role::Nurse,
            scopes: "read:patients read:vitals write:vitals".to_owned(),
            patient_mrn: None,
            jwks: None,
            rate_limit: None,
            client_id: None,
        },
    )
    .await
    .unwrap();
    save_operator_redirects(
        store,
        &confidential.client_id,
        &["http://127.0.0.1/callback".to_owned()],
        vec!["authorization_code".to_owned(), "refresh_token".to_owned()],
        AuthMethod::ClientSecretBasic,
    )
    .await
    .unwrap();

    let mut command = tokio::process::Command::new("node");
    command
        .arg(clients_dir.join("ts_oauth_browser.mjs"))
        .args([
            app.app.base_url.as_str(),
            &doctor,
            &doctor_password,
            &nurse,
            &nurse_password,
            confidential.client_id.as_str(),
            confidential.client_secret.expose(),
        ])
        .env("EHR_MCP_CHROMIUM", chromium)
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(180), command.output())
        .await
        .expect("the browser check finished within 180 s")
        .expect("node started");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "browser check failed:\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let summary: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|_| panic!("no JSON summary in:\n{stdout}"));
    assert_eq!(summary["confidential"]["refreshed"], true);
    let sdk_client = summary["sdk"]["client_id"].as_str().unwrap();

    // The server saw it the same way: tokens issued to the SDK's client for the demo doctor.
    let rows = store
        .query_audit(&ehr_mcp::store::audit::AuditFilter {
            client_id: Some(sdk_client.to_owned()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(rows.iter().any(|row| {
        row.action == "token.issue"
            && row.outcome == "success"
            && row
                .detail
                .as_deref()
                .unwrap_or("")
                .contains(&format!("user={doctor}"))
    }));
    assert!(rows.iter().any(|row| row.action == "get_patient"));
    app.shutdown().await;
}
