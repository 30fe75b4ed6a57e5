//! The life of one tool call, the same for every tool: resolve the caller, apply the rate limit, parse
//! and validate the arguments, ask the policy, run, write the audit row, answer. [`EhrServer::begin`]
//! does everything before the tool's own work, [`EhrServer::finish`] everything after.
//!
//! Invariants: every call that reaches a tool writes exactly one audit row (denials and failures
//! included); a read's row is committed before its data is returned; a write's row commits in the same
//! transaction as the change ([`ToolCall::write`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use rmcp::RoleServer;
use rmcp::model::{CallToolResult, JsonObject};
use rmcp::service::RequestContext;
use serde::Serialize;

use super::EhrServer;
use super::args::{ToolArgs, parse_args, take_access_token};
use super::error::ToolError;
use super::session::BearerPrincipal;
use super::views::View;
use crate::audit::{AuditEvent, Outcome};
use crate::auth::{Principal, Tool};
use crate::domain::ids::Mrn;
use crate::store::{StoreError, Tx};

/// Runs one tool: `begin` (identity, rate limit, arguments, policy), the tool's body
/// `async fn(&ToolCall, Args) -> Result<impl Serialize, ToolError>`, then `finish` (audit, result).
macro_rules! run_tool {
    ($server:expr, $tool:expr, $context:expr, $arguments:expr, $body:path) => {{
        match $server.begin($tool, &$context, $arguments).await {
            Ok((call, args)) => {
                let outcome = $body(&call, args).await;
                $server.finish(call, outcome).await
            }
            Err(refused) => refused,
        }
    }};
}
pub(crate) use run_tool;

/// A write to run inside the audit log's transaction.
pub type WriteFuture<'c, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'c>>;

/// A tool call that passed authentication, validation and the policy.
pub struct ToolCall<'s> {
    pub server: &'s EhrServer,
    pub principal: Principal,
    pub request_id: String,
    pub tool: Tool,
    patient: Mutex<Option<Mrn>>,
    /// What a successful read's audit row says it read (no PHI): set by the tool.
    detail: Mutex<Option<String>>,
    started: Instant,
    audited: AtomicBool,
    view: View,
}

/// A call that stopped before its tool ran: the caller (if known) and why.
struct Refusal {
    principal: Option<Principal>,
    patient: Option<Mrn>,
    error: ToolError,
}

impl EhrServer {
    /// Everything before a tool's own work. `Err` is the finished (audited) error result to return.
    pub(crate) async fn begin<A: ToolArgs>(
        &self,
        tool: Tool,
        context: &RequestContext<RoleServer>,
        arguments: JsonObject,
    ) -> Result<(ToolCall<'_>, A), CallToolResult> {
        self.begin_as(tool, self.session().bearer_of(context), arguments)
            .await
            .map_err(|error| error.into_call_tool_result(tool))
    }

    /// [`Self::begin`] for a caller an HTTP request already authenticated (`bearer`), or none: the same
    /// steps, the same audit row for a refusal. `Err` is the (audited) refusal.
    pub(crate) async fn begin_as<A: ToolArgs>(
        &self,
        tool: Tool,
        bearer: Option<BearerPrincipal>,
        arguments: JsonObject,
    ) -> Result<(ToolCall<'_>, A), ToolError> {
        let request_id = uuid::Uuid::now_v7().to_string();
        let started = Instant::now();
        let named_patient = arguments
            .get("mrn")
            .and_then(serde_json::Value::as_str)
            .and_then(|text| Mrn::parse(text).ok());
        match self.admit::<A>(tool, bearer, arguments, &request_id).await {
            Ok((principal, view, args)) => Ok((
                ToolCall {
                    server: self,
                    principal,
                    patient: Mutex::new(args.patient().cloned()),
                    detail: Mutex::new(None),
                    request_id,
                    tool,
                    started,
                    audited: AtomicBool::new(false),
                    view,
                },
                args,
            )),
            Err(mut refusal) => {
                if refusal.patient.is_none() {
                    refusal.patient = named_patient;
                }
                Err(self.refuse(tool, &request_id, started, refusal).await)
            }
        }
    }

    async fn admit<A: ToolArgs>(
        &self,
        tool: Tool,
        bearer: Option<BearerPrincipal>,
        arguments: JsonObject,
        request_id: &str,
    ) -> Result<(Principal, View, A), Refusal> {
        let refuse = |principal: Option<&Principal>, patient: Option<&Mrn>, error| Refusal {
            principal: principal.cloned(),
            patient: patient.cloned(),
            error,
        };
        let mut arguments = arguments;
        let access_token =
            take_access_token(&mut arguments).map_err(|error| refuse(None, None, error))?;
        let auth = &self.services().auth;
        let principal = self
            .session()
            .resolve(auth, bearer, access_token.as_deref())
            .await
            .map_err(|error| refuse(None, None, ToolError::from_auth(request_id, error)))?;
        auth.check_rate_limit(&principal).map_err(|error| {
            refuse(
                Some(&principal),
                None,
                ToolError::from_auth(request_id, error),
            )
        })?;
        let view = View::take(tool, &mut arguments)
            .map_err(|error| refuse(Some(&principal), None, error))?;
        let args =
            parse_args::<A>(arguments).map_err(|error| refuse(Some(&principal), None, error))?;
        crate::auth::policy::authorize(&principal, tool, args.patient()).map_err(|error| {
            refuse(
                Some(&principal),
                args.patient(),
                ToolError::from_auth(request_id, error),
            )
        })?;
        Ok((principal, view, args))
    }

