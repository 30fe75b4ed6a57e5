//! JSON-RPC 2.0 framing for message-oriented transports (WebSocket): one text frame holds one message or
//! a batch. [`FrameDecoder::decode`] turns a frame into messages for the MCP service plus immediate error
//! replies (parse errors, invalid requests); [`ReplyRouter`] turns the service's replies back into frames,
//! assembling batch replies and hiding the implicit `initialize` that lets clients skip the handshake.
//!
//! Invariant: a bad frame or member yields a JSON-RPC error reply and never ends the connection.
//! Bounds: a batch longer than `max_batch_length` is refused whole before any member runs; a reply (a whole
//! batch reply included) never grows past `max_reply_bytes` — members that would push it over are answered
//! with a [`REPLY_TOO_LARGE`] error (~150 bytes) instead, so a frame stays under `max_reply_bytes` plus
//! ~200 bytes per batch member, and memory per message stays bounded.

use std::collections::HashSet;

use rmcp::model::{ClientJsonRpcMessage, ClientRequest, GetMeta, ServerJsonRpcMessage};
use serde_json::{Value, json};

use super::limits::LimitKind;

/// Id of the `initialize` request injected for clients of the earlier system, which send `tools/list`
/// and `tools/call` without the MCP handshake. Its reply is not forwarded.
pub const IMPLICIT_INITIALIZE_ID: &str = "ehr-mcp:implicit-initialize";

/// The protocol version assumed for clients that skip `initialize`.
pub const IMPLICIT_PROTOCOL_VERSION: &str = "2025-06-18";

pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
/// Server error: the reply would exceed `EHR_MCP_MAX_REPLY_BYTES`.
pub const REPLY_TOO_LARGE: i64 = -32001;
/// Server error: the connection already has `EHR_MCP_MAX_IN_FLIGHT_CALLS` calls unanswered.
pub const TOO_MANY_IN_FLIGHT: i64 = -32002;

/// The result of decoding one frame.
#[derive(Debug, Default)]
pub struct Decoded {
    /// Messages for the MCP service, in order.
    pub to_service: Vec<ClientJsonRpcMessage>,
    /// A frame to send back at once (a single error, or a batch reply with no request pending).
    pub reply_now: Option<Value>,
}

/// Per-connection decoder state.
#[derive(Debug)]
pub struct FrameDecoder {
    handshake_seen: bool,
    max_batch_length: usize,
}

impl FrameDecoder {
    pub fn new(max_batch_length: usize) -> Self {
        Self {
            handshake_seen: false,
            max_batch_length,
        }
    }

    /// Decodes one text frame. Batch members that are requests are registered with `router`, so their
    /// replies are sent back together as one array.
    pub fn decode(&mut self, text: &str, router: &mut ReplyRouter) -> Decoded {
        let value: Value = match serde_json::from_str(text) {
            Ok(value) => value,
            Err(error) => {
                return Decoded {
                    to_service: Vec::new(),
                    reply_now: Some(error_reply(
                        Value::Null,
                        PARSE_ERROR,
                        &format!("Parse error: the frame is not valid JSON ({error})"),
                    )),
                };
            }
        };
        match value {
            Value::Array(members) if members.is_empty() => Decoded {
                to_service: Vec::new(),
                reply_now: Some(error_reply(
                    Value::Null,
                    INVALID_REQUEST,
                    "Invalid Request: empty batch",
                )),
            },
            Value::Array(members) if members.len() > self.max_batch_length => {
                LimitKind::BatchTooLong.record();
                Decoded {
                    to_service: Vec::new(),
                    reply_now: Some(error_reply(
                        Value::Null,
                        INVALID_REQUEST,
                        &format!(
                            "Invalid Request: a batch of {} messages exceeds the limit of {} (EHR_MCP_MAX_BATCH_LENGTH)",
                            members.len(),
                            self.max_batch_length
                        ),
                    )),
                }
            }
            Value::Array(members) => self.decode_batch(members, router),
            single => match self.message(single) {
                Ok(messages) => Decoded {
                    to_service: messages,
                    reply_now: None,
                },
                Err(reply) => Decoded {
                    to_service: Vec::new(),
                    reply_now: Some(reply),
                },
            },
        }
    }

    fn decode_batch(&mut self, members: Vec<Value>, router: &mut ReplyRouter) -> Decoded {
        let mut to_service = Vec::new();
        let mut errors = Vec::new();
        let mut awaited = HashSet::new();
        for member in members {
            match self.message(member) {
                Ok(messages) => {
                    for message in messages {
                        if let ClientJsonRpcMessage::Request(request) = &message {
                            if !is_implicit_initialize(&message) {
                                awaited.insert(id_key(&request.id));
                            }
                        }
                        to_service.push(message);
                    }
                }
                Err(reply) => errors.push(reply),
            }
        }
        let reply_now = if awaited.is_empty() {
            // Only notifications and invalid members: reply with the errors, or nothing at all.
            (!errors.is_empty()).then_some(Value::Array(errors))
        } else {
            router.expect_batch(awaited, errors);
            None
        };
        Decoded {
            to_service,
            reply_now,
        }
    }

