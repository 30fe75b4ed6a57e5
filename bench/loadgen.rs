//! Load generator for `ehr-mcp`: fetches an OAuth token, then drives audited MCP tool calls over
//! WebSocket or Streamable HTTP from many concurrent connections and reports throughput and latency.
//!
//! ```sh
//! cargo run --release --example loadgen -- --url http://127.0.0.1:7777 \
//!     --credentials oauth_clients_credentials.json --transport ws --connections 32 --seconds 20 \
//!     --tool get_patient --arguments '{"mrn":"MRN001"}'
//! cargo run --release --example loadgen -- --transport fhir --path 'Patient/MRN001/$everything'
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Transport {
    /// MCP over WebSocket (`/ws`), token on the upgrade request.
    Ws,
    /// MCP Streamable HTTP (`/mcp`), one session per connection.
    Http,
    /// The FHIR API: `GET /fhir/r4/{path}` with the bearer token, keep-alive per connection.
    Fhir,
}

/// Drives audited tool calls against a running server.
#[derive(Debug, Parser)]
struct Args {
    /// Base URL of the server.
    #[arg(long, default_value = "http://127.0.0.1:7777")]
    url: String,
    /// The demo credentials file written by `serve --demo`.
    #[arg(long, default_value = "oauth_clients_credentials.json")]
    credentials: PathBuf,
    /// Which client of the credentials file to use.
    #[arg(long, default_value = "copilot-studio")]
    client_id: String,
    #[arg(long, value_enum, default_value_t = Transport::Ws)]
    transport: Transport,
    /// Concurrent connections, each with one call in flight.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// How long to run.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Tool to call.
    #[arg(long, default_value = "get_patient")]
    tool: String,
    /// Tool arguments as JSON.
    #[arg(long, default_value = r#"{"mrn":"MRN001"}"#)]
    arguments: String,
    /// With `--transport fhir`: the request under `/fhir/r4/` (`Patient/MRN001`).
    #[arg(long, default_value = "Patient/MRN001")]
    path: String,
    /// With `--transport http` or `fhir`: the `Accept-Encoding` to send (answers are decoded and checked
    /// as a client would; bytes on the wire per answer are reported). `none` sends no `Accept-Encoding`.
    #[arg(long, value_enum, default_value_t = Encoding::None)]
    compression: Encoding,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Encoding {
    None,
    Gzip,
    Br,
    Zstd,
}

impl Encoding {
    fn header(self) -> Option<&'static str> {
        match self {
            Self::None => None,
            Self::Gzip => Some("gzip"),
            Self::Br => Some("br"),
            Self::Zstd => Some("zstd"),
        }
    }
}

/// An answer's body as the client reads it: decoded by its `Content-Encoding`; also its size on the wire.
async fn read_body(response: reqwest::Response) -> anyhow::Result<(Vec<u8>, usize)> {
    use async_compression::tokio::bufread::{BrotliDecoder, GzipDecoder, ZstdDecoder};
    use tokio::io::AsyncReadExt;
    let encoding = response
        .headers()
        .get("content-encoding")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let wire = response.bytes().await?;
    let mut decoded = Vec::new();
    match encoding.as_deref() {
        None | Some("identity") => decoded.extend_from_slice(&wire),
        Some("gzip") => {
            GzipDecoder::new(&wire[..])
                .read_to_end(&mut decoded)
                .await?;
        }
        Some("br") => {
            BrotliDecoder::new(&wire[..])
                .read_to_end(&mut decoded)
                .await?;
        }
        Some("zstd") => {
            ZstdDecoder::new(&wire[..])
                .read_to_end(&mut decoded)
                .await?;
        }
        Some(other) => anyhow::bail!("unexpected Content-Encoding {other}"),
    }
    Ok((decoded, wire.len()))
}

#[derive(Default)]
struct Tally {
    latencies_us: Vec<u64>,
    errors: u64,
    /// Answer bytes on the wire and decoded (HTTP and FHIR).
    wire_bytes: u64,
    decoded_bytes: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let arguments: Value = serde_json::from_str(&args.arguments)?;
    let token = fetch_token(&args).await?;
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let args = Arc::new(args);
    let mut workers = Vec::new();
    for _ in 0..args.connections {
        let args = Arc::clone(&args);
        let token = token.clone();
        let arguments = arguments.clone();
        workers.push(tokio::spawn(async move {
            match args.transport {
                Transport::Ws => ws_worker(&args, &token, arguments, deadline).await,
                Transport::Http => http_worker(&args, &token, arguments, deadline).await,
                Transport::Fhir => fhir_worker(&args, &token, deadline).await,
            }
        }));
    }
    let started = Instant::now();
    let mut total = Tally::default();
    for worker in workers {
        let tally = worker.await??;
        total.latencies_us.extend(tally.latencies_us);
        total.errors += tally.errors;
        total.wire_bytes += tally.wire_bytes;
        total.decoded_bytes += tally.decoded_bytes;
    }
    report(&args, total, started.elapsed());
    Ok(())
}