    async fn refuse(
        &self,
        tool: Tool,
        request_id: &str,
        started: Instant,
        refusal: Refusal,
    ) -> ToolError {
        if refusal.principal.is_none() {
            // A caller who never authenticated: counted into an aggregated row (bounded, not dropped).
            self.services()
                .audit
                .record_refusal(crate::audit::Refusal {
                    transport: self.session().transport(),
                    peer: self.session().origin().peer,
                    action: tool.name().to_owned(),
                    reason: refusal.error.code().to_owned(),
                    patient: refusal.patient.clone(),
                })
                .await;
            log_finished(
                self.session().transport(),
                tool,
                request_id,
                started,
                Some(&refusal.error),
            );
            return refusal.error;
        }
        let event = self.audit_event(
            tool,
            request_id,
            refusal.principal.as_ref(),
            refusal.patient.as_ref(),
            outcome_of(&refusal.error),
            Some(refusal.error.code().to_owned()),
        );
        if let Err(error) = self.services().audit.record(event).await {
            tracing::error!(request_id, %error, "audit row for a refused call could not be written");
        }
        log_finished(
            self.session().transport(),
            tool,
            request_id,
            started,
            Some(&refusal.error),
        );
        refusal.error
    }

    /// Everything after a tool's own work: the audit row (unless the write already wrote it), then the
    /// wire result. A read's data leaves only after its audit row is committed.
    pub(crate) async fn finish<R: Serialize>(
        &self,
        mut call: ToolCall<'_>,
        outcome: Result<R, ToolError>,
    ) -> CallToolResult {
        let tool = call.tool;
        let budget = self.services().result_budget;
        let view = std::mem::take(&mut call.view);
        // The MCP result's compact view and size budget (the FHIR API pages by `_count` instead).
        match self
            .finish_as(call, outcome)
            .await
            .and_then(|value| super::views::fit_result(&view, budget, value))
        {
            Ok(result) => result,
            Err(error) => error.into_call_tool_result(tool),
        }
    }

    /// [`Self::finish`] for a caller that is not an MCP client (the FHIR API): the same audit row and
    /// log line, the result as JSON.
    pub(crate) async fn finish_as<R: Serialize>(
        &self,
        call: ToolCall<'_>,
        outcome: Result<R, ToolError>,
    ) -> Result<serde_json::Value, ToolError> {
        let outcome = outcome.and_then(|result| {
            serde_json::to_value(result)
                .map_err(|error| ToolError::internal(&call.request_id, &error))
        });
        let already_audited = call.audited.load(Ordering::Acquire);
        let (audit_outcome, detail) = match &outcome {
            Ok(_) => (Outcome::Success, call.detail()),
            Err(error) => (outcome_of(error), Some(error.code().to_owned())),
        };
        if !already_audited {
            let event = self.audit_event(
                call.tool,
                &call.request_id,
                Some(&call.principal),
                call.patient().as_ref(),
                audit_outcome,
                detail,
            );
            if matches!(outcome, Err(ToolError::Unavailable { .. })) {
                // The database is down: no data leaves, so the caller gets its retryable answer now
                // and the row is written (or its failure logged) in the background.
                let audit = self.services().audit.clone();
                let request_id = call.request_id.clone();
                tokio::spawn(async move {
                    if let Err(error) = audit.record(event).await {
                        tracing::warn!(request_id, %error, "audit row of an unavailable call not written");
                    }
                });
            } else if let Err(error) = self.services().audit.record(event).await {
                let failure = ToolError::from_audit(&call.request_id, &error);
                log_finished(
                    self.session().transport(),
                    call.tool,
                    &call.request_id,
                    call.started,
                    Some(&failure),
                );
                return Err(failure);
            }
        }
        log_finished(
            self.session().transport(),
            call.tool,
            &call.request_id,
            call.started,
            outcome.as_ref().err(),
        );
        outcome
    }

