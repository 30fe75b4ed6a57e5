//! The lifecycle of an MCP request that reads patient data without being a tool call (`resources/read`,
//! `prompts/get`): resolve the caller, apply its rate limit, ask the policy as the tool whose data the
//! request returns, read, write one audit row, answer — the same steps and the same rules as
//! [`super::call`], answered as a JSON-RPC result or error instead of a tool result.
//!
//! Invariants: every such request writes exactly one audit row (refusals included), with the request's
//! method as its action and what was read as its detail; data leaves only after that row is committed.

use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer};

use super::EhrServer;
use super::call::ToolCall;
use super::error::ToolError;
use crate::audit::{AuditEvent, Outcome};
use crate::auth::{Principal, Tool};
use crate::domain::ids::Mrn;

/// What a request reads, for the policy and the audit log.
#[derive(Debug, Clone)]
pub(crate) struct ReadRequest {
    /// The audit action: the MCP method (`resources/read`, `prompts/get`).
    pub action: &'static str,
    /// What was asked for (a resource template or prompt name, never PHI).
    pub detail: String,
    /// The tool whose policy row decides (the tool that returns the same data).
    pub tool: Tool,
    /// The patient whose records are read, if any.
    pub patient: Option<Mrn>,
}

impl EhrServer {
    /// Runs `read` for the caller of `context` once the policy allows `request`, and audits it.
    pub(crate) async fn serve_read<T>(
        &self,
        request: ReadRequest,
        context: &RequestContext<RoleServer>,
        read: impl AsyncFnOnce(&ToolCall<'_>) -> Result<T, ToolError>,
    ) -> Result<T, ErrorData> {
        let request_id = uuid::Uuid::now_v7().to_string();
        let (principal, outcome) = match self.admit_read(&request, context, &request_id).await {
            Ok(principal) => {
                let call = ToolCall::for_request(
                    self,
                    principal.clone(),
                    request.tool,
                    request.patient.clone(),
                    request_id.clone(),
                );
                (Some(principal), read(&call).await)
            }
            Err((principal, error)) => (principal, Err(error)),
        };
        let (audit_outcome, detail) = match &outcome {
            Ok(_) => (Outcome::Success, request.detail.clone()),
            Err(error) => (
                super::call::outcome_of(error),
                format!("{}: {}", request.detail, error.code()),
            ),
        };
        let event = AuditEvent {
            request_id: request_id.clone(),
            client_id: principal.as_ref().map(|p| p.client_id.to_string()),
            app_id: principal.as_ref().map(|p| p.app_id.clone()),
            role: principal.as_ref().map(|p| p.role.as_str().to_owned()),
            patient_mrn: request.patient.clone(),
            detail: Some(detail),
            ..AuditEvent::new(self.session().transport(), request.action, audit_outcome)
        };
        if let Err(error) = self.services().audit.record(event).await {
            return Err(ToolError::internal(&request_id, &error).into_error_data());
        }
        tracing::info!(
            method = request.action,
            request_id,
            outcome = outcome.as_ref().map_or_else(ToolError::code, |_| "success"),
            "mcp request"
        );
        outcome.map_err(ToolError::into_error_data)
    }

    /// The caller, rate limited and authorised, or why not (with the caller when it is known).
    async fn admit_read(
        &self,
        request: &ReadRequest,
        context: &RequestContext<RoleServer>,
        request_id: &str,
    ) -> Result<Principal, (Option<Principal>, ToolError)> {
        let auth = &self.services().auth;
        let principal = self
            .session()
            .resolve(auth, self.session().bearer_of(context), None)
            .await
            .map_err(|error| (None, ToolError::from_auth(request_id, error)))?;
        let refuse = |error| {
            (
                Some(principal.clone()),
                ToolError::from_auth(request_id, error),
            )
        };
        auth.check_rate_limit(&principal).map_err(refuse)?;
        crate::auth::policy::authorize(&principal, request.tool, request.patient.as_ref())
            .map_err(refuse)?;
        Ok(principal)
    }

    /// The caller of `context` when it is known (for listings, which show what the caller may read).
    pub(crate) async fn known_caller(
        &self,
        context: &RequestContext<RoleServer>,
    ) -> Option<Principal> {
        self.session()
            .resolve(
                &self.services().auth,
                self.session().bearer_of(context),
                None,
            )
            .await
            .ok()
    }
}
