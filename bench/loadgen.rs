//! Load generator for `ehr-mcp`: fetches an OAuth token, then drives audited MCP tool calls over
//! WebSocket or Streamable HTTP from many concurrent connections and reports throughput and latency.
//!
//! ```sh
//! cargo run --release --example loadgen -- --url http://127.0.0.1:7777 \
//!     --credentials oauth_clients_credentials.json --transport ws --connections 32 --seconds 20 \
//!     --tool get_patient --arguments '{"mrn":"MRN001"}'
//! cargo run --release --example loadgen -- --transport fhir --path 'Patient/MRN001/$everything'
//! ```
//!
//! With `--transport fhir` every answer is checked (a 200 with the resource the path names, or a
//! searchset Bundle holding the patient for `$everything`); anything else counts as an error and the
//! first one is printed.

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
    /// With `--transport fhir`: the request under `/fhir/r4/` (`Patient/MRN001`); `{mrn}` is replaced
    /// by the call's MRN when `--mrns` is given.
    #[arg(long, default_value = "Patient/MRN001")]
    path: String,
    /// Draw each call's MRN at random from the synthetic ids `SYN00000001`..=`SYN{N}` (`seed --synthetic N`):
    /// the `mrn` argument (and `{mrn}` in `--path`) is set per call, and each answer must name that MRN.
    #[arg(long)]
    mrns: Option<u32>,
    /// With `--transport http`: no `initialize`, no session; every call is a stateless POST with
    /// `MCP-Protocol-Version: 2026-07-28`.
    #[arg(long)]
    stateless: bool,
    /// Send no token (for the bare echo, `cargo run --release --example echo`).
    #[arg(long)]
    no_auth: bool,
    /// With `--transport http` or `fhir`: the `Accept-Encoding` to send (answers are decoded and checked
    /// as a client would; bytes on the wire per answer are reported). `none` sends no `Accept-Encoding`.
    #[arg(long, value_enum, default_value_t = Encoding::None)]
    compression: Encoding,
    /// With `--transport ws`: open `--connections` WebSockets, make one call on each, then hold them
    /// idle for `--seconds` (for the server's memory per idle connection) instead of driving load.
    #[arg(long)]
    hold: bool,
}

/// The MRN of one call: random from `--mrns`, else the fixed argument's.
struct Mrns {
    count: Option<u32>,
    rng: rand::rngs::StdRng,
}

impl Mrns {
    fn new(count: Option<u32>) -> Self {
        use rand::SeedableRng;
        Self {
            count,
            rng: rand::rngs::StdRng::from_os_rng(),
        }
    }

    /// The arguments and path of the next call, and the MRN its answer must contain (if any).
    fn next(&mut self, arguments: &Value, path: &str) -> (Value, String, Option<String>) {
        use rand::Rng;
        match self.count {
            None => (arguments.clone(), path.to_owned(), None),
            Some(count) => {
                let mrn = format!("SYN{:08}", self.rng.random_range(1..=count.max(1)));
                let mut arguments = arguments.clone();
                arguments["mrn"] = json!(mrn);
                (arguments, path.replace("{mrn}", &mrn), Some(mrn))
            }
        }
    }
}

/// Whether an answer's text names the MRN it was asked for (every answer is checked, not only counted).
fn names(text: &str, mrn: Option<&str>) -> bool {
    mrn.is_none_or(|mrn| text.contains(mrn))
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
    /// The first wrong answer, to show why calls count as errors.
    first_error: Option<String>,
    /// Answer bytes on the wire and decoded (HTTP and FHIR).
    wire_bytes: u64,
    decoded_bytes: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let arguments: Value = serde_json::from_str(&args.arguments)?;
    let token = if args.no_auth {
        String::new()
    } else {
        fetch_token(&args).await?
    };
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
        total.first_error = total.first_error.or(tally.first_error);
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
    if !token.is_empty() {
        request
            .headers_mut()
            .insert("Authorization", format!("Bearer {token}").parse()?);
    }
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "mcp".parse()?);
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await?;
    let mut tally = Tally::default();
    let mut mrns = Mrns::new(args.mrns);
    let mut id = 0;
    while Instant::now() < deadline && !(args.hold && id > 0) {
        id += 1;
        let (arguments, _, mrn) = mrns.next(&arguments, "");
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
                    let ok = is_success(&response) && names(&text, mrn.as_deref());
                    record(&mut tally, started, ok);
                    break;
                }
            }
        }
    }
    if args.hold {
        tokio::time::sleep_until(deadline.into()).await;
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
        match session {
            Some(session) => request = request.header("Mcp-Session-Id", session),
            None if args.stateless => {
                request = request
                    .header("MCP-Protocol-Version", "2026-07-28")
                    .header("Mcp-Method", "tools/call")
                    .header("Mcp-Name", &args.tool)
            }
            None => {}
        }
        request.send()
    };
    let mut tally = Tally::default();
    let mut mrns = Mrns::new(args.mrns);
    let session = if args.stateless {
        None
    } else {
        open_session(&post).await?
    };
    let mut id = 0;
    while Instant::now() < deadline {
        id += 1;
        let (arguments, _, mrn) = mrns.next(&arguments, "");
        let started = Instant::now();
        let mut message = call(id, &args.tool, &arguments);
        if args.stateless {
            // Protocol 2026-07-28: every request carries its protocol version and capabilities.
            message["params"]["_meta"] = json!({
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientCapabilities": {}
            });
        }
        let response = post(message, session.as_deref()).await?;
        let (body, wire) = read_body(response).await?;
        tally.wire_bytes += wire as u64;
        tally.decoded_bytes += body.len() as u64;
        let body = String::from_utf8_lossy(&body);
        let parsed = json_rpc_body(&body);
        let ok = parsed.as_ref().is_some_and(is_success) && names(&body, mrn.as_deref());
        record(&mut tally, started, ok);
    }
    Ok(tally)
}

