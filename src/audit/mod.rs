//! TEMPORARY SHIM (branch mcp only, replaced by the auth helper's module at merge).
#![allow(dead_code, unused_variables)]

use futures::future::BoxFuture;
use sqlx::AnyConnection;

use crate::domain::ids::Mrn;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit log unavailable: {0}")]
    Store(#[from] StoreError),
    #[error("audit log is closed")]
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    WebSocket,
    StreamableHttp,
    Stdio,
    Http,
    Cli,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::WebSocket => "websocket",
            Self::StreamableHttp => "streamable_http",
            Self::Stdio => "stdio",
            Self::Http => "http",
            Self::Cli => "cli",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Denied,
    Failed,
}

#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub request_id: String,
    pub transport: Transport,
    pub client_id: Option<String>,
    pub app_id: Option<String>,
    pub role: Option<String>,
    pub action: String,
    pub patient_mrn: Option<Mrn>,
    pub outcome: Outcome,
    pub detail: Option<String>,
}

#[derive(Debug, Clone)]
pub struct AuditRow {
    pub seq: i64,
    pub occurred_at: String,
    pub request_id: String,
    pub transport: String,
    pub client_id: Option<String>,
    pub app_id: Option<String>,
    pub role: Option<String>,
    pub action: String,
    pub patient_mrn: Option<String>,
    pub outcome: String,
    pub detail: Option<String>,
    pub prev_hash: String,
    pub row_hash: String,
}

#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub client_id: Option<String>,
    pub patient_mrn: Option<String>,
    pub action: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub limit: i64,
}

#[derive(Clone)]
pub struct AuditLog;

impl AuditLog {
    pub async fn record(&self, event: AuditEvent) -> Result<(), AuditError> {
        Ok(())
    }
    pub async fn record_write<T: Send + 'static>(
        &self,
        event: AuditEvent,
        write: impl for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, Result<T, StoreError>>
        + Send
        + 'static,
    ) -> Result<Result<T, StoreError>, AuditError> {
        Err(AuditError::Closed)
    }
    pub async fn query(&self, filter: AuditQuery) -> Result<Vec<AuditRow>, AuditError> {
        Ok(Vec::new())
    }
}
