//! Resumable Streamable HTTP (2025-11-25 sessions): a client whose SSE stream is cut in the middle of a tool
//! call reconnects with `Last-Event-ID` and still gets its answer; an id whose events are no longer held is
//! answered with a clear error; one session cannot resume another's stream.

use ehr_mcp::store::Engine;
use serde_json::{Value, json};
use sqlx::Connection;

use crate::mcp_support::{McpApp, spawn_mcp_app};

/// One server-sent event.
#[derive(Debug, Default)]
pub struct SseEvent {
    pub id: Option<String>,
    pub data: String,
}

/// Reads SSE events from a streaming response, one at a time.
pub struct SseReader {
    response: reqwest::Response,
    buffer: String,
}

impl SseReader {
    pub fn new(response: reqwest::Response) -> Self {
        Self {
            response,
            buffer: String::new(),
        }
    }

    /// The next event, or `None` when the stream ends.
    pub async fn next(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = SseEvent::default();
                for line in block.lines() {
                    if let Some(id) = line.strip_prefix("id:") {
                        event.id = Some(id.trim().to_owned());
                    } else if let Some(data) = line.strip_prefix("data:") {
                        event.data.push_str(data.trim_start());
                    }
                }
                if event.id.is_some() || !event.data.is_empty() {
                    return Some(event);
                }
                continue;
            }
            let chunk = self.response.chunk().await.ok()??;
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// Reads until the JSON-RPC message answering `id`.
    pub async fn answer_to(&mut self, id: i64) -> Value {
        while let Some(event) = self.next().await {
            if let Ok(message) = serde_json::from_str::<Value>(&event.data)
                && message["id"] == id
            {
                return message;
            }
        }
        panic!("the stream ended without an answer to request {id}");
    }
}

fn post(mcp: &McpApp, token: &str, session: Option<&str>, body: Value) -> reqwest::RequestBuilder {
    let mut request = reqwest::Client::new()
        .post(mcp.mcp_url())
        .bearer_auth(token)
        .header("Accept", "application/json, text/event-stream")
        .header("Content-Type", "application/json")
        .body(body.to_string());
    if let Some(session) = session {
        request = request
            .header("Mcp-Session-Id", session)
            .header("MCP-Protocol-Version", "2025-11-25");
    }
    request
}

/// Opens a 2025-11-25 session and returns its id.
async fn open_session(mcp: &McpApp, token: &str) -> String {
    let init = post(
        mcp,
        token,
        None,
        json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "resume-test", "version": "1"}}}),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(init.status(), 200);
    let session = init.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let answer = SseReader::new(init).answer_to(0).await;
    assert_eq!(
        answer["result"]["protocolVersion"], "2025-11-25",
        "{answer}"
    );
    let initialized = post(
        mcp,
        token,
        Some(&session),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(initialized.status(), 202);
    session
}

fn resume(
    mcp: &McpApp,
    token: &str,
    session: &str,
    last_event_id: &str,
) -> reqwest::RequestBuilder {
    reqwest::Client::new()
        .get(mcp.mcp_url())
        .bearer_auth(token)
        .header("Accept", "text/event-stream")
        .header("Mcp-Session-Id", session)
        .header("MCP-Protocol-Version", "2025-11-25")
        .header("Last-Event-ID", last_event_id)
}

/// A transaction on the test's database that keeps the server from writing audit rows until released.
enum AuditBlocker {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl AuditBlocker {
    async fn hold(mcp: &McpApp) -> Self {
        let url = &mcp.app.db.url;
        match mcp.app.db.engine() {
            Engine::Sqlite => {
                let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
                sqlx::query("BEGIN IMMEDIATE")
                    .execute(&mut conn)
                    .await
                    .unwrap();
                Self::Sqlite(conn)
            }
            Engine::Postgres => {
                let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
                sqlx::query("BEGIN").execute(&mut conn).await.unwrap();
                sqlx::query("LOCK TABLE audit_log IN EXCLUSIVE MODE")
                    .execute(&mut conn)
                    .await
                    .unwrap();
                Self::Postgres(conn)
            }
        }
    }

    async fn release(self) {
        match self {
            Self::Sqlite(mut conn) => {
                sqlx::query("COMMIT").execute(&mut conn).await.unwrap();
            }
            Self::Postgres(mut conn) => {
                sqlx::query("COMMIT").execute(&mut conn).await.unwrap();
            }
        }
    }
}

fn get_patient_call(id: i64) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
           "params": {"name": "get_patient", "arguments": {"mrn": "MRN001"}}})
}

#[tokio::test]
async fn a_stream_cut_mid_call_is_resumed_with_the_answer() {
    let mcp = spawn_mcp_app(&[]).await;
    let token = mcp.token("copilot-studio").await;
    let session = open_session(&mcp, &token).await;

    // Hold the audit log's write lock: the call cannot write its audit row, so it cannot answer yet.
    let blocker = AuditBlocker::hold(&mcp).await;

    let response = post(&mcp, &token, Some(&session), get_patient_call(7))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut stream = SseReader::new(response);
    let priming = stream.next().await.expect("a priming event");
    assert!(priming.data.is_empty(), "{priming:?}");
    let last_event_id = priming.id.expect("the priming event has an id");
    drop(stream); // the connection is cut before the answer exists

    blocker.release().await;

    let resumed = resume(&mcp, &token, &session, &last_event_id)
        .send()
        .await
        .unwrap();
    assert_eq!(resumed.status(), 200);
    let answer = SseReader::new(resumed).answer_to(7).await;
    assert_eq!(
        answer["result"]["structuredContent"]["patient"]["mrn"], "MRN001",
        "{answer}"
    );

    // Resuming again after the answer replays it (a client that lost the resumed stream too).
    let again = resume(&mcp, &token, &session, &last_event_id)
        .send()
        .await
        .unwrap();
    let answer = SseReader::new(again).answer_to(7).await;
    assert_eq!(
        answer["result"]["structuredContent"]["patient"]["mrn"], "MRN001",
        "{answer}"
    );
    mcp.shutdown().await;
}

#[tokio::test]
async fn an_unknown_or_foreign_event_id_gets_a_clear_error_and_no_data() {
    let mcp = spawn_mcp_app(&[]).await;
    let token = mcp.token("copilot-studio").await;
    let owner = open_session(&mcp, &token).await;
    let response = post(&mcp, &token, Some(&owner), get_patient_call(3))
        .send()
        .await
        .unwrap();
    let mut stream = SseReader::new(response);
    let last_event_id = stream.next().await.unwrap().id.unwrap();
    assert_eq!(stream.answer_to(3).await["result"]["isError"], false);

    let other = open_session(&mcp, &token).await;
    for (session, id) in [(&other, last_event_id.as_str()), (&owner, "0/999")] {
        let response = resume(&mcp, &token, session, id).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let mut events = SseReader::new(response);
        let event = events.next().await.expect("an error event");
        let message: Value = serde_json::from_str(&event.data).unwrap();
        assert_eq!(message["error"]["code"], -32010, "{message}");
        assert!(!event.data.contains("MRN001"), "{}", event.data);
        assert!(events.next().await.is_none());
    }
    mcp.shutdown().await;
}
