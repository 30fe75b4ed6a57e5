//! Compression (issue #15): `permessage-deflate` on WebSocket (RFC 7692) negotiated as a browser, Python
//! `websockets` and raw frames ask for it, the Autobahn-style cases that apply (window bits, no context
//! takeover, fragmented compressed messages, a compressed control frame, RSV1 without the extension),
//! HTTP answers by `Accept-Encoding` and request bodies by `Content-Encoding`, the bombs (a compressed
//! WebSocket message or HTTP body that inflates past the limit: close 1009 / 413, without the memory), and
//! `--compression off`.

use std::io::{Read, Write};
use std::time::Duration;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::mcp_support::{McpApp, clients_dir, run_client, spawn_mcp_app};

const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// A WebSocket client speaking raw frames, as a browser would on the wire.
struct RawSocket {
    stream: TcpStream,
    buffer: Vec<u8>,
}

/// One frame from the server: the first header byte (FIN, RSV1, opcode) and the payload.
struct ServerFrame {
    first: u8,
    payload: Vec<u8>,
}

impl ServerFrame {
    fn opcode(&self) -> u8 {
        self.first & 0x0F
    }
    fn compressed(&self) -> bool {
        self.first & 0x40 != 0
    }
    fn close_code(&self) -> u16 {
        assert_eq!(self.opcode(), 8, "not a close frame");
        u16::from_be_bytes([self.payload[0], self.payload[1]])
    }
}

impl RawSocket {
    /// Upgrades `/ws` offering `extensions`; returns the socket and the 101 answer's head.
    async fn connect(port: u16, token: Option<&str>, extensions: Option<&str>) -> (Self, String) {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let mut request = format!(
            "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Protocol: mcp\r\n"
        );
        if let Some(token) = token {
            request.push_str(&format!("Authorization: Bearer {token}\r\n"));
        }
        if let Some(extensions) = extensions {
            request.push_str(&format!("Sec-WebSocket-Extensions: {extensions}\r\n"));
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut buffer = Vec::new();
        let head_end = loop {
            let mut chunk = [0u8; 1024];
            let read = stream.read(&mut chunk).await.unwrap();
            assert!(read > 0, "connection closed during the handshake");
            buffer.extend_from_slice(&chunk[..read]);
            if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4;
            }
        };
        let head = String::from_utf8(buffer[..head_end].to_vec()).unwrap();
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        assert!(
            head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
            "Sec-WebSocket-Accept: {head}"
        );
        let rest = buffer[head_end..].to_vec();
        (
            Self {
                stream,
                buffer: rest,
            },
            head,
        )
    }

    /// Sends one masked frame: `first` is the FIN/RSV/opcode byte.
    async fn send_frame(&mut self, first: u8, payload: &[u8]) {
        let mask = [0x37, 0xfa, 0x21, 0x3d];
        let mut frame = vec![first];
        if payload.len() < 126 {
            frame.push(0x80 | payload.len() as u8);
        } else if payload.len() <= 0xFFFF {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        } else {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(payload.len() as u64).to_be_bytes());
        }
        frame.extend_from_slice(&mask);
        frame.extend(
            payload
                .iter()
                .enumerate()
                .map(|(index, byte)| byte ^ mask[index % 4]),
        );
        // The server may close mid-way (a refused frame): a write error is not the test's failure.
        let _ = self.stream.write_all(&frame).await;
    }

    async fn fill(&mut self, at_least: usize) {
        while self.buffer.len() < at_least {
            let mut chunk = vec![0u8; 64 * 1024];
            let read = tokio::time::timeout(Duration::from_secs(10), self.stream.read(&mut chunk))
                .await
                .expect("a frame within 10 s")
                .unwrap_or(0);
            assert!(read > 0, "connection ended before a whole frame");
            self.buffer.extend_from_slice(&chunk[..read]);
        }
    }

    /// The next frame from the server (which never masks), skipping pings.
    async fn read_frame(&mut self) -> ServerFrame {
        loop {
            self.fill(2).await;
            let first = self.buffer[0];
            assert_eq!(self.buffer[1] & 0x80, 0, "server frames are not masked");
            let (length, header) = match self.buffer[1] & 0x7F {
                126 => {
                    self.fill(4).await;
                    (
                        u16::from_be_bytes([self.buffer[2], self.buffer[3]]) as usize,
                        4,
                    )
                }
                127 => {
                    self.fill(10).await;
                    let mut bytes = [0u8; 8];
                    bytes.copy_from_slice(&self.buffer[2..10]);
                    (u64::from_be_bytes(bytes) as usize, 10)
                }
                short => (short as usize, 2),
            };
            self.fill(header + length).await;
            let payload = self.buffer[header..header + length].to_vec();
            self.buffer.drain(..header + length);
            if first & 0x0F == 0x9 {
                continue;
            }
            return ServerFrame { first, payload };
        }
    }

    /// The next text message as JSON, inflated with `inflate` when compressed.
    async fn read_json(&mut self, inflate: &mut Decompress) -> (bool, Value) {
        let frame = self.read_frame().await;
        assert_eq!(frame.opcode(), 1, "a text frame");
        assert_ne!(frame.first & 0x80, 0, "the server sends whole messages");
        let text = if frame.compressed() {
            inflate_message(inflate, &frame.payload)
        } else {
            frame.payload.clone()
        };
        (frame.compressed(), serde_json::from_slice(&text).unwrap())
    }
}

