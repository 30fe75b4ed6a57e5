//! MCP over WebSocket at `GET /` and `GET /ws`: subprotocol `mcp`, one JSON-RPC message (or batch) per
//! text frame, served by the same [`EhrServer`] as every other transport through a Sink/Stream adapter.
//!
//! Identity: `Authorization: Bearer` on the upgrade request (refused with 401 when invalid), else the
//! `authenticate` tool or an `access_token` argument (see [`crate::tools::Session`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::bearer;
use super::jsonrpc::{FrameDecoder, INVALID_REQUEST, ReplyRouter, error_reply};
use crate::audit::Transport;
use crate::tools::{EhrServer, Session, ToolServices};

/// Limits of one WebSocket connection.
#[derive(Debug, Clone, Copy)]
pub struct WebSocketLimits {
    /// Largest message answered normally; larger ones get a JSON-RPC error.
    pub max_message_bytes: usize,
    /// Close the connection after this long without a frame from the client.
    pub idle_timeout: Duration,
}

impl WebSocketLimits {
    /// Frames beyond this size are not even read: the connection is closed (1009).
    fn hard_frame_limit(&self) -> usize {
        self.max_message_bytes.saturating_mul(4).max(64 * 1024)
    }
}

/// What the WebSocket routes need.
#[derive(Clone)]
pub struct WebSocketState {
    pub tools: Arc<ToolServices>,
    pub limits: WebSocketLimits,
    /// `{public base}/.well-known/oauth-protected-resource/mcp`, for 401 answers.
    pub resource_metadata_url: String,
}

/// The upgrade handler for `/` and `/ws`.
pub async fn upgrade(
    State(state): State<WebSocketState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let session = match bearer::token_from_headers(&headers) {
        Ok(None) => Session::anonymous(Transport::WebSocket),
        Ok(Some(token)) => match state.tools.auth.validate(&token).await {
            Ok(_) => Session::with_token(Transport::WebSocket, token),
            Err(error) => {
                return bearer::unauthorized(
                    &state.resource_metadata_url,
                    Some(&error.to_string()),
                );
            }
        },
        Err(reason) => return bearer::unauthorized(&state.resource_metadata_url, Some(reason)),
    }
    .with_peer(Some(peer.ip()));
    let server = EhrServer::new(state.tools.clone(), Arc::new(session));
    let limits = state.limits;
    upgrade
        .protocols(["mcp"])
        .max_message_size(limits.hard_frame_limit())
        .max_frame_size(limits.hard_frame_limit())
        .on_upgrade(move |socket| serve_connection(socket, server, limits))
        .into_response()
}

/// Serves one connection until the client closes it, goes idle, or the service ends.
pub async fn serve_connection(socket: WebSocket, server: EhrServer, limits: WebSocketLimits) {
    let (mut socket_tx, mut socket_rx) = socket.split();
    let (to_service, service_rx) = futures::channel::mpsc::channel::<ClientJsonRpcMessage>(32);
    let (service_tx, mut from_service) =
        futures::channel::mpsc::channel::<ServerJsonRpcMessage>(32);
    let (frames_tx, mut frames_rx) = mpsc::channel::<Message>(32);
    let stop = CancellationToken::new();
    let router = Arc::new(std::sync::Mutex::new(ReplyRouter::default()));

    let service_stop = stop.clone();
    let service = tokio::spawn(async move {
        match rmcp::service::serve_server_with_ct(
            server,
            (service_tx, service_rx),
            service_stop.clone(),
        )
        .await
        {
            Ok(running) => {
                let _ = running.waiting().await;
            }
            Err(error) => tracing::debug!(%error, "websocket MCP session ended before it started"),
        }
    });

    // Service replies → frames.
    let reply_router = router.clone();
    let reply_frames = frames_tx.clone();
    let replies = tokio::spawn(async move {
        while let Some(message) = from_service.next().await {
            let frame = reply_router
                .lock()
                .ok()
                .and_then(|mut router| router.route(message));
            if let Some(frame) = frame {
                if reply_frames.send(text_frame(&frame)).await.is_err() {
                    break;
                }
            }
        }
    });

    // Frames → socket.
    let writer = tokio::spawn(async move {
        while let Some(frame) = frames_rx.recv().await {
            let closing = matches!(frame, Message::Close(_));
            if socket_tx.send(frame).await.is_err() || closing {
                break;
            }
        }
        let _ = socket_tx.close().await;
    });

    read_frames(&mut socket_rx, to_service, &frames_tx, &router, limits).await;

    stop.cancel();
    drop(frames_tx);
    let _ = service.await;
    let _ = replies.await;
    let _ = writer.await;
}

async fn read_frames(
    socket_rx: &mut futures::stream::SplitStream<WebSocket>,
    mut to_service: futures::channel::mpsc::Sender<ClientJsonRpcMessage>,
    frames: &mpsc::Sender<Message>,
    router: &std::sync::Mutex<ReplyRouter>,
    limits: WebSocketLimits,
) {
    let mut decoder = FrameDecoder::default();
    loop {
        let next = tokio::time::timeout(limits.idle_timeout, socket_rx.next()).await;
        let message = match next {
            Err(_) => {
                let _ = frames.send(close_frame(1001, "idle timeout")).await;
                return;
            }
            Ok(None) | Ok(Some(Err(_))) => return,
            Ok(Some(Ok(message))) => message,
        };
        let text = match message {
            Message::Text(text) => text.to_string(),
            Message::Binary(bytes) => match String::from_utf8(bytes.to_vec()) {
                Ok(text) => text,
                Err(_) => {
                    let reply = error_reply(
                        serde_json::Value::Null,
                        INVALID_REQUEST,
                        "Invalid Request: send JSON-RPC messages as UTF-8 text frames",
                    );
                    let _ = frames.send(text_frame(&reply)).await;
                    continue;
                }
            },
            Message::Close(_) => return,
            Message::Ping(_) | Message::Pong(_) => continue,
        };
        if text.len() > limits.max_message_bytes {
            let reply = error_reply(
                serde_json::Value::Null,
                INVALID_REQUEST,
                &format!(
                    "Invalid Request: message of {} bytes exceeds the limit of {} bytes",
                    text.len(),
                    limits.max_message_bytes
                ),
            );
            let _ = frames.send(text_frame(&reply)).await;
            continue;
        }
        let decoded = match router.lock() {
            Ok(mut router) => decoder.decode(&text, &mut router),
            Err(_) => return,
        };
        if let Some(reply) = decoded.reply_now {
            if frames.send(text_frame(&reply)).await.is_err() {
                return;
            }
        }
        for message in decoded.to_service {
            if to_service.send(message).await.is_err() {
                return;
            }
        }
    }
}

fn text_frame(value: &serde_json::Value) -> Message {
    Message::Text(Utf8Bytes::from(value.to_string()))
}

fn close_frame(code: u16, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    }))
}
