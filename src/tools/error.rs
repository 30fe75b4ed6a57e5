//! The tool layer's error type and its ONE mapping to the MCP wire: a tool error result
//! (`isError: true`, `{"status": "error", "code", "message", "tool"}`). JSON-RPC errors (unknown tool, malformed
//! request) are produced by rmcp's router before a tool runs.

use rmcp::ErrorData;
use rmcp::model::{CallToolResult, ContentBlock, JsonObject};
use serde::Serialize;

use crate::auth::{AuthError, Tool};
use crate::domain::DomainError;
use crate::store::StoreError;

/// Why a tool call did not succeed. Messages are written for the caller (an LLM or its user): they name
/// the field or the missing permission, and never contain SQL, paths, stack traces or another patient's data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ToolError {
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    InvalidInput(String),
    #[error("{0}")]
    Conflict(String),
    #[error("rate limit exceeded; retry in {retry_after_seconds} seconds")]
    RateLimited { retry_after_seconds: u64 },
    /// The database could not answer in time: retryable (the call may be repeated unchanged).
    #[error("the service is temporarily unavailable; retry in {retry_after_seconds} seconds")]
    Unavailable { retry_after_seconds: u64 },
    /// Something failed inside the server. The cause is logged once with the request id; the caller
    /// sees only the request id to quote.
    #[error("internal error (request id {request_id}); the failure was logged")]
    Internal { request_id: String },
}

impl ToolError {
    /// The stable machine-readable code of the wire shape.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthenticated(_) => "unauthenticated",
            Self::Forbidden(_) => "forbidden",
            Self::NotFound(_) => "not_found",
            Self::InvalidInput(_) => "invalid_input",
            Self::Conflict(_) => "conflict",
            Self::RateLimited { .. } => "rate_limited",
            Self::Unavailable { .. } => "unavailable",
            Self::Internal { .. } => "internal",
        }
    }

    pub fn unauthenticated() -> Self {
        Self::Unauthenticated(
            "a valid access token is required: call the `authenticate` tool, pass `access_token`, \
             or send `Authorization: Bearer <token>`"
                .to_owned(),
        )
    }

    /// The retryable "database unavailable" error.
    pub fn unavailable() -> Self {
        Self::Unavailable {
            retry_after_seconds: crate::auth::retry_after_seconds(
                crate::auth::UNAVAILABLE_RETRY_AFTER,
            ),
        }
    }

    /// Maps an audit-log failure: retryable when the database is unavailable, else internal.
    pub fn from_audit(request_id: &str, error: &crate::audit::AuditError) -> Self {
        if error.is_unavailable() {
            Self::unavailable()
        } else {
            Self::internal(request_id, error)
        }
    }

    pub fn invalid(field: &str, rule: impl std::fmt::Display) -> Self {
        Self::InvalidInput(format!("invalid {field}: {rule}"))
    }

    /// Whether the audit log records this failure as a denial (rather than a failed operation).
    pub fn is_denial(&self) -> bool {
        matches!(
            self,
            Self::Unauthenticated(_) | Self::Forbidden(_) | Self::RateLimited { .. }
        )
    }

    /// Logs an internal failure once, with its request id, and returns the opaque error for the caller.
    pub fn internal(request_id: &str, cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(request_id, error = %cause, "tool call failed inside the server");
        Self::Internal {
            request_id: request_id.to_owned(),
        }
    }

    /// Maps a store failure. Internal causes are logged under `request_id`.
    pub fn from_store(request_id: &str, error: StoreError) -> Self {
        match error {
            StoreError::NotFound { what } => Self::NotFound(format!("{what} not found")),
            StoreError::Conflict { constraint } => Self::Conflict(conflict_message(&constraint)),
            StoreError::Invalid { field, rule } => Self::invalid(field, rule),
            StoreError::Unavailable => Self::unavailable(),
            other => Self::internal(request_id, &other),
        }
    }

    /// Maps an authentication or authorization failure. Internal causes are logged under `request_id`.
    pub fn from_auth(request_id: &str, error: AuthError) -> Self {
        match error {
            AuthError::Unauthenticated(reason) => Self::Unauthenticated(format!(
                "{reason}; authenticate with the `authenticate` tool, an `access_token` argument or \
                 `Authorization: Bearer <token>`"
            )),
            AuthError::InvalidClient(reason) => Self::Unauthenticated(reason),
            AuthError::Forbidden(reason) | AuthError::UnauthorizedClient(reason) => {
                Self::Forbidden(reason)
            }
            AuthError::RateLimited { retry_after } => Self::RateLimited {
                retry_after_seconds: crate::auth::retry_after_seconds(retry_after),
            },
            AuthError::InvalidScope(reason)
            | AuthError::InvalidRequest(reason)
            | AuthError::InvalidTarget(reason)
            | AuthError::InvalidGrant(reason)
            | AuthError::InvalidRedirectUri(reason)
            | AuthError::InvalidClientMetadata(reason)
            | AuthError::UnsupportedGrantType(reason) => Self::InvalidInput(reason),
            AuthError::NotFound(reason) => Self::NotFound(reason),
            AuthError::Unavailable { retry_after } => Self::Unavailable {
                retry_after_seconds: crate::auth::retry_after_seconds(retry_after),
            },
            other @ (AuthError::Config(_) | AuthError::Internal(_)) => {
                Self::internal(request_id, &other)
            }
        }
    }

    /// The JSON-RPC error for a request that is not a tool call (`completion/complete`): the same message,
    /// the stable code in `data.code`.
    pub fn into_error_data(self) -> ErrorData {
        let data = Some(serde_json::json!({"code": self.code()}));
        let message = self.to_string();
        match self {
            Self::InvalidInput(_) => ErrorData::invalid_params(message, data),
            Self::NotFound(_) => ErrorData::resource_not_found(message, data),
            Self::Internal { .. } | Self::Unavailable { .. } => {
                ErrorData::internal_error(message, data)
            }
            _ => ErrorData::invalid_request(message, data),
        }
    }

    /// The one conversion to the MCP wire: `isError: true` with the JSON error object as text, naming
    /// the tool as the earlier system did. No `structuredContent`: the tools' output schemas describe
    /// success results only.
    pub fn into_call_tool_result(self, tool: Tool) -> CallToolResult {
        self.into_call_tool_result_with(tool, JsonObject::new())
    }

    /// [`Self::into_call_tool_result`] with `extra` keys a tool's earlier clients read from its error
    /// (`validate_token`'s `valid: false`); `extra` must not repeat the standard keys.
    pub fn into_call_tool_result_with(self, tool: Tool, extra: JsonObject) -> CallToolResult {
        let body = ErrorBody {
            extra,
            status: "error",
            code: self.code(),
            message: self.to_string(),
            tool: tool.name(),
        };
        let text = serde_json::to_string(&body).unwrap_or_else(|_| {
            r#"{"status":"error","code":"internal","message":"internal error"}"#.to_owned()
        });
        CallToolResult::error(vec![ContentBlock::text(text)])
    }
}

