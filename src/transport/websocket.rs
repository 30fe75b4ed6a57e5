//! MCP over WebSocket at `GET /` and `GET /ws`: subprotocol `mcp`, one JSON-RPC message (or batch) per
//! text frame, served by the same [`EhrServer`] as every other transport through a Sink/Stream adapter.
//!
//! Identity: `Authorization: Bearer` on the upgrade request (refused with 401 when invalid; the session
//! keeps the `Principal` it proved, re-checked per call), else the `authenticate` tool or an
//! `access_token` argument (see [`crate::tools::Session`]). A connection that proves no identity within
//! `EHR_MCP_UNAUTHENTICATED_TIMEOUT_SECONDS` is closed (1008).
//!
//! Tasks: the rmcp service (the handshake only), the writer (every frame out) and the reader, which
//! decodes frames and, once the handshake is done, serves every message itself ([`super::ws_calls`]):
//! a call costs no task hop between the socket and the tool, and an idle connection keeps no service
//! loop.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::ws::{Message, Utf8Bytes};
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::bearer;
use super::jsonrpc::{FrameDecoder, INVALID_REQUEST, ReplyRouter, TOO_MANY_IN_FLIGHT, error_reply};
use super::limits::websocket::{
    CLOSE_REPLY_WAIT, CloseReason, Liveness, LivenessEvent, await_close_reply,
    close_for_receive_error, close_message,
};
use super::limits::{LimitKind, NetworkLimits, json_depth_ok};
use super::shutdown::{InFlightCalls, Shutdown};
use super::ws_calls::{DirectCalls, Finished};
use super::ws_codec::WsConnection as WebSocket;
use super::ws_handshake::WebSocketUpgrade;
use crate::domain::origin::Transport;
use crate::tools::{EhrServer, Session, ToolServices};
use serde_json::Value;

/// Frames up to this many times `EHR_MCP_MAX_MESSAGE_BYTES` are read and answered with a JSON-RPC error;
/// larger ones close the connection (1009).
const READABLE_OVERSIZE_FACTOR: usize = 4;

/// What the WebSocket routes need.
#[derive(Clone)]
pub struct WebSocketState {
    pub tools: Arc<ToolServices>,
    pub limits: Arc<NetworkLimits>,
    pub shutdown: Shutdown,
    /// `{public base}/.well-known/oauth-protected-resource/mcp`, for 401 answers.
    pub resource_metadata_url: String,
    /// Whether `permessage-deflate` may be negotiated (`EHR_MCP_COMPRESSION`).
    pub compression: bool,
}

/// The upgrade handler for `/` and `/ws`.
pub async fn upgrade(
    State(state): State<WebSocketState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let refusal = |reason: &str| crate::audit::Refusal {
        transport: Transport::WebSocket,
        peer: Some(peer.ip()),
        action: "websocket.upgrade".to_owned(),
        reason: reason.to_owned(),
        patient: None,
    };
    let session = match bearer::token_from_headers(&headers) {
        Ok(None) => Session::anonymous(Transport::WebSocket),
        Ok(Some(token)) => match state.tools.auth.validate(&token).await {
            Ok(principal) => Session::with_principal(Transport::WebSocket, principal),
            Err(error) => {
                let reason = bearer::refusal_reason(&error);
                state.tools.audit.record_refusal(refusal(reason)).await;
                return bearer::refused(&state.resource_metadata_url, &error);
            }
        },
        Err(reason) => {
            state
                .tools
                .audit
                .record_refusal(refusal("malformed_authorization"))
                .await;
            return bearer::unauthorized(&state.resource_metadata_url, Some(reason));
        }
    }
    .with_peer(Some(peer.ip()));
    let session = Arc::new(session);
    let server = EhrServer::new(state.tools.clone(), session.clone());
    let readable = state
        .limits
        .max_message_bytes
        .saturating_mul(READABLE_OVERSIZE_FACTOR);
    let shutdown = state.shutdown.clone();
    upgrade
        .protocols(["mcp"])
        .max_message_size(readable)
        .max_frame_size(readable)
        .compression(state.compression)
        .on_upgrade(move |socket| {
            let limits = state.limits.clone();
            let audit = state.tools.audit.clone();
            let peer = peer.ip();
            let tracked = shutdown.clone();
            let connection = async move {
                let end = serve_connection(socket, server, session, limits, tracked).await;
                if end == ConnectionEnd::Unauthenticated {
                    audit
                        .record_refusal(crate::audit::Refusal {
                            transport: Transport::WebSocket,
                            peer: Some(peer),
                            action: "websocket.connection".to_owned(),
                            reason: "unauthenticated_timeout".to_owned(),
                            patient: None,
                        })
                        .await;
                }
            };
            shutdown.track(connection)
        })
        .into_response()
}

