//! Test clients for the MCP transports: a raw JSON-RPC WebSocket client (the earlier system's style) and
//! helpers to read tool results.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use crate::support::TestApp;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A WebSocket JSON-RPC client speaking one message per text frame.
pub struct WsClient {
    socket: Socket,
    next_id: i64,
    /// The subprotocol the server accepted.
    pub protocol: Option<String>,
}

impl WsClient {
    pub async fn connect(app: &TestApp, path: &str, bearer: Option<&str>) -> WsClient {
        Self::try_connect(app, path, bearer)
            .await
            .expect("websocket connect")
    }

    pub async fn try_connect(
        app: &TestApp,
        path: &str,
        bearer: Option<&str>,
    ) -> Result<WsClient, tokio_tungstenite::tungstenite::Error> {
        let url = format!("ws://127.0.0.1:{}{}", app.port, path);
        let mut request = url.into_client_request()?;
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", HeaderValue::from_static("mcp"));
        if let Some(token) = bearer {
            request.headers_mut().insert(
                "Authorization",
                HeaderValue::from_str(&format!("Bearer {token}")).expect("header"),
            );
        }
        let (socket, response) = tokio_tungstenite::connect_async(request).await?;
        let protocol = response
            .headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok(WsClient {
            socket,
            next_id: 1,
            protocol,
        })
    }

    pub async fn send_text(&mut self, text: &str) {
        self.socket
            .send(Message::Text(text.into()))
            .await
            .expect("send frame");
    }

    pub async fn send_json(&mut self, value: &Value) {
        self.send_text(&value.to_string()).await;
    }

    /// The next JSON frame (10 s at most).
    pub async fn recv_json(&mut self) -> Value {
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(20), self.socket.next())
                .await
                .expect("a reply within 20 s")
                .expect("connection open")
                .expect("frame");
            match frame {
                Message::Text(text) => return serde_json::from_str(&text).expect("JSON frame"),
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("unexpected frame {other:?}"),
            }
        }
    }

    /// Sends a request and returns the whole response object.
    pub async fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send_json(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await;
        let reply = self.recv_json().await;
        assert_eq!(reply["id"], id, "reply to another request: {reply}");
        reply
    }

    /// Calls a tool and returns its `result` (the CallToolResult).
    pub async fn call_tool(&mut self, name: &str, arguments: Value) -> Value {
        let reply = self
            .request("tools/call", json!({"name": name, "arguments": arguments}))
            .await;
        assert!(reply.get("error").is_none(), "JSON-RPC error: {reply}");
        reply["result"].clone()
    }

    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
    }
}

/// The object in a tool result's `content[0].text`.
pub fn text_body(result: &Value) -> Value {
    let text = result["content"][0]["text"]
        .as_str()
        .expect("content[0].text");
    serde_json::from_str(text).expect("content[0].text is JSON")
}

/// A successful tool result's body: checks `isError`, `status` and that text and structuredContent agree.
pub fn success(result: &Value) -> Value {
    let body = text_body(result);
    assert_ne!(result["isError"], true, "tool failed: {body}");
    assert_eq!(body["status"], "success", "{body}");
    assert_eq!(
        result["structuredContent"], body,
        "text and structuredContent differ"
    );
    body
}

/// A failed tool result's error code; checks the error shape and that no data came with it.
pub fn error_code(result: &Value) -> String {
    assert_eq!(result["isError"], true, "expected a tool error: {result}");
    assert!(
        result.get("structuredContent").is_none(),
        "an error carries data: {result}"
    );
    let body = text_body(result);
    assert_eq!(body["status"], "error", "{body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    body["code"].as_str().expect("code").to_owned()
}