    /// One JSON-RPC message, preceded by the implicit handshake when it is the connection's first and
    /// not an `initialize`.
    fn message(&mut self, value: Value) -> Result<Vec<ClientJsonRpcMessage>, Value> {
        let id = value.get("id").cloned().unwrap_or(Value::Null);
        if !value.is_object() || value.get("jsonrpc") != Some(&json!("2.0")) {
            return Err(error_reply(
                id,
                INVALID_REQUEST,
                "Invalid Request: expected a JSON-RPC 2.0 object with \"jsonrpc\": \"2.0\"",
            ));
        }
        if value.get("method").is_some_and(|m| !m.is_string()) {
            return Err(error_reply(
                id,
                INVALID_REQUEST,
                "Invalid Request: \"method\" must be a string",
            ));
        }
        let message: ClientJsonRpcMessage = serde_json::from_value(value).map_err(|error| {
            error_reply(
                id.clone(),
                INVALID_REQUEST,
                &format!("Invalid Request: {error}"),
            )
        })?;
        let mut messages = Vec::with_capacity(3);
        if !self.handshake_seen {
            self.handshake_seen = true;
            if !opens_session(&message) {
                messages.extend(implicit_handshake());
            }
        }
        messages.push(message);
        Ok(messages)
    }
}

/// Whether a first message starts the lifecycle itself: `initialize`, or a request carrying the
/// per-request protocol metadata of protocol 2026-07-28.
fn opens_session(message: &ClientJsonRpcMessage) -> bool {
    match message {
        ClientJsonRpcMessage::Request(request) => {
            matches!(request.request, ClientRequest::InitializeRequest(_))
                || request.request.get_meta().protocol_version().is_some()
        }
        _ => false,
    }
}

fn implicit_handshake() -> Vec<ClientJsonRpcMessage> {
    let initialize = json!({
        "jsonrpc": "2.0",
        "id": IMPLICIT_INITIALIZE_ID,
        "method": "initialize",
        "params": {
            "protocolVersion": IMPLICIT_PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "client-without-initialize", "version": "0"}
        }
    });
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    [initialize, initialized]
        .into_iter()
        .filter_map(|value| serde_json::from_value(value).ok())
        .collect()
}

fn is_implicit_initialize(message: &ClientJsonRpcMessage) -> bool {
    matches!(message, ClientJsonRpcMessage::Request(request)
        if id_key(&request.id) == id_key(&IMPLICIT_INITIALIZE_ID))
}

fn id_key(id: &impl serde::Serialize) -> String {
    serde_json::to_string(id).unwrap_or_default()
}

