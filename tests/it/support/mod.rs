//! Test support: fresh databases per test and the real application on a random port.

#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};

use clap::Parser;
use ehr_mcp::store::{Engine, Store, StoreOptions};
use tokio_util::sync::CancellationToken;

/// The admin URL of the PostgreSQL server used by tests, when there is one.
pub fn postgres_admin_url() -> Option<String> {
    std::env::var("EHR_MCP_TEST_POSTGRES_URL")
        .ok()
        .filter(|url| !url.is_empty())
}

/// A fresh, migrated database for one test. The SQLite file lives in a temp dir removed on drop;
/// a PostgreSQL database gets a unique name.
pub struct TestDb {
    pub url: String,
    pub store: Store,
    _dir: Option<tempfile::TempDir>,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);
static CLEANED: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();

/// Test databases are named `ehr_test_<pid>_…`; drop those left by test processes that no longer run.
async fn drop_databases_of_dead_runs(admin: &Store) {
    let names: Vec<String> =
        sqlx::query("SELECT datname::text FROM pg_database WHERE datname LIKE 'ehr_test_%'")
            .fetch_all(admin.pool())
            .await
            .map(|rows| {
                rows.iter()
                    .map(|row| sqlx::Row::get::<String, _>(row, 0))
                    .collect()
            })
            .unwrap_or_default();
    for name in names {
        let pid = name.split('_').nth(2).unwrap_or_default();
        let alive = std::path::Path::new(&format!("/proc/{pid}")).exists();
        let safe = name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !alive && safe {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(admin.pool())
            .await;
        }
    }
}

impl TestDb {
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("ehr.db").display());
        let store = Store::connect(&StoreOptions::new(url.clone()))
            .await
            .expect("open sqlite");
        store.migrate().await.expect("migrate sqlite");
        TestDb {
            url,
            store,
            _dir: Some(dir),
        }
    }

    /// A unique PostgreSQL database, or `None` when no server is configured.
    pub async fn postgres() -> Option<TestDb> {
        let admin_url = postgres_admin_url()?;
        let name = format!(
            "ehr_test_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            uuid::Uuid::new_v4()
                .simple()
                .to_string()
                .get(..8)
                .unwrap_or("x")
        );
        let admin = Store::connect(&StoreOptions::new(admin_url.clone()))
            .await
            .expect("connect to PostgreSQL");
        // The name is generated above from digits and hex only.
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(admin.pool())
            .await
            .expect("create database");
        admin.close().await.expect("close");
        let base = admin_url
            .rsplit_once('/')
            .map(|(base, _)| base.to_owned())
            .unwrap_or(admin_url);
        let url = format!("{base}/{name}");
        let store = Store::connect(&StoreOptions::new(url.clone()))
            .await
            .expect("open postgres");
        store.migrate().await.expect("migrate postgres");
        Some(TestDb {
            url,
            store,
            _dir: None,
        })
    }

    /// The engine for application-level tests: PostgreSQL when `EHR_MCP_TEST_ENGINE=postgres` (and a server
    /// is configured), else SQLite. `.ci/run` runs the tool and transport suites once per engine.
    pub async fn for_app() -> TestDb {
        if std::env::var("EHR_MCP_TEST_ENGINE").as_deref() == Ok("postgres") {
            if let Some(db) = TestDb::postgres().await {
                return db;
            }
        }
        TestDb::sqlite().await
    }

    /// SQLite, plus PostgreSQL when configured: run a storage test on each.
    pub async fn all() -> Vec<TestDb> {
        let mut databases = vec![TestDb::sqlite().await];
        databases.extend(TestDb::postgres().await);
        databases
    }

    /// A database a test created itself (a throwaway cluster's), already migrated.
    pub fn at(url: String, store: Store) -> TestDb {
        TestDb {
            url,
            store,
            _dir: None,
        }
    }

    pub fn engine(&self) -> Engine {
        self.store.engine()
    }
}

/// The real application on 127.0.0.1:0 over a fresh database, stopped when dropped.
pub struct TestApp {
    pub base_url: String,
    pub port: u16,
    pub db: TestDb,
    stop: CancellationToken,
    handle: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    /// Stops the server gracefully and waits for it to finish.
    pub async fn shutdown(mut self) {
        self.stop.cancel();
        if let Some(handle) = self.handle.take() {
            let _ = handle.await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Serve arguments as the binary would parse them, plus `extra` flags.
/// The key-encryption key every test server and every `ehr-mcp` child process of the tests uses
/// (`EHR_MCP_KEY_ENCRYPTION_KEY`): 32 bytes, base64. A fixture value, not a secret.
pub const TEST_KEK: &str = "dGVzdC1rZXktZW5jcnlwdGlvbi1rZXktMzItYnl0ZXM=";

pub fn serve_args(extra: &[&str]) -> ehr_mcp::config::ServeArgs {
    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        serve: ehr_mcp::config::ServeArgs,
    }
    let mut argv = vec!["serve", "--host", "127.0.0.1", "--port", "0"];
    if !extra
        .iter()
        .any(|arg| arg.starts_with("--key-encryption-key"))
    {
        argv.extend_from_slice(&["--key-encryption-key", TEST_KEK]);
    }
    argv.extend_from_slice(extra);
    Wrapper::parse_from(argv).serve
}

pub async fn spawn_app_on(db: TestDb, extra: &[&str]) -> TestApp {
    let application = ehr_mcp::app::Application::build(db.store.clone(), serve_args(extra))
        .await
        .expect("build application");
    let port = application.port();
    let base_url = format!("http://127.0.0.1:{port}");
    let stop = CancellationToken::new();
    let stopped = stop.clone();
    let handle =
        tokio::spawn(application.run_until_stopped(async move { stopped.cancelled().await }));
    TestApp {
        base_url,
        port,
        db,
        stop,
        handle: Some(handle),
    }
}

/// The application over a fresh database ([`TestDb::for_app`]).
pub async fn spawn_app() -> TestApp {
    spawn_app_on(TestDb::for_app().await, &[]).await
}
