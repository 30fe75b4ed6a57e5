//! The `seed`, `import` and `export` commands of the real binary, on SQLite files.

use std::process::{Command, Output};

const SEED_EXPORT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/seed_export.json"
);

fn ehr_mcp(database: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ehr-mcp"))
        .arg("--database-url")
        .arg(format!("sqlite://{}", database.display()))
        .args(args)
        .env_remove("DATABASE_URL")
        .output()
        .expect("run ehr-mcp")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn import_export_round_trip_and_refusals_through_the_binary() {
    let dir = tempfile::tempdir().expect("temp dir");
    let first_db = dir.path().join("first.db");
    let export = dir.path().join("export.json");

    let imported = ehr_mcp(&first_db, &["import", SEED_EXPORT]);
    assert!(imported.status.success(), "{}", text(&imported.stderr));
    assert!(text(&imported.stdout).contains(
        "49 providers, 221 patients, 108 appointments, 260 medications, 117 allergies, \
         361 vital signs, 207 lab results"
    ));

    let again = ehr_mcp(&first_db, &["import", SEED_EXPORT]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        text(&again.stderr).contains("--merge"),
        "{}",
        text(&again.stderr)
    );

    let exported = ehr_mcp(&first_db, &["export", export.to_str().expect("path")]);
    assert!(exported.status.success(), "{}", text(&exported.stderr));
    let second_db = dir.path().join("second.db");
    let reimported = ehr_mcp(&second_db, &["import", export.to_str().expect("path")]);
    assert!(reimported.status.success(), "{}", text(&reimported.stderr));

    let bad = dir.path().join("bad.json");
    let mut root: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(SEED_EXPORT).expect("seed")).expect("json");
    root["labs"][0]["results_json"] = "not json".into();
    std::fs::write(&bad, serde_json::to_vec(&root).expect("json")).expect("write");
    let empty_db = dir.path().join("empty.db");
    let refused = ehr_mcp(&empty_db, &["import", bad.to_str().expect("path")]);
    assert_eq!(refused.status.code(), Some(1));
    let message = text(&refused.stderr);
    assert!(
        message.contains("labs[0] (order_id LAB001), field results_json"),
        "{message}"
    );
    let exported_empty = dir.path().join("empty.json");
    ehr_mcp(
        &empty_db,
        &["export", exported_empty.to_str().expect("path")],
    );
    let empty: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&exported_empty).expect("read")).expect("json");
    assert_eq!(
        empty["patients"],
        serde_json::json!([]),
        "nothing was written"
    );
}

#[test]
fn seed_commands_load_demo_and_deterministic_synthetic_data() {
    let dir = tempfile::tempdir().expect("temp dir");
    let demo_db = dir.path().join("demo.db");
    let credentials = dir.path().join("credentials.json");
    let credentials_arg = credentials.to_str().expect("path");
    let demo = ehr_mcp(
        &demo_db,
        &["seed", "--demo", "--credentials-file", credentials_arg],
    );
    assert!(demo.status.success(), "{}", text(&demo.stderr));
    assert!(
        text(&demo.stdout).contains("30 patients"),
        "{}",
        text(&demo.stdout)
    );
    // `seed --demo` adds the demo OAuth clients too, with their credentials file readable by the owner only.
    let clients: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(&credentials).expect("credentials"))
            .expect("json");
    assert_eq!(clients.len(), 7);
    assert_eq!(clients[0]["client_id"], "copilot-studio");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&credentials)
        .expect("metadata")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    let mut exports = Vec::new();
    for name in ["a", "b"] {
        let db = dir.path().join(format!("{name}.db"));
        let seeded = ehr_mcp(&db, &["seed", "--synthetic", "40", "--rng-seed", "9"]);
        assert!(seeded.status.success(), "{}", text(&seeded.stderr));
        assert!(text(&seeded.stdout).contains("40 patients"));
        let file = dir.path().join(format!("{name}.json"));
        ehr_mcp(&db, &["export", file.to_str().expect("path")]);
        exports.push(std::fs::read(&file).expect("export"));
    }
    assert_eq!(exports[0], exports[1], "same N and seed, same data");

    let usage = ehr_mcp(&demo_db, &["seed"]);
    assert_eq!(
        usage.status.code(),
        Some(2),
        "seed needs --demo or --synthetic"
    );
}

#[test]
fn import_refuses_files_without_the_export_keys_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let database = dir.path().join("ehr.db");
    for (content, expected) in [
        ("{}", "none of the export's keys"),
        (r#"{"name": "x"}"#, "unknown top-level key \"name\""),
        (r#"{"Patients": []}"#, "did you mean \"patients\""),
        ("[]", "JSON object"),
    ] {
        let file = dir.path().join("bad.json");
        std::fs::write(&file, content).expect("write");
        let refused = ehr_mcp(&database, &["import", file.to_str().expect("path")]);
        assert_eq!(refused.status.code(), Some(1), "{content}");
        let stderr = text(&refused.stderr);
        assert!(stderr.contains(expected), "{content}: {stderr}");
        assert!(!text(&refused.stdout).contains("imported"), "{content}");
    }
}

/// After `import`, `seed` and `migrate` exit, the `.db` file alone holds the data: copied without its
/// `-wal` it still opens with every row.
#[test]
fn commands_leave_no_data_only_in_the_sqlite_wal() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, args) in [
        ("import", vec!["import", SEED_EXPORT]),
        ("seed", vec!["seed", "--synthetic", "20"]),
        ("migrate", vec!["migrate"]),
    ] {
        let database = dir.path().join(format!("{name}.db"));
        let output = ehr_mcp(&database, &args);
        assert!(output.status.success(), "{name}: {}", text(&output.stderr));
        let wal = dir.path().join(format!("{name}.db-wal"));
        let wal_len = std::fs::metadata(&wal).map_or(0, |meta| meta.len());
        assert_eq!(
            wal_len, 0,
            "{name}: the WAL holds {wal_len} bytes after exit"
        );
        let copy = dir.path().join(format!("{name}-copy.db"));
        std::fs::copy(&database, &copy).expect("copy the .db alone");
        let tables = std::process::Command::new(env!("CARGO_BIN_EXE_ehr-mcp"))
            .arg("--database-url")
            .arg(format!("sqlite://{}?mode=ro", copy.display()))
            .args(["audit", "verify"])
            .env_remove("DATABASE_URL")
            .output()
            .expect("run ehr-mcp");
        assert!(
            tables.status.success(),
            "{name}: the copy opens: {}",
            text(&tables.stderr)
        );
        let size = std::fs::metadata(&copy).expect("copy").len();
        assert!(
            size > 50_000,
            "{name}: the copy has the schema and rows ({size} bytes)"
        );
    }
}
