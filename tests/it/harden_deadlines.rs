//! Time bounds on what a peer holds: a request body trickled byte by byte is cut at the body read deadline
//! (408 naming `EHR_MCP_BODY_READ_TIMEOUT_SECONDS`, the connection closed and its slot freed), and a
//! WebSocket that never authenticates is closed at its lifetime (1008 naming
//! `EHR_MCP_UNAUTHENTICATED_TIMEOUT_SECONDS`) while authenticated ones stay open.

use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use crate::mcp_support::{McpApp, spawn_mcp_app_on};
use crate::ops_limits::read_response;
use crate::support::{TestDb, spawn_app_on};

/// A token request whose body (100 bytes announced) arrives one byte every 200 ms.
async fn trickle_token_request(port: u16) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stream
        .write_all(
            b"POST /oauth/token HTTP/1.1\r\nHost: t\r\n\
              Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ng",
        )
        .await
        .unwrap();
    stream
}

#[tokio::test]
async fn a_body_trickled_byte_by_byte_is_cut_at_the_body_deadline_and_its_slot_freed() {
    let app = spawn_app_on(
        TestDb::sqlite().await,
        &[
            "--body-read-timeout-seconds",
            "1",
            // Without the body deadline only this would end the request (and hold the slot).
            "--request-timeout-seconds",
            "60",
            "--max-connections-per-address",
            "2",
        ],
    )
    .await;
    let started = Instant::now();
    let mut slow = Vec::new();
    for _ in 0..2 {
        slow.push(trickle_token_request(app.port).await);
    }
    let mut answers = Vec::new();
    for mut stream in slow {
        let answer = tokio::spawn(async move {
            let (mut read, mut write) = stream.split();
            let trickle = async {
                for _ in 0..99 {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    if write.write_all(b"x").await.is_err() {
                        break;
                    }
                }
                std::future::pending::<()>().await;
            };
            let mut buffer = Vec::new();
            let read_all = async {
                let mut chunk = [0u8; 1024];
                loop {
                    match read.read(&mut chunk).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                    }
                }
            };
            let closed = tokio::time::timeout(Duration::from_secs(8), async {
                tokio::select! {
                    () = trickle => {}
                    () = read_all => {}
                }
            })
            .await
            .is_ok();
            (closed, String::from_utf8_lossy(&buffer).to_string())
        });
        answers.push(answer);
    }
    for answer in answers {
        let (closed, text) = answer.await.unwrap();
        assert!(
            closed,
            "the server answered and closed the connection: {text}"
        );
        assert!(text.starts_with("HTTP/1.1 408"), "{text}");
        assert!(text.contains("body_read_timeout"), "{text}");
        assert!(text.contains("EHR_MCP_BODY_READ_TIMEOUT_SECONDS"), "{text}");
    }
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "cut after {took:?}");
    eprintln!("2 trickled bodies cut and closed {took:?} after they began (deadline 1 s)");

    // Both slots of this address are free again: two connections at once are admitted.
    let mut first = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    let mut second = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    for stream in [&mut first, &mut second] {
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            .await
            .unwrap();
    }
    assert_eq!(read_response(&mut first).await.0, 200);
    assert_eq!(read_response(&mut second).await.0, 200);

    // A body that arrives in time is served as before.
    drop((first, second));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut prompt = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    let body = "grant_type=client_credentials&client_id=nobody&client_secret=wrong";
    prompt
        .write_all(
            format!(
                "POST /oauth/token HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\
                 Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    assert_eq!(read_response(&mut prompt).await.0, 401);

    let metrics = reqwest::get(app.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("limit=\"body_read_timeout\""),
        "counted in ehr_mcp_limit_rejections_total"
    );
    app.shutdown().await;
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn websocket(mcp: &McpApp, bearer: Option<&str>) -> Socket {
    let mut request = mcp.ws_url().into_client_request().unwrap();
    let headers = request.headers_mut();
    headers.insert("Sec-WebSocket-Protocol", HeaderValue::from_static("mcp"));
    if let Some(token) = bearer {
        headers.insert(
            "Authorization",
            HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
        );
    }
    tokio_tungstenite::connect_async(request).await.unwrap().0
}

/// Sends `message` and waits for the reply with its id; `Err` with the close frame's code and reason (or
/// a note) when the server closes instead.
async fn call(socket: &mut Socket, message: &Value) -> Result<Value, (u16, String)> {
    if socket
        .send(Message::Text(message.to_string().into()))
        .await
        .is_err()
    {
        return Err((0, "send failed".to_owned()));
    }
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("a frame within 10 s");
        match frame {
            Some(Ok(Message::Text(text))) => {
                let reply: Value = serde_json::from_str(&text).unwrap();
                if reply["id"] == message["id"] {
                    return Ok(reply);
                }
            }
            Some(Ok(Message::Close(close))) => {
                return Err(close
                    .map(|frame| (u16::from(frame.code), frame.reason.to_string()))
                    .unwrap_or((0, "close without a frame".to_owned())));
            }
            Some(Ok(_)) => continue,
            Some(Err(error)) => return Err((0, error.to_string())),
            None => return Err((0, "stream ended".to_owned())),
        }
    }
}

fn tools_list(id: u64) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/list"})
}