/// A JSON-RPC error object.
pub fn error_reply(id: Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

struct PendingBatch {
    awaited: HashSet<String>,
    /// Serialized members collected so far.
    collected: Vec<String>,
    collected_bytes: usize,
}

/// Routes the service's replies to frames: single replies go out as they come, batch members are held
/// until the whole batch is answered, the implicit `initialize` reply is dropped. No frame grows past
/// `max_reply_bytes`.
pub struct ReplyRouter {
    batches: Vec<PendingBatch>,
    max_reply_bytes: usize,
}

impl ReplyRouter {
    pub fn new(max_reply_bytes: usize) -> Self {
        Self {
            batches: Vec::new(),
            max_reply_bytes,
        }
    }

    fn expect_batch(&mut self, awaited: HashSet<String>, errors: Vec<Value>) {
        let collected: Vec<String> = errors.iter().map(Value::to_string).collect();
        let collected_bytes = collected.iter().map(String::len).sum();
        self.batches.push(PendingBatch {
            awaited,
            collected,
            collected_bytes,
        });
    }

    /// The frame to send for one message from the service, if any yet.
    pub fn route(&mut self, message: ServerJsonRpcMessage) -> Option<String> {
        let id = match &message {
            ServerJsonRpcMessage::Response(response) => serde_json::to_value(&response.id).ok(),
            ServerJsonRpcMessage::Error(error) => error
                .id
                .as_ref()
                .and_then(|id| serde_json::to_value(id).ok()),
            _ => None,
        };
        if id.as_ref().map(id_key).as_deref() == Some(&id_key(&IMPLICIT_INITIALIZE_ID)) {
            return None;
        }
        let text = serde_json::to_string(&message).ok()?;
        self.deliver(id, text)
    }

    /// The frame to send for an error answering request `id` without the service (a refusal).
    pub fn refuse(&mut self, id: Value, code: i64, message: &str) -> Option<String> {
        let text = error_reply(id.clone(), code, message).to_string();
        self.deliver(Some(id), text)
    }

    /// Drops request `id` from the batch awaiting it (the client cancelled it: it gets no answer). The
    /// batch's frame when that was the last member awaited; nothing when no member is left to send.
    pub fn forget(&mut self, id: &Value) -> Option<String> {
        let index = self.awaiting(&id_key(id))?;
        self.complete(index)
    }

    /// The pending batch awaiting `key`, which it no longer awaits.
    fn awaiting(&mut self, key: &str) -> Option<usize> {
        let index = self
            .batches
            .iter()
            .position(|batch| batch.awaited.contains(key))?;
        self.batches[index].awaited.remove(key);
        Some(index)
    }

    /// The frame of batch `index` once it awaits nothing more (none when no member is left to send).
    fn complete(&mut self, index: usize) -> Option<String> {
        if !self.batches[index].awaited.is_empty() {
            return None;
        }
        let done = self.batches.remove(index);
        (!done.collected.is_empty()).then(|| format!("[{}]", done.collected.join(",")))
    }

    fn deliver(&mut self, id: Option<Value>, text: String) -> Option<String> {
        let max = self.max_reply_bytes;
        let Some(id) = id else {
            return Some(text);
        };
        let Some(index) = self.awaiting(&id_key(&id)) else {
            return Some(if text.len() > max {
                reply_too_large(id, max)
            } else {
                text
            });
        };
        let batch = &mut self.batches[index];
        // Brackets and commas of the array, plus this member.
        let member = if batch.collected_bytes + batch.collected.len() + 2 + text.len() > max {
            reply_too_large(id, max)
        } else {
            text
        };
        batch.collected_bytes += member.len();
        batch.collected.push(member);
        self.complete(index)
    }
}

/// The error that replaces a reply too large to send.
fn reply_too_large(id: Value, max_reply_bytes: usize) -> String {
    LimitKind::ReplyTooLarge.record();
    error_reply(
        id,
        REPLY_TOO_LARGE,
        &format!(
            "the reply would exceed {max_reply_bytes} bytes (EHR_MCP_MAX_REPLY_BYTES); ask for less per message"
        ),
    )
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(decoder: &mut FrameDecoder, router: &mut ReplyRouter, text: &str) -> Decoded {
        decoder.decode(text, router)
    }

    #[test]
    fn a_bad_frame_gets_a_parse_error() {
        let (mut decoder, mut router) = (FrameDecoder::new(32), ReplyRouter::new(1 << 20));
        let decoded = decode(&mut decoder, &mut router, "{not json");
        assert!(decoded.to_service.is_empty());
        let reply = decoded.reply_now.unwrap_or_default();
        assert_eq!(reply["error"]["code"], PARSE_ERROR);
        assert_eq!(reply["id"], Value::Null);
    }

    #[test]
    fn a_first_message_without_initialize_gets_the_implicit_handshake() {
        let (mut decoder, mut router) = (FrameDecoder::new(32), ReplyRouter::new(1 << 20));
        let decoded = decode(
            &mut decoder,
            &mut router,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
        );
        assert_eq!(decoded.to_service.len(), 3);
        assert!(is_implicit_initialize(&decoded.to_service[0]));
        let again = decode(
            &mut decoder,
            &mut router,
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
        );
        assert_eq!(again.to_service.len(), 1);
    }

    #[test]
    fn an_initialize_first_is_passed_through() {
        let (mut decoder, mut router) = (FrameDecoder::new(32), ReplyRouter::new(1 << 20));
        let decoded = decode(
            &mut decoder,
            &mut router,
            r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#,
        );
        assert_eq!(decoded.to_service.len(), 1);
    }

    #[test]
    fn batches_are_answered_as_one_array_with_invalid_members_included() {
        let (mut decoder, mut router) = (FrameDecoder::new(32), ReplyRouter::new(1 << 20));
        let decoded = decode(
            &mut decoder,
            &mut router,
            r#"[{"jsonrpc":"2.0","id":7,"method":"ping"},{"jsonrpc":"2.0","method":"notifications/initialized"},{"foo":1}]"#,
        );
        assert!(decoded.reply_now.is_none());
        // implicit initialize + initialized, ping, notification
        assert_eq!(decoded.to_service.len(), 4);
        let implicit: ServerJsonRpcMessage = serde_json::from_value(json!({
            "jsonrpc": "2.0", "id": IMPLICIT_INITIALIZE_ID, "result": {}
        }))
        .unwrap_or_else(|_| {
            ServerJsonRpcMessage::error(rmcp::ErrorData::internal_error("x", None), None)
        });
        assert!(router.route(implicit).is_none());
        let pong: ServerJsonRpcMessage =
            serde_json::from_value(json!({"jsonrpc": "2.0", "id": 7, "result": {}}))
                .unwrap_or_else(|_| {
                    ServerJsonRpcMessage::error(rmcp::ErrorData::internal_error("x", None), None)
                });
        let frame: Value =
            serde_json::from_str(&router.route(pong).unwrap_or_default()).unwrap_or_default();
        let members = frame.as_array().cloned().unwrap_or_default();
        assert_eq!(members.len(), 2);
        assert!(
            members
                .iter()
                .any(|m| m["error"]["code"] == INVALID_REQUEST)
        );
        assert!(members.iter().any(|m| m["id"] == 7));
    }

    #[test]
    fn an_empty_batch_and_a_notification_only_batch() {
        let (mut decoder, mut router) = (FrameDecoder::new(32), ReplyRouter::new(1 << 20));
        let empty = decode(&mut decoder, &mut router, "[]");
        assert_eq!(
            empty.reply_now.unwrap_or_default()["error"]["code"],
            INVALID_REQUEST
        );
        let notes = decode(
            &mut decoder,
            &mut router,
            r#"[{"jsonrpc":"2.0","method":"notifications/initialized"}]"#,
        );
        assert!(notes.reply_now.is_none());
    }

    fn pong(id: u64, padding: usize) -> ServerJsonRpcMessage {
        serde_json::from_value(
            json!({"jsonrpc": "2.0", "id": id, "result": {"pad": "x".repeat(padding)}}),
        )
        .unwrap_or_else(|_| {
            ServerJsonRpcMessage::error(rmcp::ErrorData::internal_error("x", None), None)
        })
    }

    #[test]
    fn a_batch_over_the_length_limit_is_refused_whole() {
        let (mut decoder, mut router) = (FrameDecoder::new(3), ReplyRouter::new(1 << 20));
        let batch: Vec<Value> = (0..4)
            .map(|id| json!({"jsonrpc": "2.0", "id": id, "method": "ping"}))
            .collect();
        let decoded = decode(&mut decoder, &mut router, &Value::Array(batch).to_string());
        assert!(decoded.to_service.is_empty());
        let reply = decoded.reply_now.unwrap_or_default();
        assert_eq!(reply["error"]["code"], INVALID_REQUEST);
        assert!(
            reply["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains("EHR_MCP_MAX_BATCH_LENGTH")
        );
    }

    #[test]
    fn a_forgotten_member_leaves_its_batch_and_the_rest_is_sent() {
        let (mut decoder, mut router) = (FrameDecoder::new(32), ReplyRouter::new(1 << 20));
        let batch: Vec<Value> = (1..=2)
            .map(|id| json!({"jsonrpc": "2.0", "id": id, "method": "ping"}))
            .collect();
        decode(&mut decoder, &mut router, &Value::Array(batch).to_string());
        assert!(
            router.forget(&json!(1)).is_none(),
            "member 2 is still awaited"
        );
        let frame: Vec<Value> =
            serde_json::from_str(&router.route(pong(2, 0)).unwrap_or_default()).unwrap_or_default();
        assert_eq!(frame.len(), 1);
        assert_eq!(frame[0]["id"], 2);
        // A batch whose only member is forgotten sends nothing; an unknown id is no batch's.
        let alone = json!([{"jsonrpc": "2.0", "id": 3, "method": "ping"}]);
        decode(&mut decoder, &mut router, &alone.to_string());
        assert!(router.forget(&json!(3)).is_none());
        assert!(router.forget(&json!(99)).is_none());
        assert!(
            router.route(pong(3, 0)).is_some(),
            "a later answer is no longer held"
        );
    }

    #[test]
    fn replies_never_grow_past_the_reply_limit() {
        let (mut decoder, mut router) = (FrameDecoder::new(32), ReplyRouter::new(1000));
        // A single reply over the limit becomes an error with the same id.
        let single: Value = serde_json::from_str(&router.route(pong(9, 2000)).unwrap_or_default())
            .unwrap_or_default();
        assert_eq!(single["id"], 9);
        assert_eq!(single["error"]["code"], REPLY_TOO_LARGE);
        // In a batch, members past the limit are errors; the frame stays within it.
        let batch: Vec<Value> = (1..=4)
            .map(|id| json!({"jsonrpc": "2.0", "id": id, "method": "ping"}))
            .collect();
        decode(&mut decoder, &mut router, &Value::Array(batch).to_string());
        let mut frame = None;
        for id in 1..=4 {
            frame = router.route(pong(id, 300));
        }
        let frame = frame.unwrap_or_default();
        assert!(frame.len() <= 1000 + 4 * 200, "{} bytes", frame.len());
        let members: Vec<Value> = serde_json::from_str(&frame).unwrap_or_default();
        assert_eq!(members.len(), 4);
        assert!(members[0]["result"].is_object());
        assert_eq!(members[3]["error"]["code"], REPLY_TOO_LARGE);
    }
}
