//! `ehr-mcp doctor` run as a user would, one finding at a time: each problem is named with its fix, a
//! failed check exits 1, warnings alone exit 0. The databases are real (SQLite files, PostgreSQL when its
//! URL is set), the busy port is a real listener or a running `ehr-mcp serve`.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use crate::support::TestDb;

/// The outcome of one `ehr-mcp doctor` run: exit code and its report (stdout).
struct Doctor {
    code: Option<i32>,
    report: String,
}

impl Doctor {
    /// `ehr-mcp doctor <args>` in `dir` (relative files such as the credentials file and `.env` live there).
    fn run(dir: &std::path::Path, database_url: &str, args: &[&str]) -> Doctor {
        let output = Command::new(env!("CARGO_BIN_EXE_ehr-mcp"))
            .arg("doctor")
            .args(args)
            .current_dir(dir)
            .env("DATABASE_URL", database_url)
            .env("EHR_MCP_KEY_ENCRYPTION_KEY", crate::support::TEST_KEK)
            .env_remove("SERVER_PORT")
            .env_remove("SERVER_HOST")
            .env_remove("EHR_MCP_PUBLIC_URL")
            .env_remove("EHR_MCP_TLS_CERT")
            .env_remove("EHR_MCP_TLS_KEY")
            .env_remove("EHR_MCP_CREDENTIALS_FILE")
            .output()
            .expect("run ehr-mcp doctor");
        let report = String::from_utf8_lossy(&output.stdout).into_owned();
        Doctor {
            code: output.status.code(),
            report,
        }
    }

    /// The report line starting with `level` that contains `text`, and the line after it (its fix).
    fn finding(&self, level: &str, text: &str) -> String {
        let lines: Vec<&str> = self.report.lines().collect();
        let index = lines
            .iter()
            .position(|line| line.starts_with(level) && line.contains(text))
            .unwrap_or_else(|| panic!("no {level:?} line with {text:?} in:\n{}", self.report));
        let fix = lines
            .get(index + 1)
            .filter(|line| line.trim_start().starts_with("fix:"))
            .copied()
            .unwrap_or_default();
        format!("{}\n{fix}", lines[index])
    }
}

fn free_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port().to_string()
}

fn migrated_sqlite(dir: &tempfile::TempDir) -> String {
    let url = format!("sqlite://{}", dir.path().join("ehr.db").display());
    let status = Command::new(env!("CARGO_BIN_EXE_ehr-mcp"))
        .arg("migrate")
        .env("DATABASE_URL", &url)
        .output()
        .expect("run ehr-mcp migrate")
        .status;
    assert!(status.success());
    url
}

#[test]
fn a_good_setup_passes_every_check() {
    let dir = tempfile::tempdir().unwrap();
    let url = migrated_sqlite(&dir);
    let port = free_port();
    let doctor = Doctor::run(dir.path(), &url, &["--port", &port]);
    assert_eq!(doctor.code, Some(0), "{}", doctor.report);
    doctor.finding("ok", &format!("listen address 127.0.0.1:{port} is free"));
    doctor.finding("ok", "database accepts writes");
    doctor.finding("ok", "migrations: all");
    assert!(
        doctor.report.ends_with("no problems found\n"),
        "{}",
        doctor.report
    );
}

#[test]
fn a_busy_port_is_named_with_the_settings_that_move_it() {
    let dir = tempfile::tempdir().unwrap();
    let url = migrated_sqlite(&dir);
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port().to_string();
    let doctor = Doctor::run(dir.path(), &url, &["--port", &port]);
    assert_eq!(doctor.code, Some(1), "{}", doctor.report);
    let finding = doctor.finding(
        "FAIL",
        &format!("127.0.0.1:{port} is in use by another program"),
    );
    assert!(
        finding.contains("--port") && finding.contains("SERVER_PORT"),
        "{finding}"
    );

    // A running ehr-mcp on the port is recognised by its /healthz.
    let server = crate::ops_binary::BinaryServer::start(&[], &[("DATABASE_URL", url.as_str())]);
    let port = server.port().to_string();
    let doctor = Doctor::run(dir.path(), &url, &["--port", &port]);
    assert_eq!(doctor.code, Some(1), "{}", doctor.report);
    doctor.finding("FAIL", "is ehr-mcp already running?");
    let (status, _) = server.stop_with("TERM");
    assert!(status.success());
}