/// Why a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionEnd {
    /// The client closed it, it went idle, the server shut down, or the service ended.
    Closed,
    /// It had not authenticated within `EHR_MCP_UNAUTHENTICATED_TIMEOUT_SECONDS` and was closed (1008).
    Unauthenticated,
}

/// Serves one connection until the client closes it, goes idle, fails to authenticate in time, or the
/// service ends.
pub async fn serve_connection(
    socket: WebSocket,
    server: EhrServer,
    session: Arc<Session>,
    limits: Arc<NetworkLimits>,
    shutdown: Shutdown,
) -> ConnectionEnd {
    let _open = crate::telemetry::metrics::OpenConnection::open(Transport::WebSocket.as_str());
    let (mut socket_tx, mut socket_rx) = socket.split();
    let (to_service, service_rx) = futures::channel::mpsc::channel::<ClientJsonRpcMessage>(32);
    let (service_tx, mut from_service) =
        futures::channel::mpsc::channel::<ServerJsonRpcMessage>(32);
    let (frames_tx, mut frames_rx) = mpsc::channel::<Message>(32);
    let stop = CancellationToken::new();
    let (peer_tx, peer_rx) = tokio::sync::oneshot::channel();
    let mut calls = DirectCalls::new(server.clone(), stop.clone(), peer_rx);
    let router = Arc::new(std::sync::Mutex::new(ReplyRouter::new(
        limits.messages.max_reply_bytes,
    )));
    let in_flight = InFlightCalls::default();

    let service_stop = stop.clone();
    let service = tokio::spawn(async move {
        // Boxed: the handshake's future is about 25 KB, and this task lives as long as the connection;
        // unboxed it would be part of the task for good (10,000 idle connections: 250 MB).
        let handshake = Box::pin(rmcp::service::serve_server_with_ct(
            server,
            (service_tx, service_rx),
            service_stop.clone(),
        ));
        match handshake.await {
            Ok(running) => {
                let _ = peer_tx.send(running.peer().clone());
                let _ = running.waiting().await;
            }
            Err(error) => tracing::debug!(%error, "websocket MCP session ended before it started"),
        }
    });

    // Service replies and the reader's immediate answers → socket, in one task. When the service has
    // ended, the frames still queued are written, then the socket is closed.
    let reply_router = router.clone();
    let answered = in_flight.clone();
    let writer = tokio::spawn(async move {
        let mut service_open = true;
        loop {
            let frame = tokio::select! {
                frame = frames_rx.recv() => match frame {
                    Some(frame) => frame,
                    None if service_open => match from_service.next().await {
                        Some(message) => match reply_frame(&reply_router, &answered, message) {
                            Some(frame) => frame,
                            None => continue,
                        },
                        None => break,
                    },
                    None => break,
                },
                message = from_service.next(), if service_open => match message {
                    Some(message) => match reply_frame(&reply_router, &answered, message) {
                        Some(frame) => frame,
                        None => continue,
                    },
                    None => {
                        service_open = false;
                        continue;
                    }
                },
            };
            let closing = matches!(frame, Message::Close(_));
            if socket_tx.send(frame).await.is_err() || closing {
                break;
            }
        }
        let _ = socket_tx.close().await;
    });

    let reader = Reader {
        frames: &frames_tx,
        router: &router,
        limits: &limits,
        in_flight: &in_flight,
    };
    let mut end = ConnectionEnd::Closed;
    let server_closed = tokio::select! {
        closed = reader.run(&mut socket_rx, to_service, &mut calls, &shutdown) => closed,
        () = unauthenticated_lifetime(&session, limits.unauthenticated_timeout) => {
            end = ConnectionEnd::Unauthenticated;
            let _ = frames_tx.send(close_message(CloseReason::Unauthenticated)).await;
            true
        }
    };
    // Calls the client sent before it closed are finished (and audited); their answers go out if the
    // socket still takes them.
    reader.finish_calls(&mut calls).await;
    if server_closed {
        // Keep the socket open for the peer's close reply (the closing handshake), so the close frame
        // is read before the connection goes away.
        await_close_reply(&mut socket_rx, CLOSE_REPLY_WAIT).await;
    }

    stop.cancel();
    drop(frames_tx);
    let _ = service.await;
    let _ = writer.await;
    end
}

