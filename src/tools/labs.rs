//! Laboratory tools: `get_lab_results`, `order_lab`.

use rmcp::model::{CallToolResult, JsonObject};
use rmcp::service::RequestContext;
use rmcp::{RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::EhrServer;
use super::args::{self, MRN_PATTERN, StatusFilter, ToolArgs, in_range};
use super::call::{ToolCall, run_tool};
use super::error::ToolError;
use super::wire::{self, LabResultWire, Success};
use crate::auth::Tool;
use crate::domain::clinical::{LabResult, LabStatus};
use crate::domain::ids::{Mrn, RecordId, RecordKind};
use crate::domain::text::field::Label;
use crate::domain::time::Date;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct GetLabResultsArgs {
    #[schemars(with = "String", regex(pattern = MRN_PATTERN))]
    pub mrn: Mrn,
    /// Only results with this status; all when omitted or "all".
    pub status: Option<StatusFilter<LabStatus>>,
    /// Most results to return, newest order first (1-100, default 20).
    #[schemars(range(min = 1, max = 100))]
    pub limit: Option<u32>,
}

impl ToolArgs for GetLabResultsArgs {
    fn validate(&self) -> Result<(), ToolError> {
        in_range("limit", self.limit, 1, 100, "results")
    }

    fn patient(&self) -> Option<&Mrn> {
        Some(&self.mrn)
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct OrderLabArgs {
    #[schemars(with = "String", regex(pattern = MRN_PATTERN))]
    pub mrn: Mrn,
    /// The test to order, e.g. "Complete Blood Count (CBC)" or "Hemoglobin A1C".
    pub test_name: Label,
}

impl ToolArgs for OrderLabArgs {
    fn patient(&self) -> Option<&Mrn> {
        Some(&self.mrn)
    }
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct LabResultsResult {
    pub status: Success,
    pub mrn: String,
    pub count: usize,
    pub lab_results: Vec<LabResultWire>,
    /// True when the patient has more results than `limit`; `message` says how to see them.
    pub truncated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct LabOrderResult {
    pub status: Success,
    pub message: String,
    pub lab_result: LabResultWire,
}

#[tool_router(router = lab_tools, vis = "pub(crate)")]
impl EhrServer {
    #[tool(
        title = "Get lab results",
        description = "List a patient's laboratory orders and results, newest first, each with its components \
                       (value, unit, reference range, flag such as high or low). Up to `limit` (default 20); \
                       `truncated` says when there are more.",
        input_schema = args::input_schema::<GetLabResultsArgs>(),
        output_schema = args::output_schema::<LabResultsResult>(),
        annotations(read_only_hint = true, destructive_hint = false, idempotent_hint = true, open_world_hint = false)
    )]
    async fn get_lab_results(
        &self,
        context: RequestContext<RoleServer>,
        arguments: JsonObject,
    ) -> CallToolResult {
        run_tool!(
            self,
            Tool::GetLabResults,
            context,
            arguments,
            get_lab_results
        )
    }

    #[tool(
        title = "Order lab test",
        description = "Order a laboratory test for a patient by test_name. The order starts with status \
                       \"ordered\" and no results; get_lab_results shows it.",
        input_schema = args::input_schema::<OrderLabArgs>(),
        output_schema = args::output_schema::<LabOrderResult>(),
        annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = false, open_world_hint = false)
    )]
    async fn order_lab(
        &self,
        context: RequestContext<RoleServer>,
        arguments: JsonObject,
    ) -> CallToolResult {
        run_tool!(self, Tool::OrderLab, context, arguments, order_lab)
    }
}

async fn get_lab_results(
    call: &ToolCall<'_>,
    args: GetLabResultsArgs,
) -> Result<LabResultsResult, ToolError> {
    let status = StatusFilter::resolve(args.status, None);
    let limit = args.limit.unwrap_or(20);
    let labs = call
        .store()
        .lab_results(&args.mrn, status, limit + 1)
        .await
        .map_err(|e| call.store_error(e))?;
    let (labs, truncated) = wire::truncate(labs, limit);
    Ok(LabResultsResult {
        status: Success::Success,
        mrn: args.mrn.to_string(),
        count: labs.len(),
        lab_results: wire::all(&labs),
        truncated,
        message: truncated.then(|| wire::truncated_note("lab results", limit, 100)),
    })
}

async fn order_lab(call: &ToolCall<'_>, args: OrderLabArgs) -> Result<LabOrderResult, ToolError> {
    let lab = LabResult {
        order_id: RecordId::generate(RecordKind::LabOrder),
        patient_mrn: args.mrn.clone(),
        test_name: args.test_name.into_string(),
        ordered_date: Some(Date::today().into()),
        collected_date: None,
        resulted_date: None,
        status: LabStatus::Ordered,
        ordered_by: Some(call.principal.app_name.clone()),
        results_json: None,
    };
    let stored = lab.clone();
    call.write(Some(format!("order_id={}", lab.order_id)), move |mut tx| {
        Box::pin(async move { crate::store::labs::insert_lab_result(&mut tx, &stored).await })
    })
    .await?;
    Ok(LabOrderResult {
        status: Success::Success,
        message: format!("{} ordered ({})", lab.test_name, lab.order_id),
        lab_result: LabResultWire::from(&lab),
    })
}