fn deflate_message(compress: &mut Compress, input: &[u8]) -> Vec<u8> {
    let mut output = Vec::with_capacity(input.len() + 1024);
    compress
        .compress_vec(input, &mut output, FlushCompress::Sync)
        .unwrap();
    assert!(output.ends_with(&TAIL));
    output.truncate(output.len() - 4);
    output
}

fn inflate_message(inflate: &mut Decompress, payload: &[u8]) -> Vec<u8> {
    let mut input = payload.to_vec();
    input.extend_from_slice(&TAIL);
    let mut output = Vec::with_capacity(1 << 20);
    inflate
        .decompress_vec(&input, &mut output, FlushDecompress::Sync)
        .expect("the server's deflate data decodes with the negotiated window");
    output
}

/// A deflate stream of `megabytes` MiB of zeros, as one message (the 4-byte tail stripped).
fn zero_bomb(megabytes: usize) -> Vec<u8> {
    let mut compress = Compress::new(Compression::best(), false);
    let zeros = vec![0u8; 1 << 20];
    let mut output = Vec::with_capacity(megabytes * 1100);
    for _ in 0..megabytes {
        let mut offset = 0;
        while offset < zeros.len() {
            if output.capacity() - output.len() < 4096 {
                output.reserve(1 << 16);
            }
            let before = compress.total_in();
            compress
                .compress_vec(&zeros[offset..], &mut output, FlushCompress::None)
                .unwrap();
            offset += (compress.total_in() - before) as usize;
        }
    }
    loop {
        output.reserve(1 << 16);
        compress
            .compress_vec(&[], &mut output, FlushCompress::Sync)
            .unwrap();
        if output.ends_with(&TAIL) {
            break;
        }
    }
    output.truncate(output.len() - 4);
    output
}

/// The process's peak resident memory, KiB (`VmHWM`).
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0)
}

fn header_of<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then_some(value.trim())
    })
}

fn initialize() -> Vec<u8> {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "raw", "version": "1"}}})
    .to_string()
    .into_bytes()
}

fn summary_call(id: u64) -> Vec<u8> {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
           "params": {"name": "get_patient_summary", "arguments": {"mrn": "MRN001"}}})
    .to_string()
    .into_bytes()
}