/// Completes `timeout` after the connection opened if it has not authenticated by then; never otherwise.
async fn unauthenticated_lifetime(session: &Session, timeout: std::time::Duration) {
    if !session.is_authenticated() {
        tokio::time::sleep(timeout).await;
        if !session.is_authenticated() {
            return;
        }
    }
    std::future::pending::<()>().await
}

/// The frame of one service message (none for the implicit handshake's answer); counts an answered call.
fn reply_frame(
    router: &std::sync::Mutex<ReplyRouter>,
    in_flight: &InFlightCalls,
    message: ServerJsonRpcMessage,
) -> Option<Message> {
    let answers_a_call = matches!(
        message,
        ServerJsonRpcMessage::Response(_) | ServerJsonRpcMessage::Error(_)
    );
    let frame = router
        .lock()
        .ok()
        .and_then(|mut router| router.route(message));
    if answers_a_call {
        in_flight.finished();
    }
    frame.map(|frame| Message::Text(Utf8Bytes::from(frame)))
}

/// The reading half of a connection: frames in, messages to the service, immediate errors back.
struct Reader<'a> {
    frames: &'a mpsc::Sender<Message>,
    router: &'a std::sync::Mutex<ReplyRouter>,
    limits: &'a NetworkLimits,
    /// Requests sent to the service and not yet answered.
    in_flight: &'a InFlightCalls,
}

