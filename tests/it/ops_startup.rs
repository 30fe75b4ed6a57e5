//! Startup: bad settings are one-line configuration errors (exit 2) naming the setting.

#[test]
fn an_out_of_range_limit_is_a_configuration_error_naming_the_setting() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_ehr-mcp"))
        .args(["serve", "--port", "0", "--max-connections", "0"])
        .env("EHR_MCP_KEY_ENCRYPTION_KEY", crate::support::TEST_KEK)
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
        .env("EHR_MCP_KEY_ENCRYPTION_KEY", crate::support::TEST_KEK)
        .output()
        .expect("run ehr-mcp");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("EHR_MCP_TLS_CERT"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
}

fn ehr_mcp(args: &[&str], database_url: &str) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_ehr-mcp"))
        .args(args)
        .env("DATABASE_URL", database_url)
        .env("EHR_MCP_KEY_ENCRYPTION_KEY", crate::support::TEST_KEK)
        .env_remove("SERVER_PORT")
        .env_remove("SERVER_HOST")
        .env_remove("EHR_MCP_PUBLIC_URL")
        .output()
        .expect("run ehr-mcp")
}

fn sqlite_in(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}", dir.path().join("ehr.db").display())
}

#[test]
fn a_busy_port_names_the_address_and_the_settings() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port().to_string();
    let dir = tempfile::tempdir().unwrap();
    let output = ehr_mcp(
        &["serve", "--host", "127.0.0.1", "--port", &port],
        &sqlite_in(&dir),
    );
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&format!("127.0.0.1:{port}")), "{stderr}");
    assert!(
        stderr.contains("--port") && stderr.contains("SERVER_PORT"),
        "{stderr}"
    );
}

#[test]
fn a_bad_host_names_the_address_and_the_settings() {
    let dir = tempfile::tempdir().unwrap();
    let output = ehr_mcp(
        &["serve", "--host", "203.0.113.77", "--port", "0"],
        &sqlite_in(&dir),
    );
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("203.0.113.77:0"), "{stderr}");
    assert!(
        stderr.contains("--host") && stderr.contains("SERVER_HOST"),
        "{stderr}"
    );
}

#[test]
fn a_missing_sqlite_directory_is_named_once() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-dir");
    let url = format!("sqlite://{}", missing.join("ehr.db").display());
    let output = ehr_mcp(&["migrate"], &url);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert_eq!(
        stderr.matches(&*missing.display().to_string()).count(),
        2,
        "{stderr}"
    );
    assert!(stderr.contains("mkdir -p"), "{stderr}");
}

#[test]
fn an_unreachable_postgres_names_the_host_and_fails_fast() {
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    let started = std::time::Instant::now();
    let output = ehr_mcp(
        &["migrate"],
        &format!("postgres://user:hunter2@127.0.0.1:{port}/ehr"),
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(8));
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&format!("127.0.0.1:{port}")), "{stderr}");
    assert!(!stderr.contains("hunter2"), "no password: {stderr}");
}

#[test]
fn a_public_url_that_is_not_a_url_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for bad in ["not-a-url", "https://", "ftp://x.example"] {
        let output = ehr_mcp(
            &["serve", "--port", "0", "--public-url", bad],
            &sqlite_in(&dir),
        );
        assert_eq!(output.status.code(), Some(2), "{bad}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("--public-url"), "{stderr}");
    }
}

#[test]
fn the_banner_shows_the_bound_address_the_mcp_url_and_the_token_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_in(&dir);
    let server = crate::ops_binary::BinaryServer::start(
        &["--public-url", "https://ehr.example.org"],
        &[("DATABASE_URL", url.as_str())],
    );
    assert!(
        server.base_url.starts_with("http://127.0.0.1:"),
        "bound address first: {}",
        server.base_url
    );
    let log = server.log();
    assert!(log.contains("https://ehr.example.org/mcp"), "{log}");
    assert!(log.contains("wss://ehr.example.org/ws"), "{log}");
    assert!(log.contains("https://ehr.example.org/oauth/token"), "{log}");
    let (status, _) = server.stop_with("TERM");
    assert!(status.success());
}
