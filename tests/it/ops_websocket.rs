//! WebSocket operations: a close frame at shutdown after the calls in hand are answered, ping/pong liveness
//! and the idle timeout, the hard message-size limit (close 1009), and wss:// with TLS.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::mcp_support::spawn_mcp_app;
use crate::ops_tls::SelfSigned;
use crate::support::{TestDb, spawn_app_on};

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(url: &str, bearer: Option<&str>) -> Socket {
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", HeaderValue::from_static("mcp"));
    if let Some(token) = bearer {
        request.headers_mut().insert(
            "Authorization",
            HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
        );
    }
    tokio_tungstenite::connect_async(request).await.unwrap().0
}

/// Reads frames until a close frame (or the end); returns the text frames before it and the close frame.
async fn read_until_close(
    socket: &mut Socket,
    within: Duration,
) -> (Vec<Value>, Option<(u16, String)>) {
    let mut texts = Vec::new();
    let deadline = Instant::now() + within;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let Ok(next) = tokio::time::timeout(remaining, socket.next()).await else {
            panic!("no close frame within {within:?}; got {texts:?}");
        };
        match next {
            Some(Ok(Message::Text(text))) => texts.push(serde_json::from_str(&text).unwrap()),
            Some(Ok(Message::Close(frame))) => {
                return (
                    texts,
                    frame.map(|frame| (u16::from(frame.code), frame.reason.to_string())),
                );
            }
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return (texts, None),
        }
    }
}

#[tokio::test]
async fn shutdown_answers_the_calls_in_hand_then_sends_close_1001() {
    let mcp = spawn_mcp_app(&[]).await;
    let token = mcp.token("copilot-studio").await;
    let mut socket = connect(&mcp.ws_url(), Some(&token)).await;
    let batch: Vec<Value> = (1..=40)
        .map(|id| {
            json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                   "params": {"name": "get_patient", "arguments": {"mrn": "MRN001"}}})
        })
        .collect();
    socket
        .send(Message::Text(Value::Array(batch).to_string().into()))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let started = Instant::now();
    let stopping = tokio::spawn(mcp.shutdown());

    let (texts, close) = read_until_close(&mut socket, Duration::from_secs(10)).await;
    let (code, reason) = close.expect("a close frame");
    assert_eq!(code, 1001);
    assert_eq!(reason, "server shutting down");
    let answers = texts
        .iter()
        .flat_map(|text| {
            text.as_array()
                .cloned()
                .unwrap_or_else(|| vec![text.clone()])
        })
        .filter(|answer| answer["result"]["structuredContent"]["status"] == "success")
        .count();
    assert_eq!(
        answers, 40,
        "every call sent before shutdown is answered before the close"
    );
    tokio::time::timeout(Duration::from_secs(10), stopping)
        .await
        .expect("shutdown does not wait out the grace period once the socket closed")
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(9));
}

#[tokio::test]
async fn only_client_messages_keep_a_websocket_open_pongs_do_not() {
    let app = spawn_app_on(TestDb::sqlite().await, &["--idle-timeout-seconds", "2"]).await;
    let url = format!("ws://127.0.0.1:{}/ws", app.port);

    // A peer that sends a message every 700 ms is kept past the timeout (and is pinged meanwhile).
    let mut live = connect(&url, None).await;
    let until = Instant::now() + Duration::from_millis(3500);
    let mut id = 0;
    while Instant::now() < until {
        id += 1;
        live.send(Message::Text(
            json!({"jsonrpc": "2.0", "id": id, "method": "ping"})
                .to_string()
                .into(),
        ))
        .await
        .unwrap();
        let deadline = Instant::now() + Duration::from_millis(700);
        while let Ok(frame) = tokio::time::timeout_at(deadline.into(), live.next()).await {
            match frame {
                Some(Ok(Message::Text(_) | Message::Ping(_) | Message::Pong(_))) => {}
                other => panic!("the live connection was closed: {other:?}"),
            }
        }
    }

    // A peer that reads (so tungstenite answers every ping with a pong) but sends nothing is idle.
    let mut ponging = connect(&url, None).await;
    let (_, close) = read_until_close(&mut ponging, Duration::from_secs(6)).await;
    let (code, reason) = close.expect("a close frame");
    assert_eq!(code, 1001);
    assert!(reason.contains("idle timeout"), "{reason}");

    // A peer that never reads: closed with 1001 after the timeout too.
    let mut silent = connect(&url, None).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (_, close) = read_until_close(&mut silent, Duration::from_secs(5)).await;
    assert_eq!(close.expect("a close frame").0, 1001);
    app.shutdown().await;
}