impl From<DomainError> for ToolError {
    fn from(error: DomainError) -> Self {
        Self::InvalidInput(error.to_string())
    }
}

#[derive(Serialize)]
struct ErrorBody {
    #[serde(flatten)]
    extra: JsonObject,
    status: &'static str,
    code: &'static str,
    message: String,
    tool: &'static str,
}

/// A plain-words message for a named constraint; unknown names get a generic message (no schema detail).
fn conflict_message(constraint: &str) -> String {
    let lowered = constraint.to_ascii_lowercase();
    if lowered.contains("appointments_active_slot") || lowered.contains("slot") {
        "that provider already has an appointment at this date and time; choose another time"
            .to_owned()
    } else if lowered.contains("appointment_status") {
        "only a scheduled, confirmed or checked-in appointment can be cancelled".to_owned()
    } else if lowered.contains("medication_status") {
        "the medication is already discontinued".to_owned()
    } else if lowered.contains("mrn") {
        "a patient with this mrn already exists".to_owned()
    } else if lowered.contains("client_id") {
        "a client with this client_id already exists".to_owned()
    } else if lowered.contains("foreign") {
        "a referenced record (patient or provider) does not exist".to_owned()
    } else {
        "the change conflicts with an existing record".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(error: ToolError) -> serde_json::Value {
        let result = error.into_call_tool_result(Tool::GetPatient);
        assert_eq!(result.is_error, Some(true));
        assert!(result.structured_content.is_none());
        let text = result
            .content
            .first()
            .and_then(|c| c.as_text())
            .map(|t| t.text.clone())
            .unwrap_or_default();
        serde_json::from_str(&text).unwrap_or_default()
    }

    #[test]
    fn every_error_has_the_wire_shape() {
        let body = wire(ToolError::NotFound("patient not found".into()));
        assert_eq!(
            body,
            serde_json::json!({"status": "error", "code": "not_found", "message": "patient not found",
                               "tool": "get_patient"})
        );
        assert_eq!(
            wire(ToolError::unauthenticated())["code"],
            "unauthenticated"
        );
        let limited = wire(ToolError::RateLimited {
            retry_after_seconds: 12,
        });
        assert_eq!(limited["code"], "rate_limited");
        assert!(limited["message"].as_str().unwrap_or("").contains("12"));
    }

    #[test]
    fn store_errors_never_leak_detail() {
        let conflict = ToolError::from_store(
            "req-1",
            StoreError::Conflict {
                constraint: "appointments_active_slot".into(),
            },
        );
        assert_eq!(conflict.code(), "conflict");
        assert!(conflict.to_string().contains("already has an appointment"));
        let internal = ToolError::from_store("req-2", StoreError::Corrupt("row 7: bad".into()));
        assert_eq!(internal.code(), "internal");
        assert!(!internal.to_string().contains("row 7"));
        assert!(internal.to_string().contains("req-2"));
    }

    #[test]
    fn domain_errors_name_the_field() {
        let error = ToolError::from(DomainError::new("mrn", "expected 3-32 letters"));
        assert_eq!(error.code(), "invalid_input");
        assert_eq!(error.to_string(), "invalid mrn: expected 3-32 letters");
    }
}
