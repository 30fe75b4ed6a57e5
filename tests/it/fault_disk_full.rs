//! SQLite on a full filesystem: the database lives on a small tmpfs of the test's own, which is then
//! filled. Writes fail with the retryable `unavailable` (never a panic, never `internal`, never data in the
//! message); the server keeps serving what needs no write; nothing is corrupted (`PRAGMA integrity_check`,
//! `ehr-mcp audit verify`); once space returns, writes succeed again without a restart. Needs root (to
//! mount the tmpfs): skipped with a message otherwise.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ehr_mcp::store::{Store, StoreOptions};
use serde_json::{Value, json};

use crate::fault_support::{audit_verify, eventually};
use crate::mcp_support::{McpApp, demo_clients, load_clinical_fixture};
use crate::support::{TestDb, spawn_app_on};

/// A tmpfs mounted on a temp directory, unmounted on drop.
struct SmallFilesystem {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl SmallFilesystem {
    fn mount(size: &str) -> Result<SmallFilesystem, String> {
        let dir = tempfile::tempdir().map_err(|error| error.to_string())?;
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .map_err(|error| format!("cannot run mount: {error}"))?;
        if !output.status.success() {
            return Err(format!(
                "mount -t tmpfs failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        Ok(SmallFilesystem {
            path: dir.path().to_owned(),
            _dir: dir,
        })
    }
}

impl Drop for SmallFilesystem {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// Writes a filler file until the filesystem refuses more; returns its path.
fn fill(filesystem: &Path) -> PathBuf {
    let path = filesystem.join("filler");
    let mut file = std::fs::File::create(&path).expect("create the filler");
    let chunk = vec![0xa5u8; 16 * 1024];
    loop {
        if file.write_all(&chunk).and_then(|()| file.flush()).is_err() {
            break;
        }
    }
    // Small writes too, until not even one byte fits.
    while file.write_all(&[0]).and_then(|()| file.flush()).is_ok() {}
    path
}

fn vital_signs(n: u64) -> Value {
    json!({"mrn": "MRN001", "heart_rate": 60 + n % 40, "notes": "x".repeat(1_000)})
}

/// The tool result of one call over `/mcp`: `Ok(structuredContent)` or `Err(error object)`.
async fn call(mcp: &McpApp, token: &str, name: &str, arguments: Value) -> Result<Value, Value> {
    let reply = mcp
        .rpc(
            token,
            "tools/call",
            json!({"name": name, "arguments": arguments}),
        )
        .await;
    let result = &reply["result"];
    if result["isError"] == true {
        let text = result["content"][0]["text"].as_str().unwrap_or_default();
        Err(serde_json::from_str(text).unwrap_or_else(|_| reply.clone()))
    } else if result.is_object() {
        Ok(result["structuredContent"].clone())
    } else {
        Err(reply)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_on_a_full_filesystem_fails_writes_cleanly_and_recovers_when_space_returns() {
    let filesystem = match SmallFilesystem::mount("24m") {
        Ok(filesystem) => filesystem,
        Err(reason) => {
            eprintln!("skipped: cannot mount a small tmpfs here ({reason}); run as root");
            return;
        }
    };
    let url = format!("sqlite://{}", filesystem.path.join("ehr.db").display());
    let store = Store::connect(&StoreOptions::new(url.clone()))
        .await
        .expect("open sqlite on the tmpfs");
    store.migrate().await.expect("migrate");
    let db = TestDb::at(url.clone(), store);
    load_clinical_fixture(&db).await;
    let dir = tempfile::tempdir().unwrap();
    let credentials = demo_clients(&db, &dir).await;
    let mcp = McpApp {
        app: spawn_app_on(db, &[]).await,
        credentials,
        _dir: dir,
    };
    let token = mcp.token("copilot-studio").await;
    call(&mcp, &token, "record_vital_signs", vital_signs(0))
        .await
        .expect("a write before the disk fills");

    let filler = fill(&filesystem.path);
    // Pages SQLite already holds (WAL, free pages) may take a few writes; then every write fails.
    let mut written_while_full = 0;
    let mut failure = None;
    for n in 1..=2_000 {
        match call(&mcp, &token, "record_vital_signs", vital_signs(n)).await {
            Ok(_) => written_while_full += 1,
            Err(error) => {
                failure = Some(error);
                break;
            }
        }
    }
    let failure = failure.expect("writes fail once the filesystem is full");
    assert_eq!(
        failure["code"], "unavailable",
        "a full disk is the retryable unavailable, not internal: {failure}"
    );
    let message = failure["message"].as_str().unwrap_or_default();
    assert!(
        !message.contains("INSERT") && !message.contains("MRN001"),
        "no SQL or data in the error: {message}"
    );
    // It stays refused (and the server stays up) while full.
    let again = call(&mcp, &token, "record_vital_signs", vital_signs(9_999)).await;
    assert_eq!(again.expect_err("still full")["code"], "unavailable");

    // What needs no write still works.
    let health = reqwest::get(mcp.app.url("/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);
    let tools = mcp.rpc(&token, "tools/list", json!({})).await;
    assert!(tools["result"]["tools"].is_array(), "{tools}");
    // Reading PHI needs its audit row first: refused the same retryable way rather than served unaudited.
    let read_while_full = match call(&mcp, &token, "get_patient", json!({"mrn": "MRN001"})).await {
        Ok(_) => "served",
        Err(error) => {
            assert_eq!(error["code"], "unavailable", "{error}");
            "refused (unavailable)"
        }
    };
    let integrity: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(mcp.app.db.store.pool())
        .await
        .expect("the database is readable while full");
    assert_eq!(integrity, "ok");

    // Space returns: writes succeed again, no restart.
    std::fs::remove_file(&filler).unwrap();
    let recovered = eventually(Duration::from_secs(10), || async {
        call(&mcp, &token, "record_vital_signs", vital_signs(10_000))
            .await
            .is_ok()
    })
    .await
    .expect("writes succeed once space returns");
    let read = call(&mcp, &token, "get_patient", json!({"mrn": "MRN001"})).await;
    assert!(read.is_ok(), "{read:?}");
    eprintln!(
        "full filesystem: {written_while_full} writes fit after the filler, then `unavailable` \
         (a patient read while full: {read_while_full}); writes recovered {recovered:?} after space \
         returned"
    );
    mcp.shutdown().await;

    let integrity: String = {
        let store = Store::connect(&StoreOptions::new(url.clone()))
            .await
            .unwrap();
        let value = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_one(store.pool())
            .await
            .unwrap();
        store.close().await.unwrap();
        value
    };
    assert_eq!(integrity, "ok", "no corruption");
    let (intact, report) = audit_verify(&url);
    assert!(intact, "audit verify after the full disk: {report}");
}