impl Reader<'_> {
    /// Reads until the connection ends; `true` when it ends because the server sent a close frame.
    async fn run(
        &self,
        socket_rx: &mut futures::stream::SplitStream<WebSocket>,
        to_service: futures::channel::mpsc::Sender<ClientJsonRpcMessage>,
        calls: &mut DirectCalls,
        shutdown: &Shutdown,
    ) -> bool {
        let mut to_service = Some(to_service);
        let mut decoder = FrameDecoder::new(self.limits.messages.max_batch_length);
        let mut liveness = Liveness::new(self.limits);
        loop {
            let received = tokio::select! {
                // Answers before new frames: a busy connection drains before it reads more.
                biased;
                () = shutdown.token().cancelled() => {
                    // Read nothing more; answer the calls in hand, then say goodbye.
                    self.finish_calls(calls).await;
                    self.in_flight.wait_idle().await;
                    let _ = self.frames.send(close_message(CloseReason::ServerShutdown)).await;
                    return true;
                }
                event = liveness.tick() => {
                    let frame = match event {
                        LivenessEvent::SendPing => Message::Ping(Default::default()),
                        LivenessEvent::TimedOut => close_message(CloseReason::IdleTimeout),
                    };
                    let closing = event == LivenessEvent::TimedOut;
                    if self.frames.send(frame).await.is_err() || closing {
                        return closing;
                    }
                    continue;
                }
                finished = calls.next_finished() => {
                    if matches!(finished, Finished::Opened) {
                        // Nothing more goes to the service: its loop ends when its input does.
                        to_service = None;
                    } else if !self.answer(finished).await {
                        return false;
                    }
                    continue;
                }
                received = socket_rx.next() => received,
            };
            let message = match received {
                None => return false,
                Some(Err(error)) => {
                    let _ = self.frames.send(close_for_receive_error(&error)).await;
                    return true;
                }
                Some(Ok(message)) => message,
            };
            // Only the client's own messages count as activity: a peer that merely answers pings
            // (clients pong automatically) is idle.
            if matches!(message, Message::Text(_) | Message::Binary(_)) {
                liveness.saw_traffic();
            }
            let text = match message {
                Message::Text(text) => text.to_string(),
                Message::Binary(bytes) => match String::from_utf8(bytes.to_vec()) {
                    Ok(text) => text,
                    Err(_) => {
                        self.reply(error_reply(
                            Value::Null,
                            INVALID_REQUEST,
                            "Invalid Request: send JSON-RPC messages as UTF-8 text frames",
                        ))
                        .await;
                        continue;
                    }
                },
                Message::Close(_) => return false,
                Message::Ping(_) | Message::Pong(_) => continue,
            };
            if let Some(refusal) = self.refuse_oversized(&text) {
                self.reply(refusal).await;
                continue;
            }
            let decoded = match self.router.lock() {
                Ok(mut router) => decoder.decode(&text, &mut router),
                Err(_) => return false,
            };
            if let Some(reply) = decoded.reply_now {
                self.reply(reply).await;
            }
            for message in decoded.to_service {
                if let ClientJsonRpcMessage::Request(request) = &message {
                    if self.in_flight.count() >= self.limits.messages.max_in_flight_calls {
                        self.refuse_in_flight(&request.id).await;
                        continue;
                    }
                    self.in_flight.started();
                }
                let Some(message) = calls.take(message) else {
                    continue;
                };
                let Some(service) = to_service.as_mut() else {
                    continue;
                };
                if service.send(message).await.is_err() {
                    return false;
                }
            }
        }
    }

    /// Sends a direct call's answer (or, for a cancelled call, nothing: its batch goes out without it);
    /// `false` when the session is over.
    async fn answer(&self, finished: Finished) -> bool {
        match finished {
            Finished::Answer(message) => {
                if let Some(frame) = reply_frame(self.router, self.in_flight, *message) {
                    let _ = self.frames.send(frame).await;
                }
            }
            Finished::Cancelled(id) => {
                self.in_flight.finished();
                let frame = self.router.lock().ok().and_then(|mut router| {
                    router.forget(&serde_json::to_value(&id).unwrap_or(Value::Null))
                });
                self.send_text(frame).await;
            }
            Finished::Opened => {}
            Finished::ServiceEnded { dropped } => {
                for _ in 0..dropped {
                    self.in_flight.finished();
                }
                return false;
            }
        }
        true
    }

    /// Runs every direct call still going to its end and sends what it answers.
    async fn finish_calls(&self, calls: &mut DirectCalls) {
        while calls.is_busy() {
            let finished = calls.next_finished().await;
            let _ = self.answer(finished).await;
        }
    }

    /// A JSON-RPC error for a message over the size or nesting limit (the connection stays open).
    fn refuse_oversized(&self, text: &str) -> Option<Value> {
        if text.len() > self.limits.max_message_bytes {
            LimitKind::MessageTooLarge.record();
            return Some(error_reply(
                Value::Null,
                INVALID_REQUEST,
                &format!(
                    "Invalid Request: message of {} bytes exceeds the limit of {} bytes (EHR_MCP_MAX_MESSAGE_BYTES)",
                    text.len(),
                    self.limits.max_message_bytes
                ),
            ));
        }
        if !json_depth_ok(text.as_bytes(), self.limits.max_json_depth) {
            LimitKind::JsonTooDeep.record();
            return Some(error_reply(
                Value::Null,
                INVALID_REQUEST,
                &format!(
                    "Invalid Request: JSON nested deeper than {} levels (EHR_MCP_MAX_JSON_DEPTH)",
                    self.limits.max_json_depth
                ),
            ));
        }
        None
    }

    /// Answers a request over the in-flight limit with an error, in its batch when it came in one.
    async fn refuse_in_flight(&self, id: &impl serde::Serialize) {
        LimitKind::TooManyInFlight.record();
        let id = serde_json::to_value(id).unwrap_or(Value::Null);
        let message = format!(
            "too many calls in flight on this connection (EHR_MCP_MAX_IN_FLIGHT_CALLS = {}); wait for answers",
            self.limits.messages.max_in_flight_calls
        );
        let frame = self
            .router
            .lock()
            .ok()
            .and_then(|mut router| router.refuse(id, TOO_MANY_IN_FLIGHT, &message));
        self.send_text(frame).await;
    }

    /// Sends a frame the reply router produced, if it produced one.
    async fn send_text(&self, frame: Option<String>) {
        if let Some(frame) = frame {
            let _ = self
                .frames
                .send(Message::Text(Utf8Bytes::from(frame)))
                .await;
        }
    }

    async fn reply(&self, value: Value) {
        let _ = self.frames.send(text_frame(&value)).await;
    }
}

fn text_frame(value: &Value) -> Message {
    Message::Text(Utf8Bytes::from(value.to_string()))
}
