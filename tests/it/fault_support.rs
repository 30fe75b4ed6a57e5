//! Fault-injection support: a throwaway PostgreSQL cluster of the test's own (initdb into a temp dir, its
//! own port, run as the `postgres` user when the tests run as root) that a test may stop and start without
//! disturbing the shared server other tests use; and a small TCP load balancer (round robin) in front of
//! several server instances.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ehr_mcp::store::{Store, StoreOptions};

use crate::support::TestDb;

/// A PostgreSQL cluster in a temp directory, stopped (immediately) and removed on drop.
pub struct ThrowawayPostgres {
    bin: PathBuf,
    data: PathBuf,
    pub port: u16,
    run_as_postgres: bool,
    _dir: tempfile::TempDir,
}

impl ThrowawayPostgres {
    /// Creates and starts a cluster, or `None` (with the reason printed) when PostgreSQL's server
    /// binaries are not installed here.
    pub fn start() -> Option<ThrowawayPostgres> {
        let Some(bin) = server_binaries() else {
            eprintln!("skipped: no PostgreSQL server binaries (/usr/lib/postgresql/*/bin/initdb)");
            return None;
        };
        let run_as_postgres = is_root();
        let dir = tempfile::Builder::new()
            .prefix("ehr-fault-pg-")
            .tempdir_in(std::env::temp_dir())
            .expect("temp dir");
        let data = dir.path().join("data");
        if run_as_postgres {
            chown_to_postgres(dir.path());
        }
        let cluster = ThrowawayPostgres {
            bin,
            data,
            port: free_port(),
            run_as_postgres,
            _dir: dir,
        };
        let data = cluster.data.display().to_string();
        cluster.run(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        cluster.start_server();
        Some(cluster)
    }

    /// `postgres://postgres@127.0.0.1:<port>/<database>`.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Starts the server and waits until it accepts connections.
    pub fn start_server(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off -c max_connections=100",
            self.port,
            self._dir.path().display()
        );
        let data = self.data.display().to_string();
        let log = self._dir.path().join("server.log").display().to_string();
        self.run(
            "pg_ctl",
            &[
                "-D", &data, "-l", &log, "-o", &options, "-w", "-t", "60", "start",
            ],
        );
    }

    /// Stops the server (`-m fast`: sessions are ended, as in a restart or failover).
    pub fn stop_server(&self) {
        let data = self.data.display().to_string();
        self.run("pg_ctl", &["-D", &data, "-m", "fast", "-w", "stop"]);
    }

    /// A migrated database `name` on this cluster, as a [`TestDb`].
    pub async fn database(&self, name: &str) -> TestDb {
        let admin = Store::connect(&StoreOptions::new(self.url("postgres")))
            .await
            .expect("connect to the throwaway cluster");
        // `name` is a test's literal, letters and underscores only.
        assert!(name.chars().all(|c| c.is_ascii_lowercase() || c == '_'));
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(admin.pool())
            .await
            .expect("create database");
        admin.close().await.expect("close");
        let url = self.url(name);
        let store = Store::connect(&StoreOptions::new(url.clone()))
            .await
            .expect("open the test database");
        store.migrate().await.expect("migrate");
        TestDb::at(url, store)
    }

    fn run(&self, program: &str, args: &[&str]) {
        let path = self.bin.join(program);
        let output = if self.run_as_postgres {
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&path)
                .args(args)
                .output()
        } else {
            Command::new(&path).args(args).output()
        }
        .unwrap_or_else(|error| panic!("run {program}: {error}"));
        assert!(
            output.status.success(),
            "{program} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

impl Drop for ThrowawayPostgres {
    fn drop(&mut self) {
        let data = self.data.display().to_string();
        let path = self.bin.join("pg_ctl");
        let args = ["-D", data.as_str(), "-m", "immediate", "-w", "stop"];
        let _ = if self.run_as_postgres {
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&path)
                .args(args)
                .output()
        } else {
            Command::new(&path).args(args).output()
        };
    }
}

fn server_binaries() -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| entry.ok().map(|entry| entry.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists() && bin.join("pg_ctl").exists())
        .collect();
    versions.sort();
    versions.pop()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|output| String::from_utf8_lossy(&output.stdout).trim() == "0")
        .unwrap_or(false)
}

fn chown_to_postgres(path: &Path) {
    let status = Command::new("chown")
        .args(["postgres:postgres"])
        .arg(path)
        .status()
        .expect("chown");
    assert!(status.success(), "chown the cluster directory to postgres");
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("free port")
}

/// A round-robin TCP load balancer on 127.0.0.1:0: each accepted connection is piped to the next
/// backend. Runs until the runtime ends.
pub async fn load_balancer(backends: Vec<SocketAddr>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the load balancer");
    let address = listener.local_addr().expect("address");
    let next = Arc::new(AtomicUsize::new(0));
    tokio::spawn(async move {
        loop {
            let Ok((mut inbound, _)) = listener.accept().await else {
                break;
            };
            let backend = backends[next.fetch_add(1, Ordering::Relaxed) % backends.len()];
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(backend).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    address
}

/// Polls `check` every 50 ms until it holds or `within` has passed; returns the time it took.
pub async fn eventually<F, Fut>(within: Duration, mut check: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while started.elapsed() < within {
        if check().await {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

/// Runs `ehr-mcp audit verify` on `database_url`; returns whether it passed, and its output.
pub fn audit_verify(database_url: &str) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_ehr-mcp"))
        .args(["audit", "verify"])
        .env("DATABASE_URL", database_url)
        .env("EHR_MCP_KEY_ENCRYPTION_KEY", crate::support::TEST_KEK)
        .output()
        .expect("run ehr-mcp audit verify");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}