#[test]
fn a_host_that_is_not_this_machines_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let url = migrated_sqlite(&dir);
    let doctor = Doctor::run(
        dir.path(),
        &url,
        &["--host", "203.0.113.77", "--port", "7777"],
    );
    assert_eq!(doctor.code, Some(1), "{}", doctor.report);
    let finding = doctor.finding("FAIL", "203.0.113.77 is not an address of this machine");
    assert!(finding.contains("SERVER_HOST"), "{finding}");
}

#[test]
fn an_unreachable_database_is_named_without_its_password() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let url = format!("postgres://ehr:hunter2@127.0.0.1:{port}/ehr");
    let doctor = Doctor::run(dir.path(), &url, &["--port", "0"]);
    assert_eq!(doctor.code, Some(1), "{}", doctor.report);
    let finding = doctor.finding("FAIL", "database unreachable");
    assert!(finding.contains(&format!("127.0.0.1:{port}")), "{finding}");
    assert!(finding.contains("DATABASE_URL"), "{finding}");
    assert!(!doctor.report.contains("hunter2"), "{}", doctor.report);
}

#[test]
fn a_database_that_refuses_writes_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let url = migrated_sqlite(&dir);
    let doctor = Doctor::run(dir.path(), &format!("{url}?mode=ro"), &["--port", "0"]);
    assert_eq!(doctor.code, Some(1), "{}", doctor.report);
    let finding = doctor.finding("FAIL", "database does not accept writes");
    assert!(finding.contains("readonly"), "{finding}");
    assert!(finding.contains("mode=ro"), "the fix: {finding}");
}

#[tokio::test]
async fn a_read_only_postgres_is_reported() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let name = db.url.rsplit('/').next().expect("database name");
    // The name is generated by the test support from digits and hex only.
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "ALTER DATABASE {name} SET default_transaction_read_only = on"
    )))
    .execute(db.store.pool())
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = db.url.clone();
    let doctor =
        tokio::task::spawn_blocking(move || Doctor::run(dir.path(), &url, &["--port", "0"]))
            .await
            .unwrap();
    assert_eq!(doctor.code, Some(1), "{}", doctor.report);
    let finding = doctor.finding("FAIL", "database does not accept writes");
    assert!(finding.contains("read-only transaction"), "{finding}");
    assert!(finding.contains("standby"), "the fix: {finding}");
    doctor.finding("ok", "migrations: all");
}

#[tokio::test]
async fn missing_pending_unknown_and_changed_migrations_are_told_apart() {
    let dir = tempfile::tempdir().unwrap();
    let fresh = format!("sqlite://{}", dir.path().join("new.db").display());
    let doctor = Doctor::run(dir.path(), &fresh, &["--port", "0"]);
    assert_eq!(doctor.code, Some(0), "a warning only: {}", doctor.report);
    let finding = doctor.finding("warn", "migrations: none applied");
    assert!(finding.contains("ehr-mcp migrate"), "{finding}");
    assert!(
        !dir.path().join("new.db").exists(),
        "doctor creates nothing"
    );

    for db in TestDb::all().await {
        let pool = db.store.pool();
        let last: i64 = sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations")
            .fetch_one(pool)
            .await
            .unwrap();
        sqlx::query("DELETE FROM _sqlx_migrations WHERE version = $1")
            .bind(last)
            .execute(pool)
            .await
            .unwrap();
        let run = |url: String| {
            let dir = dir.path().to_owned();
            tokio::task::spawn_blocking(move || Doctor::run(&dir, &url, &["--port", "0"]))
        };
        let doctor = run(db.url.clone()).await.unwrap();
        assert_eq!(doctor.code, Some(0), "{}", doctor.report);
        let finding = doctor.finding("warn", &format!("migrations pending: {last:04}_"));
        assert!(finding.contains("ehr-mcp migrate"), "{finding}");

        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (9999, 'from the future', TRUE, $1, 0)",
        )
        .bind(vec![0u8; 48])
        .execute(pool)
        .await
        .unwrap();
        sqlx::query("UPDATE _sqlx_migrations SET checksum = $1 WHERE version = 1")
            .bind(vec![1u8; 48])
            .execute(pool)
            .await
            .unwrap();
        let doctor = run(db.url.clone()).await.unwrap();
        assert_eq!(doctor.code, Some(1), "{}", doctor.report);
        let finding = doctor.finding("FAIL", "migrations this binary does not know");
        assert!(
            finding.contains("9999") && finding.contains("newer ehr-mcp"),
            "{finding}"
        );
        doctor.finding("FAIL", "0001_");
    }
}