fn tool_call(id: u64, name: &str, arguments: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
           "params": {"name": name, "arguments": arguments}})
}

#[tokio::test]
async fn a_websocket_that_never_authenticates_is_closed_at_its_lifetime_and_others_are_not() {
    let mcp = spawn_mcp_app_on(
        TestDb::sqlite().await,
        &["--unauthenticated-timeout-seconds", "2"],
    )
    .await;
    let token = mcp.token("copilot-studio").await;
    let opened = Instant::now();
    // Busy but anonymous: listing tools and failing calls do not count as authenticating.
    let mut anonymous = websocket(&mcp, None).await;
    let mut on_upgrade = websocket(&mcp, Some(&token)).await;
    let mut in_band = websocket(&mcp, None).await;
    let mut per_call = websocket(&mcp, None).await;

    let doctor = mcp.client("copilot-studio");
    let authenticated = call(
        &mut in_band,
        &tool_call(
            1,
            "authenticate",
            json!({"client_id": "copilot-studio",
                   "client_secret": doctor["client_secret"],
                   "app_id": doctor["app_id"]}),
        ),
    )
    .await
    .unwrap();
    assert_eq!(
        authenticated["result"]["structuredContent"]["status"], "success",
        "{authenticated}"
    );
    let with_argument = call(
        &mut per_call,
        &tool_call(
            1,
            "get_patient",
            json!({"mrn": "MRN001", "access_token": token}),
        ),
    )
    .await
    .unwrap();
    assert!(
        with_argument["result"]["isError"] != true,
        "{with_argument}"
    );

    let mut id = 10;
    let closed = loop {
        id += 1;
        let message = if id % 2 == 0 {
            tools_list(id)
        } else {
            tool_call(id, "get_patient", json!({"mrn": "MRN001"}))
        };
        match call(&mut anonymous, &message).await {
            Ok(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(close) => break close,
        }
        assert!(
            opened.elapsed() < Duration::from_secs(8),
            "an unauthenticated WebSocket still open after 8 s"
        );
    };
    let lived = opened.elapsed();
    assert_eq!(closed.0, 1008, "policy close: {closed:?}");
    assert!(
        closed.1.contains("EHR_MCP_UNAUTHENTICATED_TIMEOUT_SECONDS"),
        "{closed:?}"
    );
    assert!(
        lived >= Duration::from_millis(1_900),
        "closed early: {lived:?}"
    );
    eprintln!("unauthenticated WebSocket closed {lived:?} after opening (lifetime 2 s)");

    // Past the lifetime, each authenticated connection still answers.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for (name, socket) in [
        ("token on the upgrade", &mut on_upgrade),
        ("authenticate tool", &mut in_band),
        ("access_token argument", &mut per_call),
    ] {
        let reply = call(
            socket,
            &tool_call(99, "get_patient", json!({"mrn": "MRN001"})),
        )
        .await
        .unwrap_or_else(|close| panic!("{name}: closed {close:?}"));
        if name == "access_token argument" {
            assert!(reply["result"].is_object(), "{name}: {reply}");
        } else {
            assert!(reply["result"]["isError"] != true, "{name}: {reply}");
        }
    }
    let metrics = reqwest::get(mcp.app.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("limit=\"unauthenticated_timeout\""));
    mcp.shutdown().await;
}
