//! Network limits: each one hit for real, each answered with a clear JSON error.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::{get, post};
use ehr_mcp::transport::limits::{NetworkLimits, with_http_limits};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tower::ServiceExt;

use crate::support::{TestDb, spawn_app_on};

/// Sends `request` on a fresh connection and reads until the server closes it or `Connection: close`
/// framing ends; returns (status, body text).
pub async fn raw_request(port: u16, request: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    stream.write_all(request).await.expect("write request");
    read_response(&mut stream).await
}

/// Reads one HTTP/1.1 response with a `Content-Length` body.
pub async fn read_response(stream: &mut TcpStream) -> (u16, String) {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .expect("response in time")
            .expect("read");
        buffer.extend_from_slice(&chunk[..read]);
        let text = String::from_utf8_lossy(&buffer).to_string();
        if let Some(head_end) = text.find("\r\n\r\n") {
            let head = &text[..head_end];
            let length: usize = head
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .unwrap_or(0);
            if buffer.len() >= head_end + 4 + length || read == 0 {
                let status = head
                    .split_whitespace()
                    .nth(1)
                    .and_then(|code| code.parse().ok())
                    .expect("status code");
                return (status, text[head_end + 4..].to_string());
            }
        }
        assert!(read != 0, "connection closed before a full response");
    }
}

fn nested_json(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_with_413_json_whatever_its_type() {
    let app = spawn_app_on(TestDb::sqlite().await, &["--max-message-bytes", "2048"]).await;
    let client = reqwest::Client::new();
    for content_type in ["application/json", "application/x-www-form-urlencoded"] {
        let response = client
            .post(app.url("/healthz"))
            .header("content-type", content_type)
            .body(vec![b'1'; 4096])
            .send()
            .await
            .expect("post");
        assert_eq!(response.status(), 413, "{content_type}");
        let body: serde_json::Value = response.json().await.expect("json error");
        assert_eq!(body["error"], "body_too_large");
        assert!(
            body["error_description"]
                .as_str()
                .unwrap()
                .contains("2048 bytes (EHR_MCP_MAX_MESSAGE_BYTES)")
        );
    }
    app.shutdown().await;
}

#[tokio::test]
async fn a_chunked_json_body_over_the_limit_is_refused_while_streaming() {
    let limits = NetworkLimits {
        max_message_bytes: 1024,
        ..test_limits()
    };
    let router = with_http_limits(
        Router::new().route("/echo", post(|body: String| async move { body })),
        &limits,
    );
    let chunks = (0..8).map(|_| Ok::<_, std::io::Error>(vec![b' '; 512]));
    let request = Request::post("/echo")
        .header("content-type", "application/json")
        .body(Body::from_stream(futures::stream::iter(chunks)))
        .unwrap();
    let response = router.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body = axum::body::to_bytes(response.into_body(), 4096)
        .await
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["error"], "body_too_large");
}

#[tokio::test]
async fn json_nested_deeper_than_the_limit_gets_a_json_rpc_invalid_request() {
    let app = spawn_app_on(TestDb::sqlite().await, &["--max-json-depth", "8"]).await;
    let client = reqwest::Client::new();
    let refused = client
        .post(app.url("/healthz"))
        .header("content-type", "application/json")
        .body(nested_json(9))
        .send()
        .await
        .expect("post");
    assert_eq!(refused.status(), 400);
    let body: serde_json::Value = refused.json().await.expect("json");
    assert_eq!(body["jsonrpc"], "2.0");
    assert_eq!(body["error"]["code"], -32600);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("deeper than 8 levels")
    );
    // Within the limit the request passes the check and reaches routing (GET-only route: 405).
    let passed = client
        .post(app.url("/healthz"))
        .header("content-type", "application/json")
        .body(nested_json(8))
        .send()
        .await
        .expect("post");
    assert_eq!(passed.status(), 405);
    app.shutdown().await;
}

fn test_limits() -> NetworkLimits {
    NetworkLimits {
        max_message_bytes: 1 << 20,
        max_connections: 16,
        max_connections_per_address: 16,
        header_read_timeout: Duration::from_secs(10),
        body_read_timeout: Duration::from_secs(10),
        unauthenticated_timeout: Duration::from_secs(30),
        idle_timeout: Duration::from_secs(30),
        request_timeout: Duration::from_secs(30),
        max_json_depth: 64,
        shutdown_grace: Duration::from_secs(5),
        messages: Default::default(),
    }
}

#[tokio::test]
async fn a_request_slower_than_the_timeout_gets_408_json() {
    let limits = NetworkLimits {
        request_timeout: Duration::from_millis(100),
        ..test_limits()
    };
    let router = with_http_limits(
        Router::new().route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }),
        ),
        &limits,
    );
    let started = std::time::Instant::now();
    let response = router
        .oneshot(Request::get("/slow").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(4));
    assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT);
    let body = axum::body::to_bytes(response.into_body(), 4096)
        .await
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["error"], "request_timeout");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("EHR_MCP_REQUEST_TIMEOUT_SECONDS")
    );
}

#[tokio::test]
async fn connections_over_the_limit_get_503_until_one_closes() {
    let app = spawn_app_on(TestDb::sqlite().await, &["--max-connections", "2"]).await;
    let first = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    let mut second = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    // The second connection is served (a request proves the server accepted both).
    second
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(read_response(&mut second).await.0, 200);

    // Past the limit, a reserved connection still answers the essential paths, and nothing else.
    let (status, _) = raw_request(
        app.port,
        b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, 200, "health stays reachable past the limit");
    let (status, body) = raw_request(
        app.port,
        b"GET /.well-known/oauth-authorization-server HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, 503);
    let body: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(body["error"], "too_many_connections");

    drop(first);
    let mut status = 0;
    for _ in 0..50 {
        status = raw_request(
            app.port,
            b"GET /.well-known/oauth-authorization-server HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        )
        .await
        .0;
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status, 200, "a freed slot admits a new connection");
    drop(second);
    app.shutdown().await;
}