/// `initialize` and `notifications/initialized`: the session id the server assigned.
async fn open_session<F, R>(post: &F) -> anyhow::Result<Option<String>>
where
    F: Fn(Value, Option<&str>) -> R,
    R: std::future::Future<Output = reqwest::Result<reqwest::Response>>,
{
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
    Ok(session)
}

async fn fhir_worker(args: &Args, token: &str, deadline: Instant) -> anyhow::Result<Tally> {
    let client = reqwest::Client::new();
    let mut tally = Tally::default();
    let mut mrns = Mrns::new(args.mrns);
    while Instant::now() < deadline {
        let (_, path, mrn) = mrns.next(&Value::Null, &args.path);
        let url = format!("{}/fhir/r4/{path}", args.url);
        let started = Instant::now();
        let mut request = client.get(&url).bearer_auth(token);
        if let Some(encoding) = args.compression.header() {
            request = request.header("Accept-Encoding", encoding);
        }
        let response = request.send().await?;
        let status = response.status();
        let (body, wire) = read_body(response).await?;
        tally.wire_bytes += wire as u64;
        tally.decoded_bytes += body.len() as u64;
        let checked = check_fhir_answer(&path, status, &body).and_then(|()| {
            if names(&String::from_utf8_lossy(&body), mrn.as_deref()) {
                Ok(())
            } else {
                Err(format!(
                    "the answer does not name {}",
                    mrn.as_deref().unwrap_or("")
                ))
            }
        });
        record(&mut tally, started, checked.is_ok());
        if let Err(problem) = checked {
            tally.first_error.get_or_insert(problem);
        }
    }
    Ok(tally)
}

/// Whether a FHIR answer is what `path` asks for: 200 with `application/fhir+json`-shaped JSON; for
/// `Type/id` that resource, for a search or `$everything` a searchset Bundle whose entries hold
/// resources (for `Patient/{id}/$everything`: that Patient among them).
fn check_fhir_answer(path: &str, status: reqwest::StatusCode, body: &[u8]) -> Result<(), String> {
    let shown = || String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
    if !status.is_success() {
        return Err(format!("HTTP {status}: {}", shown()));
    }
    let resource: Value =
        serde_json::from_slice(body).map_err(|error| format!("not JSON ({error}): {}", shown()))?;
    let (route, query) = path.split_once('?').unwrap_or((path, ""));
    let parts: Vec<&str> = route.split('/').collect();
    let is_bundle = !query.is_empty() || parts.len() == 1 || parts.last() == Some(&"$everything");
    if is_bundle {
        if resource["resourceType"] != "Bundle" || resource["type"] != "searchset" {
            return Err(format!("expected a searchset Bundle: {}", shown()));
        }
        let entries = resource["entry"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        if entries
            .iter()
            .any(|entry| entry["resource"]["resourceType"].as_str().is_none())
        {
            return Err(format!("an entry without a resource: {}", shown()));
        }
        if let ["Patient", id, "$everything"] = parts.as_slice() {
            let has_patient = entries.iter().any(|entry| {
                entry["resource"]["resourceType"] == "Patient" && entry["resource"]["id"] == *id
            });
            if !has_patient {
                return Err(format!("$everything without Patient/{id}: {}", shown()));
            }
        }
        return Ok(());
    }
    match parts.as_slice() {
        [kind, id] if resource["resourceType"] == *kind && resource["id"] == *id => Ok(()),
        _ => Err(format!("expected {route}: {}", shown())),
    }
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
    if let Some(problem) = &total.first_error {
        println!("first error: {problem}");
    }
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
