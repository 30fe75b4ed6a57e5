//! Connection exhaustion: 1,024 idle unauthenticated WebSockets from one address, a filled server, and a
//! slowloris wave. Another address keeps its health check, token endpoint and MCP calls throughout.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use crate::ops_limits::read_response;
use crate::support::{TestApp, TestDb, spawn_app_on};

const ATTACKER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
const BYSTANDER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

async fn tcp_from(source: IpAddr, port: u16) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(source, 0)).unwrap();
    socket
        .connect(SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port))
        .await
        .unwrap()
}

async fn status_from(source: IpAddr, port: u16, request: &str) -> u16 {
    let mut stream = tcp_from(source, port).await;
    stream.write_all(request.as_bytes()).await.unwrap();
    read_response(&mut stream).await.0
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
}

fn bad_token_request() -> String {
    let body = "grant_type=client_credentials&client_id=nobody&client_secret=wrong";
    format!(
        "POST /oauth/token HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

type Socket = tokio_tungstenite::WebSocketStream<TcpStream>;

/// An unauthenticated MCP WebSocket from `source`, or the HTTP status that refused it.
async fn websocket_from(source: IpAddr, app: &TestApp) -> Result<Socket, u16> {
    let stream = tcp_from(source, app.port).await;
    let mut request = format!("ws://127.0.0.1:{}/ws", app.port)
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", HeaderValue::from_static("mcp"));
    match tokio_tungstenite::client_async(request, stream).await {
        Ok((socket, _)) => Ok(socket),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            Err(response.status().as_u16())
        }
        Err(other) => panic!("websocket handshake: {other}"),
    }
}

async fn tools_list(socket: &mut Socket) -> Value {
    socket
        .send(Message::Text(
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
                .to_string()
                .into(),
        ))
        .await
        .unwrap();
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if let Message::Text(text) = frame {
            return serde_json::from_str(&text).unwrap();
        }
    }
}

/// The bystander's health check, token endpoint and an MCP call all work.
async fn bystander_is_served(app: &TestApp) {
    assert_eq!(
        status_from(BYSTANDER, app.port, &get("/healthz")).await,
        200
    );
    assert_eq!(status_from(BYSTANDER, app.port, &get("/readyz")).await, 200);
    assert_eq!(
        status_from(BYSTANDER, app.port, &bad_token_request()).await,
        401,
        "the token endpoint answers (a wrong secret is 401, not 503)"
    );
}

#[tokio::test]
async fn a_thousand_idle_websockets_from_one_address_leave_others_served() {
    let app = spawn_app_on(TestDb::sqlite().await, &[]).await;
    let mut held = Vec::new();
    let mut refused = 0;
    for _ in 0..1024 {
        match websocket_from(ATTACKER, &app).await {
            Ok(socket) => held.push(socket),
            Err(status) => {
                assert_eq!(status, 503);
                refused += 1;
            }
        }
    }
    assert_eq!(
        held.len(),
        256,
        "EHR_MCP_MAX_CONNECTIONS_PER_ADDRESS (default 256)"
    );
    assert_eq!(refused, 768);
    bystander_is_served(&app).await;
    let mut bystander = websocket_from(BYSTANDER, &app).await.expect("admitted");
    assert!(tools_list(&mut bystander).await["result"]["tools"].is_array());
    drop(held);
    app.shutdown().await;
}

#[tokio::test]
async fn a_full_server_keeps_health_and_the_token_endpoint_reachable() {
    let app = spawn_app_on(
        TestDb::sqlite().await,
        &[
            "--max-connections",
            "64",
            "--max-connections-per-address",
            "1000",
        ],
    )
    .await;
    let mut held = Vec::new();
    for _ in 0..64 {
        held.push(
            websocket_from(ATTACKER, &app)
                .await
                .expect("within the limit"),
        );
    }
    bystander_is_served(&app).await;
    assert_eq!(
        status_from(
            BYSTANDER,
            app.port,
            &get("/.well-known/oauth-authorization-server")
        )
        .await,
        503,
        "past the total, only the essential paths are served"
    );
    let metrics = {
        let mut stream = tcp_from(BYSTANDER, app.port).await;
        stream.write_all(get("/metrics").as_bytes()).await.unwrap();
        read_response(&mut stream).await
    };
    assert_eq!(metrics.0, 200);
    assert!(
        metrics.1.contains("too_many_connections"),
        "counted in the metrics"
    );
    drop(held);
    app.shutdown().await;
}

#[tokio::test]
async fn a_slowloris_wave_is_cut_at_the_header_deadline_and_others_stay_served() {
    let app = spawn_app_on(
        TestDb::sqlite().await,
        &["--header-read-timeout-seconds", "1"],
    )
    .await;
    let started = Instant::now();
    let mut wave = Vec::new();
    for _ in 0..1100 {
        let mut stream = tcp_from(ATTACKER, app.port).await;
        // Never finishes the head.
        let _ = stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: ")
            .await;
        wave.push(stream);
    }
    bystander_is_served(&app).await;
    // Every slow socket is closed by the server soon after the deadline.
    let mut closed = 0;
    for stream in &mut wave {
        let mut buffer = [0u8; 512];
        let read = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match stream.read(&mut buffer).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => continue,
                }
            }
        })
        .await;
        if read.is_ok() {
            closed += 1;
        }
    }
    assert_eq!(
        closed, 1100,
        "every slowloris socket is closed by the server"
    );
    eprintln!(
        "1,100 slowloris sockets closed {:.1} s after the wave began",
        started.elapsed().as_secs_f64()
    );
    bystander_is_served(&app).await;
    app.shutdown().await;
}
