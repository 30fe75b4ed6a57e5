//! Startup: bad settings are one-line configuration errors (exit 2) naming the setting.

#[test]
fn an_out_of_range_limit_is_a_configuration_error_naming_the_setting() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_ehr-mcp"))
        .args(["serve", "--port", "0", "--max-connections", "0"])
        .output()
        .expect("run ehr-mcp");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--max-connections"), "{stderr}");
}

#[test]
fn a_missing_tls_certificate_is_a_configuration_error_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem").display().to_string();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_ehr-mcp"))
        .args([
            "serve",
            "--port",
            "0",
            "--tls-cert",
            &missing,
            "--tls-key",
            &missing,
        ])
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", dir.path().join("ehr.db").display()),
        )
        .output()
        .expect("run ehr-mcp");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("EHR_MCP_TLS_CERT"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
}
