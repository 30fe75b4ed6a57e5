//! Property-based fuzzing (proptest) of what a peer controls: the JSON-RPC frame reader, the access-token
//! parser, and every tool's arguments against the real server. Short in CI (the default case counts);
//! the long run is one command, ≥ 100,000 cases per target:
//!
//! `PROPTEST_CASES=100000 cargo test --release --test it fuzz_ -- --test-threads=1`
//!
//! Properties: the reader never panics, answers every undecodable frame with a JSON-RPC error (never an
//! oversized one) and never passes more than the batch cap to the service; the token parser refuses
//! every mutated or random token with `Unauthenticated` (never a panic, never `Internal`, never an
//! accepted forgery); a tool given arbitrary arguments answers a tool error or a result, never
//! `internal`, and the connection keeps serving.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value, json};

use ehr_mcp::transport::jsonrpc::{FrameDecoder, ReplyRouter};

/// The configured case count (`PROPTEST_CASES`), else `default`.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(default)
}

/// Arbitrary JSON, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,40}".prop_map(Value::String),
        prop_oneof![
            Just("MRN001"),
            Just("1234567890"),
            Just("2031-01-02"),
            Just("10:00 AM"),
            Just("\u{0}"),
            Just("'; DROP TABLE patients; --"),
        ]
        .prop_map(|s| Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(".{0,12}", inner, 0..8)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// A JSON-RPC-shaped message with arbitrary members.
fn jsonrpc_message() -> impl Strategy<Value = Value> {
    let method = prop_oneof![
        Just("tools/call".to_owned()),
        Just("tools/list".to_owned()),
        Just("initialize".to_owned()),
        Just("notifications/initialized".to_owned()),
        Just("ping".to_owned()),
        ".{0,20}",
    ];
    (
        proptest::option::of(json_value()),
        method,
        proptest::option::of(json_value()),
        any::<bool>(),
    )
        .prop_map(|(id, method, params, versioned)| {
            let mut message = serde_json::Map::new();
            if versioned {
                message.insert("jsonrpc".into(), json!("2.0"));
            }
            if let Some(id) = id {
                message.insert("id".into(), id);
            }
            message.insert("method".into(), json!(method));
            if let Some(params) = params {
                message.insert("params".into(), params);
            }
            Value::Object(message)
        })
}

/// JSON-RPC frames: one message, a batch (up to past the cap), any JSON, any text.
fn jsonrpc_frame() -> impl Strategy<Value = String> {
    prop_oneof![
        jsonrpc_message().prop_map(|m| m.to_string()),
        prop::collection::vec(jsonrpc_message(), 0..80).prop_map(|b| Value::Array(b).to_string()),
        json_value().prop_map(|v| v.to_string()),
        ".{0,200}",
    ]
}

#[test]
fn fuzz_jsonrpc_reader_never_panics_and_caps_batches() {
    const BATCH_CAP: usize = 64;
    let mut runner = TestRunner::new(Config::with_cases(cases(2_000)));
    runner
        .run(&jsonrpc_frame(), |frame| {
            let mut decoder = FrameDecoder::new(BATCH_CAP);
            let mut router = ReplyRouter::new(1 << 20);
            let decoded = decoder.decode(&frame, &mut router);
            prop_assert!(decoded.to_service.len() <= BATCH_CAP + 1);
            if let Some(reply) = &decoded.reply_now {
                let text = reply.to_string();
                prop_assert!(text.len() < 1 << 20);
                let replies = match reply {
                    Value::Array(items) => items.clone(),
                    single => vec![single.clone()],
                };
                for reply in replies {
                    prop_assert_eq!(&reply["jsonrpc"], "2.0");
                    prop_assert!(reply.get("error").is_some() || reply.get("result").is_some());
                }
            }
            if serde_json::from_str::<Value>(&frame).is_err() {
                let reply = decoded.reply_now.clone().unwrap_or(Value::Null);
                prop_assert_eq!(&reply["error"]["code"], -32700);
            }
            Ok(())
        })
        .unwrap();
}

/// Mutations of a real token: a flipped byte, a cut, a swapped segment, random base64url.
fn token_mutation(real: String) -> impl Strategy<Value = String> {
    let length = real.len();
    let flip = (0..length, any::<u8>()).prop_map({
        let real = real.clone();
        move |(at, byte)| {
            let mut bytes = real.clone().into_bytes();
            bytes[at] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."
                [usize::from(byte) % 65];
            String::from_utf8_lossy(&bytes).into_owned()
        }
    });
    let cut = (0..length).prop_map({
        let real = real.clone();
        move |at| real[..at].to_owned()
    });
    let segments = "[A-Za-z0-9_-]{0,120}\\.[A-Za-z0-9_-]{0,400}\\.[A-Za-z0-9_-]{0,120}";
    prop_oneof![flip, cut, segments, ".{0,300}"]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzz_token_parser_refuses_every_mutation() {
    let db = crate::support::TestDb::sqlite().await;
    let client = crate::auth_support::register(
        &db.store,
        ehr_mcp::domain::access::Role::Doctor,
        "read:patients",
    )
    .await;
    let auth = crate::auth_support::service(&db.store, None).await;
    let real = auth
        .issue_for_client_secret(
            client.client_id.as_str(),
            client.client_secret.expose(),
            None,
            None,
            crate::auth_support::http_origin("10.1.1.1"),
        )
        .await
        .expect("issue")
        .access_token;
    assert!(auth.validate(&real).await.is_ok());
    let runtime = tokio::runtime::Handle::current();
    let mut runner = TestRunner::new(Config::with_cases(cases(2_000)));
    let strategy = token_mutation(real.clone());
    tokio::task::block_in_place(|| {
        runner
            .run(&strategy, |token| {
                if token == real {
                    return Ok(());
                }
                let outcome = runtime.block_on(auth.validate(&token));
                match outcome {
                    Err(ehr_mcp::auth::AuthError::Unauthenticated(_)) => Ok(()),
                    other => Err(TestCaseError::fail(format!(
                        "{token:?} gave {:?}",
                        other.map(|p| p.client_id.to_string())
                    ))),
                }
            })
            .unwrap();
    });
}

/// Every tool's argument names (from `tools/list`) with arbitrary values, plus unknown names.
fn tool_arguments(tools: Vec<(String, Vec<String>)>) -> impl Strategy<Value = (String, Value)> {
    (0..tools.len()).prop_flat_map(move |index| {
        let (name, fields) = tools[index].clone();
        let mut keys: Vec<String> = fields;
        keys.push("unexpected".to_owned());
        let key = proptest::sample::select(keys);
        prop::collection::btree_map(key, json_value(), 0..6).prop_map(move |arguments| {
            (name.clone(), Value::Object(arguments.into_iter().collect()))
        })
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzz_tool_arguments_never_give_internal_errors() {
    // The clinician's hourly allowance is raised so a long run exercises the tools, not the limit.
    let db = crate::support::TestDb::for_app().await;
    crate::mcp_support::load_clinical_fixture(&db).await;
    let dir = tempfile::tempdir().unwrap();
    let credentials = crate::mcp_support::demo_clients(&db, &dir).await;
    sqlx::query("UPDATE oauth_clients SET rate_limit = 100000000")
        .execute(db.store.pool())
        .await
        .unwrap();
    let mcp = crate::mcp_support::McpApp {
        app: crate::support::spawn_app_on(db, &[]).await,
        credentials,
        _dir: dir,
    };
    let token = mcp.token("copilot-studio").await;
    let client = reqwest::Client::new();
    let post = |body: Value| {
        client
            .post(mcp.mcp_url())
            .header("Accept", "application/json, text/event-stream")
            .header("Content-Type", "application/json")
            .header("MCP-Protocol-Version", "2025-06-18")
            .bearer_auth(&token)
            .body(body.to_string())
            .send()
    };
    let listed: Value = post(json!({"jsonrpc": "2.0", "id": 0, "method": "tools/list"}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let tools: Vec<(String, Vec<String>)> = listed["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|tool| {
            let fields = tool["inputSchema"]["properties"]
                .as_object()
                .map(|properties| properties.keys().cloned().collect())
                .unwrap_or_default();
            (tool["name"].as_str().unwrap().to_owned(), fields)
        })
        .collect();
    assert!(tools.len() > 10);
    let runtime = tokio::runtime::Handle::current();
    let mut runner = TestRunner::new(Config::with_cases(cases(300)));
    tokio::task::block_in_place(|| {
        runner
            .run(&tool_arguments(tools), |(name, arguments)| {
                let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                                  "params": {"name": name, "arguments": arguments}});
                let reply: Value =
                    runtime.block_on(async { post(body).await.unwrap().json().await.unwrap() });
                if let Some(text) = reply["result"]["content"][0]["text"].as_str() {
                    if reply["result"]["isError"] == true {
                        let error: Value = serde_json::from_str(text).unwrap_or(Value::Null);
                        prop_assert_ne!(&error["code"], "internal", "{} {}", name, reply);
                    }
                } else {
                    prop_assert!(
                        reply.get("error").is_some() || reply.get("result").is_some(),
                        "{}",
                        reply
                    );
                    prop_assert_ne!(&reply["error"]["code"], -32603, "{} {}", name, reply);
                }
                Ok(())
            })
            .unwrap();
    });
    mcp.shutdown().await;
}

/// One WebSocket frame as a client might send it: any FIN/RSV/opcode, masked or not, the length in any
/// of its three encodings (including lengths far past what follows), a payload that is random or, with
/// RSV1, raw deflate of random text.
fn websocket_frame() -> impl Strategy<Value = Vec<u8>> {
    (
        any::<bool>(),
        0u8..8,
        0u8..16,
        any::<bool>(),
        any::<[u8; 4]>(),
        prop_oneof![
            prop::collection::vec(any::<u8>(), 0..300),
            ".{0,300}".prop_map(|text: String| deflate_raw(text.as_bytes())),
        ],
        prop_oneof![
            Just(None),
            Just(Some(125u64)),
            Just(Some(126)),
            Just(Some(65_535)),
            Just(Some(65_536)),
            Just(Some(u64::MAX >> 1)),
            Just(Some(u64::MAX)),
            any::<u64>().prop_map(Some),
        ],
    )
        .prop_map(|(fin, rsv, opcode, masked, key, payload, claimed)| {
            let mut frame = vec![(u8::from(fin) << 7) | (rsv << 4) | opcode];
            let length = claimed.unwrap_or(payload.len() as u64);
            let mask_bit = u8::from(masked) << 7;
            match length {
                0..=125 => frame.push(mask_bit | length as u8),
                126..=65_535 => {
                    frame.push(mask_bit | 126);
                    frame.extend_from_slice(&(length as u16).to_be_bytes());
                }
                _ => {
                    frame.push(mask_bit | 127);
                    frame.extend_from_slice(&length.to_be_bytes());
                }
            }
            if masked {
                frame.extend_from_slice(&key);
            }
            frame.extend(
                payload
                    .iter()
                    .enumerate()
                    .map(|(at, byte)| if masked { byte ^ key[at % 4] } else { *byte }),
            );
            frame
        })
}

/// Raw deflate with the sync-flush tail stripped, as permessage-deflate sends a message.
fn deflate_raw(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
    let _ = encoder.write_all(bytes);
    let _ = encoder.flush();
    let mut out = encoder.get_ref().clone();
    if out.ends_with(&[0, 0, 0xff, 0xff]) {
        out.truncate(out.len() - 4);
    }
    out
}

/// The server's WebSocket frame reader (`transport::ws_codec`, with and without permessage-deflate) on
/// arbitrary frame sequences and raw bytes: it never panics, never hangs once the peer stops sending,
/// and never hands on a message over the message limit.
#[test]
fn fuzz_websocket_frame_reader_never_panics_and_keeps_its_limits() {
    use ehr_mcp::transport::ws_codec::{Deflate, WsConnection, WsSettings};
    use futures::StreamExt;
    use tokio::io::AsyncWriteExt;

    const MAX_MESSAGE: usize = 4096;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let input = prop_oneof![
        prop::collection::vec(websocket_frame(), 0..12).prop_map(|frames| frames.concat()),
        prop::collection::vec(any::<u8>(), 0..600),
    ];
    let mut runner = TestRunner::new(Config::with_cases(cases(1_000)));
    runner
        .run(&(input, any::<bool>()), |(bytes, deflate)| {
            let outcome = runtime.block_on(async {
                let (client, server) = tokio::io::duplex(1 << 16);
                let settings = WsSettings {
                    max_message_bytes: MAX_MESSAGE,
                    max_frame_bytes: MAX_MESSAGE,
                    deflate: deflate.then(Deflate::default),
                };
                let mut connection = WsConnection::new(server, settings);
                let (mut client_rx, mut client_tx) = tokio::io::split(client);
                // The client reads whatever the server answers (pongs, close frames) and sends its bytes.
                let drain = tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut client_rx, &mut tokio::io::sink()).await;
                });
                let _ = client_tx.write_all(&bytes).await;
                let _ = client_tx.shutdown().await;
                drop(client_tx);
                let read = tokio::time::timeout(std::time::Duration::from_secs(5), async {
                    let mut largest = 0usize;
                    while let Some(item) = connection.next().await {
                        match item {
                            Ok(message) => largest = largest.max(message.into_data().len()),
                            Err(_) => break,
                        }
                    }
                    largest
                })
                .await;
                drop(connection);
                drain.abort();
                read
            });
            let largest = outcome.map_err(|_| TestCaseError::fail("the reader hung"))?;
            prop_assert!(largest <= MAX_MESSAGE);
            Ok(())
        })
        .unwrap();
}
