//! `query_audit_log`: admins read the audit trail (who called which tool on which patient, and how it ended).

use rmcp::model::{CallToolResult, JsonObject};
use rmcp::service::RequestContext;
use rmcp::{RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::EhrServer;
use super::args::{self, MRN_PATTERN, ToolArgs, in_range};
use super::call::{ToolCall, run_tool};
use super::error::ToolError;
use super::wire::Success;
use crate::audit::{AuditQuery, AuditRow};
use crate::auth::Tool;
use crate::domain::ids::Mrn;
use crate::domain::text::Text;
use crate::domain::time::Timestamp;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct QueryAuditLogArgs {
    /// Only calls by this client.
    pub client_id: Option<Text<64>>,
    /// Only calls that touched this patient. (A filter: it does not open the patient's records.)
    #[schemars(with = "Option<String>", regex(pattern = MRN_PATTERN))]
    pub mrn: Option<Mrn>,
    /// Only this tool, e.g. "get_patient".
    pub action: Option<Text<64>>,
    /// Only rows at or after this time (ISO 8601, UTC), e.g. 2025-11-21 or 2025-11-21T08:00:00.
    pub since: Option<Timestamp>,
    /// Only rows before this time (ISO 8601, UTC).
    pub until: Option<Timestamp>,
    /// Most rows to return, newest first (1-500, default 50).
    #[schemars(range(min = 1, max = 500))]
    pub limit: Option<u32>,
}

impl ToolArgs for QueryAuditLogArgs {
    fn validate(&self) -> Result<(), ToolError> {
        in_range("limit", self.limit, 1, 500, "rows")
    }
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct AuditEntryWire {
    pub seq: i64,
    pub occurred_at: String,
    pub request_id: String,
    pub transport: String,
    pub client_id: Option<String>,
    pub app_id: Option<String>,
    pub role: Option<String>,
    /// The tool called.
    pub action: String,
    pub patient_mrn: Option<String>,
    /// success, denied or failed.
    pub outcome: String,
    pub detail: Option<String>,
}

impl From<&AuditRow> for AuditEntryWire {
    fn from(row: &AuditRow) -> Self {
        Self {
            seq: row.seq,
            occurred_at: row.occurred_at.clone(),
            request_id: row.request_id.clone(),
            transport: row.transport.clone(),
            client_id: row.client_id.clone(),
            app_id: row.app_id.clone(),
            role: row.role.clone(),
            action: row.action.clone(),
            patient_mrn: row.patient_mrn.clone(),
            outcome: row.outcome.clone(),
            detail: row.detail.clone(),
        }
    }
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct AuditLogResult {
    pub status: Success,
    pub count: usize,
    pub entries: Vec<AuditEntryWire>,
}

#[tool_router(router = audit_tools, vis = "pub(crate)")]
impl EhrServer {
    #[tool(
        title = "Query audit log",
        description = "Admins: read the audit log, newest first, filtered by client_id, patient mrn, tool \
                       (action) and time window. Every tool call, allowed or refused, has a row.",
        input_schema = args::input_schema::<QueryAuditLogArgs>(),
        output_schema = args::output_schema::<AuditLogResult>(),
        annotations(read_only_hint = true, destructive_hint = false, idempotent_hint = true, open_world_hint = false)
    )]
    async fn query_audit_log(
        &self,
        context: RequestContext<RoleServer>,
        arguments: JsonObject,
    ) -> CallToolResult {
        run_tool!(
            self,
            Tool::QueryAuditLog,
            context,
            arguments,
            query_audit_log
        )
    }
}

async fn query_audit_log(
    call: &ToolCall<'_>,
    args: QueryAuditLogArgs,
) -> Result<AuditLogResult, ToolError> {
    let query = AuditQuery {
        client_id: args.client_id.map(Text::into_string),
        patient_mrn: args.mrn.map(|mrn| mrn.to_string()),
        action: args.action.map(Text::into_string),
        since: args.since.map(|since| since.to_string()),
        until: args.until.map(|until| until.to_string()),
        limit: i64::from(args.limit.unwrap_or(50)),
    };
    let rows = call
        .server
        .services()
        .audit
        .query(query)
        .await
        .map_err(|error| ToolError::internal(&call.request_id, &error))?;
    Ok(AuditLogResult {
        status: Success::Success,
        count: rows.len(),
        entries: rows.iter().map(AuditEntryWire::from).collect(),
    })
}
