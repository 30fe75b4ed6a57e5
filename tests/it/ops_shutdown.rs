//! Graceful shutdown: in-flight requests finish, new connections are refused, the binary exits 0 on
//! SIGTERM and SIGINT.

use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::ops_binary::BinaryServer;
use crate::ops_limits::read_response;
use crate::support::spawn_app;

#[tokio::test]
async fn an_in_flight_request_finishes_after_shutdown_begins_and_new_connections_are_refused() {
    let app = spawn_app().await;
    let port = app.port;
    let mut in_flight = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    // The head now, the body later: the request is in progress when shutdown begins.
    in_flight
        .write_all(
            b"POST /healthz HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n",
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let stopping = tokio::spawn(app.shutdown());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!stopping.is_finished(), "shutdown waits for the request");

    let refused = TcpStream::connect(("127.0.0.1", port)).await;
    assert!(refused.is_err(), "no new connections once shutdown began");

    in_flight.write_all(b"{}").await.unwrap();
    let (status, _) = read_response(&mut in_flight).await;
    assert_eq!(status, 405, "the in-flight request got its answer");
    tokio::time::timeout(Duration::from_secs(10), stopping)
        .await
        .expect("shutdown completes once the request is done")
        .unwrap();
}

#[tokio::test]
async fn shutdown_gives_up_on_a_stuck_request_after_the_grace_period() {
    let app = crate::support::spawn_app_on(
        crate::support::TestDb::sqlite().await,
        &["--shutdown-grace-seconds", "1"],
    )
    .await;
    let mut stuck = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    stuck
        .write_all(
            b"POST /healthz HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{",
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = std::time::Instant::now();
    tokio::time::timeout(Duration::from_secs(10), app.shutdown())
        .await
        .expect("shutdown is bounded");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900),
        "waited the grace period: {took:?}"
    );
    assert!(took < Duration::from_secs(5), "then stopped: {took:?}");
}

#[test]
fn the_binary_exits_zero_on_sigterm_and_on_sigint() {
    for signal in ["TERM", "INT"] {
        let dir = tempfile::tempdir().unwrap();
        let database_url = format!("sqlite://{}", dir.path().join("ehr.db").display());
        let server = BinaryServer::start(&[], &[("DATABASE_URL", database_url.as_str())]);
        let health = reqwest::blocking_get(&server.url("/healthz"));
        assert_eq!(health, 200);
        let port = server.port().to_string();
        assert_eq!(
            healthcheck(&port),
            Some(0),
            "healthcheck of a running server"
        );
        let (status, log) = server.stop_with(signal);
        assert_eq!(status.code(), Some(0), "SIG{signal}:\n{log}");
        assert!(log.contains("shutdown complete"), "SIG{signal}:\n{log}");
        assert_eq!(
            healthcheck(&port),
            Some(1),
            "healthcheck of a stopped server"
        );
    }
}

fn healthcheck(port: &str) -> Option<i32> {
    std::process::Command::new(env!("CARGO_BIN_EXE_ehr-mcp"))
        .args(["healthcheck", "--port", port, "--timeout-seconds", "5"])
        .env_remove("EHR_MCP_TLS_CERT")
        .output()
        .expect("run healthcheck")
        .status
        .code()
}

mod reqwest {
    /// A GET from a plain thread (the test above is synchronous): the status code.
    pub fn blocking_get(url: &str) -> u16 {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async { ::reqwest::get(url).await.expect("GET").status().as_u16() })
    }
}
