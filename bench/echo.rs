//! A bare WebSocket JSON-RPC echo: the ceiling the server is measured against (BENCHMARKS.md).
//! Same stack as `ehr-mcp` (tokio, axum's WebSocket, serde_json), none of its work: each text frame is
//! parsed, and a canned `tools/call` result carrying the request's id and arguments is sent back. No
//! authentication, database or audit.
//!
//! ```sh
//! cargo run --release --example echo -- --port 7778 &
//! cargo run --release --example loadgen -- --url http://127.0.0.1:7778 --no-auth --connections 64 --mrns 100000
//! ```

use std::net::SocketAddr;

use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use axum::routing::get;
use clap::Parser;
use serde_json::{Value, json};

#[derive(Debug, Parser)]
struct Args {
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    #[arg(long, default_value_t = 7778)]
    port: u16,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let address: SocketAddr = format!("{}:{}", args.host, args.port).parse()?;
    let app = Router::new()
        .route("/ws", get(upgrade))
        .route("/", get(upgrade));
    let listener = tokio::net::TcpListener::bind(address).await?;
    println!("echo listening on ws://{address}/ws");
    axum::serve(listener, app).await?;
    Ok(())
}

async fn upgrade(upgrade: WebSocketUpgrade) -> Response {
    upgrade.protocols(["mcp"]).on_upgrade(echo)
}

async fn echo(mut socket: WebSocket) {
    while let Some(Ok(message)) = socket.recv().await {
        let Message::Text(text) = message else {
            continue;
        };
        let Ok(request) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        let arguments = &request["params"]["arguments"];
        let answer = json!({
            "jsonrpc": "2.0",
            "id": request["id"],
            "result": {
                "content": [{"type": "text", "text": arguments.to_string()}],
                "structuredContent": {"status": "success", "patient": arguments},
                "isError": false
            }
        });
        if socket
            .send(Message::text(answer.to_string()))
            .await
            .is_err()
        {
            break;
        }
    }
}