#[tokio::test]
async fn a_browser_style_offer_negotiates_deflate_and_fragmented_compressed_messages_work() {
    let mcp = spawn_mcp_app(&[]).await;
    let token = mcp.token("copilot-studio").await;
    let (mut socket, head) = RawSocket::connect(
        mcp.app.port,
        Some(&token),
        Some("permessage-deflate; client_max_window_bits"),
    )
    .await;
    assert_eq!(
        header_of(&head, "Sec-WebSocket-Extensions"),
        Some("permessage-deflate")
    );
    assert_eq!(header_of(&head, "Sec-WebSocket-Protocol"), Some("mcp"));

    let mut compress = Compress::new(Compression::default(), false);
    let mut inflate = Decompress::new(false);
    // A compressed initialize, in one frame.
    socket
        .send_frame(0xC1, &deflate_message(&mut compress, &initialize()))
        .await;
    let (_, reply) = socket.read_json(&mut inflate).await;
    assert!(reply["result"]["serverInfo"].is_object(), "{reply}");
    socket
        .send_frame(
            0x81,
            br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        )
        .await;

    // A compressed message in three fragments: RSV1 on the first frame only.
    let wire = deflate_message(&mut compress, &summary_call(2));
    let (a, rest) = wire.split_at(wire.len() / 3);
    let (b, c) = rest.split_at(rest.len() / 2);
    socket.send_frame(0x41, a).await;
    socket.send_frame(0x00, b).await;
    socket.send_frame(0x80, c).await;
    let (compressed, reply) = socket.read_json(&mut inflate).await;
    assert!(compressed, "a patient summary is over the threshold");
    assert_eq!(reply["id"], 2);
    assert_eq!(reply["result"]["isError"], false, "{reply}");

    // The same call plain (each message chooses), answered compressed with the context taken over.
    socket.send_frame(0x81, &summary_call(3)).await;
    let (compressed, again) = socket.read_json(&mut inflate).await;
    assert!(compressed);
    assert_eq!(
        again["result"]["structuredContent"],
        reply["result"]["structuredContent"]
    );

    // Small answers stay plain (below the threshold).
    socket
        .send_frame(0x81, br#"{"jsonrpc":"2.0","id":4,"method":"ping"}"#)
        .await;
    let (compressed, pong) = socket.read_json(&mut inflate).await;
    assert!(!compressed, "{pong}");
    mcp.shutdown().await;
}

#[tokio::test]
async fn window_bits_and_no_context_takeover_are_honoured() {
    let mcp = spawn_mcp_app(&[]).await;
    let token = mcp.token("copilot-studio").await;
    let (mut socket, head) = RawSocket::connect(
        mcp.app.port,
        Some(&token),
        Some(
            "permessage-deflate; server_max_window_bits=8, permessage-deflate; \
             server_max_window_bits=9; server_no_context_takeover; client_no_context_takeover",
        ),
    )
    .await;
    // The first offer (a 256-byte window, which zlib cannot make) is declined, the second accepted.
    assert_eq!(
        header_of(&head, "Sec-WebSocket-Extensions"),
        Some(
            "permessage-deflate; server_max_window_bits=9; server_no_context_takeover; \
             client_no_context_takeover"
        )
    );
    socket.send_frame(0x81, &initialize()).await;
    let mut unused = Decompress::new(false);
    socket.read_json(&mut unused).await;
    for id in [2, 3] {
        socket.send_frame(0x81, &summary_call(id)).await;
        // A fresh 512-byte-window inflater per message decodes every answer: the server kept to its
        // window and took no context over from the message before.
        let mut fresh = Decompress::new_with_window_bits(false, 9);
        let (compressed, reply) = socket.read_json(&mut fresh).await;
        assert!(compressed);
        assert_eq!(reply["id"], id);
        assert_eq!(reply["result"]["isError"], false);
    }
    mcp.shutdown().await;
}

#[tokio::test]
async fn a_compressed_control_frame_is_a_protocol_error() {
    let mcp = spawn_mcp_app(&[]).await;
    let (mut socket, _) = RawSocket::connect(mcp.app.port, None, Some("permessage-deflate")).await;
    socket.send_frame(0xC9, b"").await; // FIN + RSV1 + ping
    let close = socket.read_frame().await;
    assert_eq!(close.close_code(), 1002);
    mcp.shutdown().await;
}

#[tokio::test]
async fn rsv1_on_a_connection_without_the_extension_is_refused() {
    let mcp = spawn_mcp_app(&[]).await;
    let (mut socket, head) = RawSocket::connect(mcp.app.port, None, None).await;
    assert_eq!(header_of(&head, "Sec-WebSocket-Extensions"), None);
    let mut compress = Compress::new(Compression::default(), false);
    socket
        .send_frame(0xC1, &deflate_message(&mut compress, &initialize()))
        .await;
    let close = socket.read_frame().await;
    assert_eq!(close.close_code(), 1002);
    // RSV1 on a continuation frame is refused too, with the extension negotiated.
    let (mut socket, _) = RawSocket::connect(mcp.app.port, None, Some("permessage-deflate")).await;
    socket.send_frame(0x01, b"{\"jsonrpc\":").await;
    socket.send_frame(0xC0, b"\"2.0\"}").await;
    assert_eq!(socket.read_frame().await.close_code(), 1002);
    mcp.shutdown().await;
}

#[tokio::test]
async fn a_compressed_message_inflating_past_the_limit_closes_with_1009_without_the_memory() {
    let mcp = spawn_mcp_app(&[]).await;
    // 256 MiB of zeros in about 250 KiB: under the frame limit (4 × 1 MiB) on the wire.
    let bomb = zero_bomb(256);
    assert!(bomb.len() < 1 << 20, "{}", bomb.len());
    let before = peak_rss_kib();
    let (mut socket, _) = RawSocket::connect(mcp.app.port, None, Some("permessage-deflate")).await;
    socket.send_frame(0xC1, &bomb).await;
    let close = socket.read_frame().await;
    assert_eq!(close.close_code(), 1009);
    let reason = String::from_utf8_lossy(&close.payload[2..]).to_string();
    assert!(reason.contains("EHR_MCP_MAX_MESSAGE_BYTES"), "{reason}");
    let grown_mib = peak_rss_kib().saturating_sub(before) / 1024;
    assert!(grown_mib < 128, "peak RSS grew by {grown_mib} MiB");
    mcp.shutdown().await;
}

async fn summary_over_http(
    mcp: &McpApp,
    token: &str,
    accept_encoding: Option<&str>,
) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(mcp.mcp_url())
        .bearer_auth(token)
        .header("Accept", "application/json, text/event-stream")
        .header("Content-Type", "application/json")
        .header("MCP-Protocol-Version", "2025-11-25")
        .body(summary_call(1));
    if let Some(encoding) = accept_encoding {
        request = request.header("Accept-Encoding", encoding);
    }
    request.send().await.unwrap()
}

