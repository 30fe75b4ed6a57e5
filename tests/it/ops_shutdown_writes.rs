//! SIGTERM under a stream of writes: the real binary is stopped while clients write over Streamable HTTP
//! and WebSocket; after a restart every acknowledged write and its audit row are in the database and
//! `ehr-mcp audit verify` passes. On SQLite, and on PostgreSQL when configured.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use crate::ops_binary::BinaryServer;
use crate::support::TestDb;

const HTTP_WRITERS: usize = 6;
const WEBSOCKET_WRITERS: usize = 2;

#[test]
fn sigterm_under_writes_keeps_every_acknowledged_write_and_its_audit_row() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    for db in runtime.block_on(TestDb::all()) {
        let dir = tempfile::tempdir().unwrap();
        let credentials = dir.path().join("credentials.json").display().to_string();
        let env = [("DATABASE_URL", db.url.as_str())];
        let server = BinaryServer::start(&["--demo", "--credentials-file", &credentials], &env);
        let token = runtime.block_on(doctor_token(&server, &credentials));

        let load = WriteLoad::start(&runtime, &server, &token, HTTP_WRITERS, WEBSOCKET_WRITERS);
        load.wait_for(300, Duration::from_secs(20));
        let stopping = Instant::now();
        let (status, log) = server.stop_with("TERM");
        let stop_time = stopping.elapsed();
        assert_eq!(status.code(), Some(0), "{log}");
        let acknowledged = load.finish(&runtime);
        assert!(
            acknowledged.len() >= 300,
            "writes were flowing: {}",
            acknowledged.len()
        );
        println!(
            "{:?}: {} acknowledged writes; exit 0 {stop_time:?} after SIGTERM",
            db.engine(),
            acknowledged.len()
        );

        let restarted = BinaryServer::start(&[], &env);
        let ready = runtime.block_on(async {
            reqwest::get(restarted.url("/readyz"))
                .await
                .unwrap()
                .status()
        });
        assert_eq!(ready, 200);
        runtime.block_on(async {
            for vital_id in &acknowledged {
                let stored: i64 =
                    sqlx::query_scalar("SELECT COUNT(*) FROM vital_signs WHERE vital_id = $1")
                        .bind(vital_id)
                        .fetch_one(db.store.pool())
                        .await
                        .unwrap();
                assert_eq!(stored, 1, "acknowledged write {vital_id} is stored");
                let audited: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM audit_log WHERE action = 'record_vital_signs' \
                     AND outcome = 'success' AND detail = $1",
                )
                .bind(format!("vital_id={vital_id}"))
                .fetch_one(db.store.pool())
                .await
                .unwrap();
                assert_eq!(
                    audited, 1,
                    "acknowledged write {vital_id} has its audit row"
                );
            }
        });
        let (status, _) = restarted.stop_with("INT");
        assert_eq!(status.code(), Some(0));

        let (intact, report) = crate::fault_support::audit_verify(&db.url);
        assert!(intact, "audit verify: {report}");
    }
}

pub async fn doctor_token(server: &BinaryServer, credentials_path: &str) -> String {
    let credentials: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(credentials_path).unwrap()).unwrap();
    let doctor = credentials
        .iter()
        .find(|c| c["client_id"] == "copilot-studio")
        .unwrap();
    let response: Value = reqwest::Client::new()
        .post(server.url("/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "copilot-studio"),
            ("client_secret", doctor["client_secret"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    response["access_token"].as_str().unwrap().to_owned()
}

fn vital_signs_call(id: usize, writer: usize) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {
        "name": "record_vital_signs",
        "arguments": {"mrn": format!("MRN{:03}", writer % 30 + 1), "heart_rate": 50 + id % 100}}})
}

/// The vital_id of a successful `record_vital_signs` answer.
fn acknowledged_id(reply: &Value) -> Option<String> {
    let result = &reply["result"]["structuredContent"];
    (result["status"] == "success")
        .then(|| {
            result["vital_signs"]["vital_id"]
                .as_str()
                .map(str::to_owned)
        })
        .flatten()
}

/// Writers recording vital signs on a server until it stops, and the vital ids it acknowledged.
pub struct WriteLoad {
    acknowledged: Arc<Mutex<Vec<String>>>,
    writers: Vec<tokio::task::JoinHandle<()>>,
}

impl WriteLoad {
    /// `http` writers over Streamable HTTP and `websocket` over WebSocket, each with its own writer number.
    pub fn start(
        runtime: &tokio::runtime::Runtime,
        server: &BinaryServer,
        token: &str,
        http: usize,
        websocket: usize,
    ) -> Self {
        let acknowledged = Arc::new(Mutex::new(Vec::new()));
        let writers = (0..http)
            .map(|n| {
                runtime.spawn(http_writer(
                    server.url("/mcp"),
                    token.to_owned(),
                    n,
                    acknowledged.clone(),
                ))
            })
            .chain((0..websocket).map(|n| {
                runtime.spawn(websocket_writer(
                    server.url("/ws"),
                    token.to_owned(),
                    http + n,
                    acknowledged.clone(),
                ))
            }))
            .collect();
        Self {
            acknowledged,
            writers,
        }
    }

    /// Waits until `count` writes are acknowledged (or `within` passed).
    pub fn wait_for(&self, count: usize, within: Duration) {
        let started = Instant::now();
        while self.acknowledged.lock().unwrap().len() < count && started.elapsed() < within {
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits for every writer to end (the server stopped) and returns the acknowledged ids.
    pub fn finish(self, runtime: &tokio::runtime::Runtime) -> Vec<String> {
        for writer in self.writers {
            runtime.block_on(writer).unwrap();
        }
        self.acknowledged.lock().unwrap().clone()
    }
}

/// Writes over Streamable HTTP (stateless requests) until the server stops answering.
async fn http_writer(
    url: String,
    token: String,
    writer: usize,
    acknowledged: Arc<Mutex<Vec<String>>>,
) {
    let client = reqwest::Client::new();
    for id in 1.. {
        let sent = client
            .post(&url)
            .bearer_auth(&token)
            .header("Accept", "application/json, text/event-stream")
            .header("MCP-Protocol-Version", "2025-06-18")
            .json(&vital_signs_call(id, writer))
            .send()
            .await;
        let Ok(response) = sent else { return };
        let Ok(reply) = response.json::<Value>().await else {
            return;
        };
        match acknowledged_id(&reply) {
            Some(vital_id) => acknowledged.lock().unwrap().push(vital_id),
            None => return,
        }
    }
}

/// Writes over one WebSocket, one call at a time, until the server closes it.
async fn websocket_writer(
    url: String,
    token: String,
    writer: usize,
    acknowledged: Arc<Mutex<Vec<String>>>,
) {
    let mut request = url.replace("http", "ws").into_client_request().unwrap();
    let headers = request.headers_mut();
    headers.insert("Sec-WebSocket-Protocol", HeaderValue::from_static("mcp"));
    headers.insert(
        "Authorization",
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    let Ok((mut socket, _)) = tokio_tungstenite::connect_async(request).await else {
        return;
    };
    for id in 1.. {
        if socket
            .send(Message::Text(
                vital_signs_call(id, writer).to_string().into(),
            ))
            .await
            .is_err()
        {
            return;
        }
        let reply = loop {
            match socket.next().await {
                Some(Ok(Message::Text(text))) => {
                    break serde_json::from_str::<Value>(&text).unwrap();
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                Some(Ok(_)) => continue,
            }
        };
        match acknowledged_id(&reply) {
            Some(vital_id) => acknowledged.lock().unwrap().push(vital_id),
            None => return,
        }
    }
}