#[tokio::test]
async fn a_frame_far_over_the_message_limit_closes_the_connection_with_1009() {
    let app = spawn_app_on(TestDb::sqlite().await, &["--max-message-bytes", "2048"]).await;
    let mut socket = connect(&format!("ws://127.0.0.1:{}/ws", app.port), None).await;
    let huge = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{{"pad":"{}"}}}}"#,
        "x".repeat(64 * 1024)
    );
    socket.send(Message::Text(huge.into())).await.unwrap();
    let (_, close) = read_until_close(&mut socket, Duration::from_secs(5)).await;
    let (code, reason) = close.expect("a close frame");
    assert_eq!(code, u16::from(CloseCode::Size));
    assert!(reason.contains("EHR_MCP_MAX_MESSAGE_BYTES"), "{reason}");
    app.shutdown().await;
}

#[tokio::test]
async fn a_message_nested_too_deeply_gets_a_json_rpc_error_and_the_connection_stays() {
    let app = spawn_app_on(TestDb::sqlite().await, &["--max-json-depth", "8"]).await;
    let mut socket = connect(&format!("ws://127.0.0.1:{}/ws", app.port), None).await;
    let deep = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{{"x":{}{}}}}}"#,
        "[".repeat(10),
        "]".repeat(10)
    );
    socket.send(Message::Text(deep.into())).await.unwrap();
    let reply = next_text(&mut socket).await;
    assert_eq!(reply["error"]["code"], -32600);
    assert!(
        reply["error"]["message"]
            .as_str()
            .unwrap()
            .contains("deeper than 8 levels")
    );
    socket
        .send(Message::Text(
            json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
                .to_string()
                .into(),
        ))
        .await
        .unwrap();
    assert!(next_text(&mut socket).await["result"]["tools"].is_array());
    app.shutdown().await;
}

#[tokio::test]
async fn wss_serves_mcp_over_tls_on_the_same_port() {
    let tls = SelfSigned::new();
    let app = spawn_app_on(
        TestDb::sqlite().await,
        &[
            "--tls-cert",
            &tls.certificate_path(),
            "--tls-key",
            &tls.key_path(),
        ],
    )
    .await;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(tls.certificate_pem.as_bytes()).unwrap())
        .unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], app.port)))
        .await
        .unwrap();
    let mut request = format!("wss://localhost:{}/ws", app.port)
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", HeaderValue::from_static("mcp"));
    let (mut socket, response) = tokio_tungstenite::client_async_tls_with_config(
        request,
        tcp,
        None,
        Some(tokio_tungstenite::Connector::Rustls(Arc::new(config))),
    )
    .await
    .expect("wss handshake");
    assert_eq!(response.headers()["sec-websocket-protocol"], "mcp");
    socket
        .send(Message::Text(
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
                .to_string()
                .into(),
        ))
        .await
        .unwrap();
    assert!(next_text(&mut socket).await["result"]["tools"].is_array());
    app.shutdown().await;
}

async fn next_text(socket: &mut Socket) -> Value {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match socket.next().await {
                Some(Ok(Message::Text(text))) => return serde_json::from_str(&text).unwrap(),
                Some(Ok(_)) => continue,
                other => panic!("connection ended: {other:?}"),
            }
        }
    })
    .await
    .expect("a text frame")
}
