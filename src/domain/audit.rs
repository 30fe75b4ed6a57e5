//! What happened, as a value: the [`AuditEvent`] every layer builds and its [`Outcome`], and the
//! [`AuditSink`] port through which a layer below the audit log (auth) records events. The audit layer
//! (`crate::audit`) implements the port and re-exports these types.

use futures::future::BoxFuture;

use super::ids::Mrn;
use super::origin::Transport;

/// The result of the audited action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// Refused by authentication, policy or a rate limit.
    Denied,
    /// Allowed but failed (invalid input, not found, conflict, internal error).
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Denied => "denied",
            Self::Failed => "failed",
        }
    }
}

/// One thing that happened, as the caller reports it. `detail` is a short code or reason, never PHI.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub request_id: String,
    pub transport: Transport,
    pub client_id: Option<String>,
    pub app_id: Option<String>,
    pub role: Option<String>,
    /// The tool name, or an auth action such as `token.issue`, `token.revoke`, `client.register`.
    pub action: String,
    pub patient_mrn: Option<Mrn>,
    pub outcome: Outcome,
    pub detail: Option<String>,
}

impl AuditEvent {
    /// An event with a fresh request id and no caller; fill in the rest with struct update syntax.
    pub fn new(transport: Transport, action: impl Into<String>, outcome: Outcome) -> Self {
        Self {
            request_id: new_request_id(),
            transport,
            client_id: None,
            app_id: None,
            role: None,
            action: action.into(),
            patient_mrn: None,
            outcome,
            detail: None,
        }
    }
}

/// A new opaque request id (UUID v7: time-ordered).
pub fn new_request_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Why an event could not be recorded.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RecordError {
    /// The database could not answer in time (retryable).
    #[error("audit log unavailable")]
    Unavailable,
    #[error("audit log error: {0}")]
    Failed(String),
}

/// Where events are recorded: resolves once the event is durable.
pub trait AuditSink: Send + Sync {
    fn record(&self, event: AuditEvent) -> BoxFuture<'_, Result<(), RecordError>>;
}
