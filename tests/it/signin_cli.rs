//! The sign-in commands of the real binary (issue #10): `client register --redirect-uri --grant-types`
//! (Copilot Studio "Manual"), `client set-redirects`, and `seed --demo` writing `demo_users.json`.

use std::process::{Command, Output};

use serde_json::Value;

fn ehr_mcp(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ehr-mcp"))
        .current_dir(dir)
        .arg("--database-url")
        .arg(format!("sqlite://{}", dir.join("ehr.db").display()))
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("EHR_MCP_CREDENTIALS_FILE")
        .output()
        .expect("run ehr-mcp")
}

fn json_of(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("JSON")
}

#[test]
fn operators_pre_register_clients_with_redirect_uris_and_change_them_later() {
    let dir = tempfile::tempdir().unwrap();
    let registered = json_of(&ehr_mcp(
        dir.path(),
        &[
            "client",
            "register",
            "--app-id",
            "copilot-manual",
            "--app-name",
            "Copilot Studio (manual)",
            "--role",
            "doctor",
            "--scopes",
            "read:patients read:labs",
            "--redirect-uri",
            "https://global.consent.azure-apim.net/redirect",
            "--grant-types",
            "authorization_code,refresh_token",
        ],
    ));
    assert_eq!(
        registered["grant_types"],
        serde_json::json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(
        registered["token_endpoint_auth_method"],
        "client_secret_basic"
    );
    assert!(registered["client_secret"].is_string());
    let client_id = registered["client_id"].as_str().unwrap();

    let changed = json_of(&ehr_mcp(
        dir.path(),
        &[
            "client",
            "set-redirects",
            client_id,
            "--redirect-uri",
            "https://global.consent.azure-apim.net/redirect/cr123-5fehr",
        ],
    ));
    assert_eq!(
        changed["redirect_uris"][0],
        "https://global.consent.azure-apim.net/redirect/cr123-5fehr"
    );

    for refused in [
        vec!["--redirect-uri", "http://evil.example/cb"],
        vec![
            "--redirect-uri",
            "https://a.example/cb",
            "--grant-types",
            "password",
        ],
        vec!["--grant-types", "authorization_code"],
    ] {
        let mut args = vec!["client", "set-redirects", client_id];
        args.extend(refused.iter().copied());
        let output = ehr_mcp(dir.path(), &args);
        assert_eq!(output.status.code(), Some(2), "{refused:?}");
    }
}

#[test]
fn seed_demo_writes_the_demo_users_file_once() {
    let dir = tempfile::tempdir().unwrap();
    let output = ehr_mcp(dir.path(), &["seed", "--demo"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let path = dir.path().join("demo_users.json");
    let users: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let roles: Vec<&str> = users.iter().filter_map(|u| u["role"].as_str()).collect();
    assert_eq!(roles, ["doctor", "nurse", "patient", "admin"]);
    assert_eq!(users[2]["patient_mrn"], "MRN001");
    assert!(
        users
            .iter()
            .all(|u| u["password"].as_str().unwrap().len() >= 40)
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let listed = Command::new(env!("CARGO_BIN_EXE_ehr-mcp"))
        .current_dir(dir.path())
        .args([
            "--database-url",
            &format!("sqlite://{}", dir.path().join("ehr.db").display()),
        ])
        .args(["user", "list"])
        .output()
        .unwrap();
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 4);
    // A second run changes nothing (and does not overwrite the file).
    let before = std::fs::read_to_string(&path).unwrap();
    assert!(ehr_mcp(dir.path(), &["seed", "--demo"]).status.success());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), before);
}