#[test]
fn secret_files_readable_by_others_are_named_with_the_chmod() {
    let dir = tempfile::tempdir().unwrap();
    let url = migrated_sqlite(&dir);
    let credentials = dir.path().join("oauth_clients_credentials.json");
    std::fs::write(&credentials, "[]").unwrap();
    std::fs::set_permissions(&credentials, std::fs::Permissions::from_mode(0o644)).unwrap();
    let env_file = dir.path().join(".env");
    std::fs::write(
        &env_file,
        "JWT_SECRET_KEY=0123456789abcdef0123456789abcdef\n",
    )
    .unwrap();
    std::fs::set_permissions(&env_file, std::fs::Permissions::from_mode(0o640)).unwrap();
    let doctor = Doctor::run(dir.path(), &url, &["--port", "0"]);
    assert_eq!(doctor.code, Some(1), "{}", doctor.report);
    let finding = doctor.finding(
        "FAIL",
        "oauth_clients_credentials.json is readable by other users",
    );
    assert!(finding.contains("mode 0644"), "{finding}");
    assert!(
        finding.contains("chmod 600 oauth_clients_credentials.json"),
        "{finding}"
    );
    doctor.finding("FAIL", ".env is readable by other users");

    std::fs::set_permissions(&credentials, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::set_permissions(&env_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let doctor = Doctor::run(dir.path(), &url, &["--port", "0"]);
    assert_eq!(doctor.code, Some(0), "{}", doctor.report);
    doctor.finding(
        "ok",
        "oauth_clients_credentials.json is readable by its owner only",
    );
}

#[test]
fn the_public_url_must_match_tls() {
    let dir = tempfile::tempdir().unwrap();
    let url = migrated_sqlite(&dir);
    let tls = crate::ops_tls::SelfSigned::new();
    let (certificate, key) = (tls.certificate_path(), tls.key_path());

    // TLS here, but clients are told http://: they could not talk to it.
    let with_tls = ["--port", "0", "--tls-cert", &certificate, "--tls-key", &key];
    let doctor = Doctor::run(
        dir.path(),
        &url,
        &[&with_tls[..], &["--public-url", "http://ehr.example.org"]].concat(),
    );
    assert_eq!(doctor.code, Some(1), "{}", doctor.report);
    let finding = doctor.finding("FAIL", "is http:// but this server serves TLS only");
    assert!(finding.contains("EHR_MCP_PUBLIC_URL"), "{finding}");
    // The key file was written with the default umask: readable by others.
    doctor.finding("FAIL", "TLS private key");
    doctor.finding("ok", "TLS certificate and key load and match");

    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let doctor = Doctor::run(dir.path(), &url, &with_tls);
    assert_eq!(doctor.code, Some(0), "{}", doctor.report);
    doctor.finding("ok", "public URL https://127.0.0.1:0");

    // Behind a TLS proxy: https public URL without TLS here is fine, and said so.
    let doctor = Doctor::run(
        dir.path(),
        &url,
        &["--port", "0", "--public-url", "https://ehr.example.org"],
    );
    assert_eq!(doctor.code, Some(0), "{}", doctor.report);
    doctor.finding("ok", "a TLS proxy in front");

    // Listening on every address without a public URL: the issuer would be http://0.0.0.0:….
    let doctor = Doctor::run(dir.path(), &url, &["--host", "0.0.0.0", "--port", "0"]);
    assert_eq!(doctor.code, Some(1), "{}", doctor.report);
    doctor.finding(
        "FAIL",
        "defaults to http://0.0.0.0:0, which no client can reach",
    );

    // Plain http on a public name: allowed, with a warning.
    let doctor = Doctor::run(
        dir.path(),
        &url,
        &["--port", "0", "--public-url", "http://ehr.example.org"],
    );
    assert_eq!(doctor.code, Some(0), "{}", doctor.report);
    doctor.finding("warn", "plain http on a non-loopback host");
}