async fn fetch_token(args: &Args) -> anyhow::Result<String> {
    let credentials: Vec<Value> = serde_json::from_slice(&std::fs::read(&args.credentials)?)?;
    let client = credentials
        .iter()
        .find(|entry| entry["client_id"] == args.client_id.as_str())
        .ok_or_else(|| anyhow::anyhow!("client {} not in the credentials file", args.client_id))?;
    let secret = client["client_secret"].as_str().unwrap_or_default();
    let response: Value = reqwest::Client::new()
        .post(format!("{}/oauth/token", args.url))
        .basic_auth(&args.client_id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    response["access_token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("no access_token in {response}"))
}

fn call(id: u64, tool: &str, arguments: &Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": tool, "arguments": arguments}})
}

fn is_success(response: &Value) -> bool {
    response
        .get("result")
        .is_some_and(|result| result["isError"] != json!(true))
}

async fn ws_worker(
    args: &Args,
    token: &str,
    arguments: Value,
    deadline: Instant,
) -> anyhow::Result<Tally> {
    let url = format!("{}/ws", args.url.replacen("http", "ws", 1));
    let mut request = url.into_client_request()?;
    request
        .headers_mut()
        .insert("Authorization", format!("Bearer {token}").parse()?);
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "mcp".parse()?);
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await?;
    let mut tally = Tally::default();
    let mut id = 0;
    while Instant::now() < deadline {
        id += 1;
        let started = Instant::now();
        socket
            .send(Message::text(call(id, &args.tool, &arguments).to_string()))
            .await?;
        loop {
            let Some(frame) = socket.next().await else {
                anyhow::bail!("server closed the WebSocket");
            };
            if let Message::Text(text) = frame? {
                let response: Value = serde_json::from_str(&text)?;
                if response["id"] == json!(id) {
                    record(&mut tally, started, is_success(&response));
                    break;
                }
            }
        }
    }
    socket.close(None).await.ok();
    Ok(tally)
}

async fn http_worker(
    args: &Args,
    token: &str,
    arguments: Value,
    deadline: Instant,
) -> anyhow::Result<Tally> {
    let client = reqwest::Client::new();
    let endpoint = format!("{}/mcp", args.url);
    let post = |body: Value, session: Option<&str>| {
        let mut request = client
            .post(&endpoint)
            .bearer_auth(token)
            .header("Accept", "application/json, text/event-stream")
            .json(&body);
        if let Some(encoding) = args.compression.header() {
            request = request.header("Accept-Encoding", encoding);
        }
        if let Some(session) = session {
            request = request.header("Mcp-Session-Id", session);
        }
        request.send()
    };
    let initialize = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "loadgen", "version": "1"}}});
    let response = post(initialize, None).await?.error_for_status()?;
    let session = response
        .headers()
        .get("mcp-session-id")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    response.bytes().await?;
    post(
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        session.as_deref(),
    )
    .await?
    .bytes()
    .await?;
    let mut tally = Tally::default();
    let mut id = 0;
    while Instant::now() < deadline {
        id += 1;
        let started = Instant::now();
        let response = post(call(id, &args.tool, &arguments), session.as_deref()).await?;
        let (body, wire) = read_body(response).await?;
        tally.wire_bytes += wire as u64;
        tally.decoded_bytes += body.len() as u64;
        let parsed = json_rpc_body(&String::from_utf8_lossy(&body));
        record(&mut tally, started, parsed.as_ref().is_some_and(is_success));
    }
    Ok(tally)
}

async fn fhir_worker(args: &Args, token: &str, deadline: Instant) -> anyhow::Result<Tally> {
    let client = reqwest::Client::new();
    let url = format!("{}/fhir/r4/{}", args.url, args.path);
    let mut tally = Tally::default();
    while Instant::now() < deadline {
        let started = Instant::now();
        let mut request = client.get(&url).bearer_auth(token);
        if let Some(encoding) = args.compression.header() {
            request = request.header("Accept-Encoding", encoding);
        }
        let response = request.send().await?;
        let ok = response.status().is_success();
        let (body, wire) = read_body(response).await?;
        tally.wire_bytes += wire as u64;
        tally.decoded_bytes += body.len() as u64;
        let ok = ok && serde_json::from_slice::<Value>(&body).is_ok();
        record(&mut tally, started, ok);
    }
    Ok(tally)
}

/// The JSON-RPC response in a body that is either JSON or an SSE stream of `data:` lines.
fn json_rpc_body(body: &str) -> Option<Value> {
    serde_json::from_str(body).ok().or_else(|| {
        body.lines()
            .filter_map(|line| line.strip_prefix("data:"))
            .filter_map(|data| serde_json::from_str::<Value>(data.trim()).ok())
            .find(|message| message.get("id").is_some())
    })
}

fn record(tally: &mut Tally, started: Instant, success: bool) {
    if success {
        tally
            .latencies_us
            .push(started.elapsed().as_micros() as u64);
    } else {
        tally.errors += 1;
    }
}

fn report(args: &Args, mut total: Tally, elapsed: Duration) {
    total.latencies_us.sort_unstable();
    let count = total.latencies_us.len();
    let percentile = |p: f64| -> f64 {
        if count == 0 {
            return 0.0;
        }
        let index = ((count as f64 - 1.0) * p).round() as usize;
        total.latencies_us[index] as f64 / 1000.0
    };
    println!(
        "transport={:?} connections={} tool={} seconds={:.1}",
        args.transport,
        args.connections,
        match args.transport {
            Transport::Fhir => &args.path,
            _ => &args.tool,
        },
        elapsed.as_secs_f64()
    );
    println!(
        "calls_ok={} errors={} throughput={:.0} calls/s",
        count,
        total.errors,
        count as f64 / elapsed.as_secs_f64()
    );
    if total.decoded_bytes > 0 {
        let answers = (count as u64 + total.errors).max(1);
        println!(
            "compression={:?} bytes_per_answer wire={} decoded={}",
            args.compression,
            total.wire_bytes / answers,
            total.decoded_bytes / answers
        );
    }
    println!(
        "latency_ms p50={:.2} p95={:.2} p99={:.2} max={:.2}",
        percentile(0.50),
        percentile(0.95),
        percentile(0.99),
        percentile(1.0)
    );
}