async fn decode(encoding: &str, body: &[u8]) -> Vec<u8> {
    use async_compression::tokio::bufread::{BrotliDecoder, GzipDecoder, ZstdDecoder};
    let mut output = Vec::new();
    match encoding {
        "gzip" => GzipDecoder::new(body).read_to_end(&mut output).await,
        "br" => BrotliDecoder::new(body).read_to_end(&mut output).await,
        "zstd" => ZstdDecoder::new(body).read_to_end(&mut output).await,
        other => panic!("unexpected encoding {other}"),
    }
    .unwrap();
    output
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

#[tokio::test]
async fn http_answers_are_compressed_as_accept_encoding_asks() {
    let mcp = spawn_mcp_app(&[]).await;
    let token = mcp.token("copilot-studio").await;
    let plain = summary_over_http(&mcp, &token, None).await;
    assert!(plain.headers().get("content-encoding").is_none());
    let plain: Value = plain.json().await.unwrap();
    assert_eq!(plain["result"]["isError"], false, "{plain}");

    for encoding in ["gzip", "br", "zstd"] {
        let response = summary_over_http(&mcp, &token, Some(encoding)).await;
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["content-encoding"],
            encoding,
            "{encoding}"
        );
        let wire = response.bytes().await.unwrap();
        let decoded: Value = serde_json::from_slice(&decode(encoding, &wire).await).unwrap();
        assert_eq!(
            decoded["result"]["structuredContent"],
            plain["result"]["structuredContent"]
        );
        assert!(wire.len() < plain.to_string().len(), "{encoding}");
    }

    // The FHIR API and the OAuth metadata too; tiny answers stay plain.
    let client = reqwest::Client::new();
    let everything = client
        .get(mcp.app.url("/fhir/r4/Patient/MRN001/$everything"))
        .bearer_auth(&token)
        .header("Accept-Encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(everything.status(), 200);
    assert_eq!(everything.headers()["content-encoding"], "gzip");
    let bundle: Value =
        serde_json::from_slice(&decode("gzip", &everything.bytes().await.unwrap()).await).unwrap();
    assert_eq!(bundle["resourceType"], "Bundle");
    let metadata = client
        .get(mcp.app.url("/.well-known/oauth-authorization-server"))
        .header("Accept-Encoding", "br")
        .send()
        .await
        .unwrap();
    assert_eq!(metadata.headers()["content-encoding"], "br");
    let health = client
        .get(mcp.app.url("/healthz"))
        .header("Accept-Encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert!(health.headers().get("content-encoding").is_none());
    mcp.shutdown().await;
}

#[tokio::test]
async fn compressed_request_bodies_are_accepted_and_a_gzip_bomb_is_413() {
    let mcp = spawn_mcp_app(&[]).await;
    let token = mcp.token("copilot-studio").await;
    let client = reqwest::Client::new();
    let response = client
        .post(mcp.mcp_url())
        .bearer_auth(&token)
        .header("Accept", "application/json, text/event-stream")
        .header("Content-Type", "application/json")
        .header("Content-Encoding", "gzip")
        .header("MCP-Protocol-Version", "2025-11-25")
        .body(gzip(&summary_call(7)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let reply: Value = response.json().await.unwrap();
    assert_eq!(reply["id"], 7);
    assert_eq!(reply["result"]["isError"], false, "{reply}");

    // A form body (the token endpoint) in gzip.
    let secret = mcp.client("copilot-studio")["client_secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let form =
        format!("grant_type=client_credentials&client_id=copilot-studio&client_secret={secret}");
    let token_response = client
        .post(mcp.app.url("/oauth/token"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("Content-Encoding", "gzip")
        .body(gzip(form.as_bytes()))
        .send()
        .await
        .unwrap();
    assert_eq!(token_response.status(), 200);

    // 256 MiB of spaces in about 250 KiB of gzip: refused like an oversized plain body.
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), Compression::best());
    let spaces = vec![b' '; 1 << 20];
    for _ in 0..256 {
        encoder.write_all(&spaces).unwrap();
    }
    let bomb = encoder.finish().unwrap();
    assert!(bomb.len() < 1 << 20, "{}", bomb.len());
    let before = peak_rss_kib();
    let refused = client
        .post(mcp.mcp_url())
        .bearer_auth(&token)
        .header("Accept", "application/json, text/event-stream")
        .header("Content-Type", "application/json")
        .header("Content-Encoding", "gzip")
        .body(bomb)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 413);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "body_too_large");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("EHR_MCP_MAX_MESSAGE_BYTES")
    );
    let grown_mib = peak_rss_kib().saturating_sub(before) / 1024;
    assert!(grown_mib < 128, "peak RSS grew by {grown_mib} MiB");
    mcp.shutdown().await;
}

#[tokio::test]
async fn compression_off_negotiates_nothing_and_encodes_nothing() {
    let mcp = spawn_mcp_app(&["--compression", "off"]).await;
    let token = mcp.token("copilot-studio").await;
    let (_socket, head) = RawSocket::connect(
        mcp.app.port,
        Some(&token),
        Some("permessage-deflate; client_max_window_bits"),
    )
    .await;
    assert_eq!(header_of(&head, "Sec-WebSocket-Extensions"), None);
    let response = summary_over_http(&mcp, &token, Some("gzip, br, zstd")).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("content-encoding").is_none());
    let reply: Value = response.json().await.unwrap();
    assert_eq!(reply["result"]["isError"], false);
    mcp.shutdown().await;
}

/// Python `websockets` with `compression="deflate"`, without, and with window bits and no context
/// takeover; the official Python MCP SDK over Streamable HTTP (httpx asks for gzip).
async fn python_clients(extra: &[&str], mode: &str) -> Value {
    let mcp = spawn_mcp_app(extra).await;
    let token = mcp.token("copilot-studio").await;
    let python = clients_dir().join(".venv/bin/python");
    let mut command = tokio::process::Command::new(python);
    command
        .arg(clients_dir().join("compression_check.py"))
        .arg(mcp.ws_url())
        .arg(mcp.mcp_url())
        .arg(&token)
        .arg(mode);
    let summary = run_client(command).await;
    mcp.shutdown().await;
    summary
}

#[tokio::test]
async fn python_websockets_and_the_python_sdk_with_compression_on() {
    let summary = python_clients(&[], "on").await;
    assert_eq!(summary["ws_deflate_extension"], "permessage-deflate");
    assert_eq!(summary["ws_plain_extension"], Value::Null);
    let limited = summary["ws_limited_extension"].as_str().unwrap();
    assert!(limited.contains("server_max_window_bits=10"), "{limited}");
    assert!(limited.contains("server_no_context_takeover"), "{limited}");
    assert_eq!(summary["sdk_content_encodings"], json!(["gzip"]));
}

#[tokio::test]
async fn python_websockets_and_the_python_sdk_with_compression_off() {
    let summary = python_clients(&["--compression", "off"], "off").await;
    assert_eq!(summary["ws_deflate_extension"], Value::Null);
    assert_eq!(summary["sdk_content_encodings"], json!([]));
}

#[test]
fn the_zero_bomb_really_inflates_to_its_size() {
    let bomb = zero_bomb(2);
    let mut input = bomb.clone();
    input.extend_from_slice(&TAIL);
    let mut decoder = flate2::read::DeflateDecoder::new(&input[..]);
    let mut output = Vec::new();
    let _ = decoder.read_to_end(&mut output);
    assert_eq!(output.len(), 2 << 20);
}