    pub(crate) fn audit_event(
        &self,
        tool: Tool,
        request_id: &str,
        principal: Option<&Principal>,
        patient: Option<&Mrn>,
        outcome: Outcome,
        detail: Option<String>,
    ) -> AuditEvent {
        AuditEvent {
            request_id: request_id.to_owned(),
            transport: self.session().transport(),
            client_id: principal.map(|p| p.client_id.to_string()),
            app_id: principal.map(|p| p.app_id.clone()),
            role: principal.map(|p| p.role.as_str().to_owned()),
            action: tool.name().to_owned(),
            patient_mrn: patient.cloned(),
            outcome,
            // A signed-in person's calls name them (`user=…`) beside the client.
            detail: match principal.and_then(|p| p.user.as_ref()) {
                Some(user) => Some(match detail {
                    Some(detail) => format!("user={user} {detail}"),
                    None => format!("user={user}"),
                }),
                None => detail,
            },
        }
    }
}

impl<'s> ToolCall<'s> {
    /// A read admitted by a request other than `tools/call` (`resources/read`, `prompts/get`) that runs
    /// a tool's read under that tool's policy row; the request writes its own audit row (`request`).
    pub(crate) fn for_request(
        server: &'s EhrServer,
        principal: Principal,
        tool: Tool,
        patient: Option<Mrn>,
        request_id: String,
    ) -> Self {
        Self {
            server,
            principal,
            request_id,
            tool,
            patient: Mutex::new(patient),
            detail: Mutex::new(None),
            started: Instant::now(),
            audited: AtomicBool::new(false),
            view: View::default(),
        }
    }

    pub fn store(&self) -> &crate::store::Store {
        &self.server.services().store
    }

    /// The patient this call touches (named by its arguments, or found by the tool: the record it read).
    pub fn patient(&self) -> Option<Mrn> {
        self.patient.lock().ok().and_then(|patient| patient.clone())
    }

    /// Records that this call touches `mrn`'s records (its audit row names the patient).
    pub fn concerns(&self, mrn: &Mrn) {
        if let Ok(mut patient) = self.patient.lock() {
            *patient = Some(mrn.clone());
        }
    }

    /// What the success audit row says was read (no PHI: a resource type and interaction).
    pub fn describe(&self, detail: String) {
        if let Ok(mut slot) = self.detail.lock() {
            *slot = Some(detail);
        }
    }

    fn detail(&self) -> Option<String> {
        self.detail.lock().ok().and_then(|detail| detail.clone())
    }

    /// Whether the policy lets this caller read `mrn`'s record (asked as `get_patient`); used to scope
    /// lists such as search results to what the caller may open.
    pub fn may_see(&self, mrn: &Mrn) -> bool {
        crate::auth::policy::authorize(&self.principal, Tool::GetPatient, Some(mrn)).is_ok()
    }

    /// Maps a store failure of this call.
    pub fn store_error(&self, error: StoreError) -> ToolError {
        ToolError::from_store(&self.request_id, error)
    }

    /// Runs `write` in one transaction with this call's success audit row: both commit or neither.
    pub async fn write<T, W>(&self, detail: Option<String>, write: W) -> Result<T, ToolError>
    where
        T: Send + 'static,
        W: for<'c> FnOnce(Tx<'c>) -> WriteFuture<'c, T> + Send + 'static,
    {
        let event = self.server.audit_event(
            self.tool,
            &self.request_id,
            Some(&self.principal),
            self.patient().as_ref(),
            Outcome::Success,
            detail,
        );
        match self
            .server
            .services()
            .audit
            .record_write(event, write)
            .await
        {
            // Either way the audit row is written: `success`, or `failed` with the error kind.
            Ok(Ok(value)) => {
                self.audited.store(true, Ordering::Release);
                Ok(value)
            }
            Ok(Err(store_error)) => {
                self.audited.store(true, Ordering::Release);
                Err(self.store_error(store_error))
            }
            Err(audit_error) => Err(ToolError::from_audit(&self.request_id, &audit_error)),
        }
    }
}

pub(crate) fn outcome_of(error: &ToolError) -> Outcome {
    if error.is_denial() {
        Outcome::Denied
    } else {
        Outcome::Failed
    }
}

/// Logs the end of a tool call and counts it in the metrics (`ehr_mcp_requests_total`, latency).
pub(crate) fn log_finished(
    transport: crate::audit::Transport,
    tool: Tool,
    request_id: &str,
    started: Instant,
    error: Option<&ToolError>,
) {
    let elapsed = started.elapsed();
    crate::telemetry::metrics::record_request(
        transport.as_str(),
        tool.name(),
        error.map_or("success", ToolError::code),
        elapsed,
    );
    let elapsed_ms = elapsed.as_secs_f64() * 1000.0;
    match error {
        None => tracing::info!(
            tool = tool.name(),
            request_id,
            elapsed_ms,
            outcome = "success",
            "tool call"
        ),
        Some(error) => {
            tracing::info!(
                tool = tool.name(),
                request_id,
                elapsed_ms,
                outcome = error.code(),
                "tool call"
            )
        }
    }
}
