//! Vital sign tools: `get_vital_signs`, `record_vital_signs` (with range checks and a computed BMI).

use rmcp::model::{CallToolResult, JsonObject};
use rmcp::service::RequestContext;
use rmcp::{RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::EhrServer;
use super::args::{self, MRN_PATTERN, ToolArgs, in_range};
use super::call::{ToolCall, run_tool};
use super::error::ToolError;
use super::wire::{self, Success, VitalSignsWire};
use crate::auth::Tool;
use crate::domain::clinical::{VitalSigns, bmi_from_imperial};
use crate::domain::ids::{Mrn, RecordId, RecordKind};
use crate::domain::text::Text;
use crate::domain::text::field::Note;
use crate::domain::time::Timestamp;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct GetVitalSignsArgs {
    #[schemars(with = "String", regex(pattern = MRN_PATTERN))]
    pub mrn: Mrn,
    /// Most measurements to return, newest first (1-100, default 10).
    #[schemars(range(min = 1, max = 100))]
    pub limit: Option<u32>,
}

impl ToolArgs for GetVitalSignsArgs {
    fn validate(&self) -> Result<(), ToolError> {
        in_range("limit", self.limit, 1, 100, "measurements")
    }

    fn patient(&self) -> Option<&Mrn> {
        Some(&self.mrn)
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct RecordVitalSignsArgs {
    #[schemars(with = "String", regex(pattern = MRN_PATTERN))]
    pub mrn: Mrn,
    /// Systolic blood pressure, mmHg (50-300).
    #[schemars(range(min = 50, max = 300))]
    pub systolic_bp: Option<i64>,
    /// Diastolic blood pressure, mmHg (20-200), below the systolic.
    #[schemars(range(min = 20, max = 200))]
    pub diastolic_bp: Option<i64>,
    /// Heart rate, beats per minute (20-300).
    #[schemars(range(min = 20, max = 300))]
    pub heart_rate: Option<i64>,
    /// Body temperature, degrees Fahrenheit (86-113).
    #[schemars(range(min = 86.0, max = 113.0))]
    pub temperature: Option<f64>,
    /// Respiratory rate, breaths per minute (4-80).
    #[schemars(range(min = 4, max = 80))]
    pub respiratory_rate: Option<i64>,
    /// Oxygen saturation SpO2, percent (50-100).
    #[schemars(range(min = 50, max = 100))]
    pub oxygen_saturation: Option<i64>,
    /// Weight, pounds (1-1500).
    #[schemars(range(min = 1.0, max = 1500.0))]
    pub weight: Option<f64>,
    /// Height, inches (10-108).
    #[schemars(range(min = 10.0, max = 108.0))]
    pub height: Option<f64>,
    pub notes: Option<Note>,
}

impl ToolArgs for RecordVitalSignsArgs {
    fn validate(&self) -> Result<(), ToolError> {
        in_range("systolic_bp", self.systolic_bp, 50, 300, "mmHg")?;
        in_range("diastolic_bp", self.diastolic_bp, 20, 200, "mmHg")?;
        in_range("heart_rate", self.heart_rate, 20, 300, "beats per minute")?;
        in_range("temperature", self.temperature, 86.0, 113.0, "°F")?;
        in_range(
            "respiratory_rate",
            self.respiratory_rate,
            4,
            80,
            "breaths per minute",
        )?;
        in_range("oxygen_saturation", self.oxygen_saturation, 50, 100, "%")?;
        in_range("weight", self.weight, 1.0, 1500.0, "lb")?;
        in_range("height", self.height, 10.0, 108.0, "in")?;
        if let (Some(systolic), Some(diastolic)) = (self.systolic_bp, self.diastolic_bp) {
            if diastolic >= systolic {
                return Err(ToolError::invalid(
                    "diastolic_bp",
                    format!("must be below systolic_bp ({systolic})"),
                ));
            }
        }
        let measured = [
            self.systolic_bp.is_some(),
            self.diastolic_bp.is_some(),
            self.heart_rate.is_some(),
            self.temperature.is_some(),
            self.respiratory_rate.is_some(),
            self.oxygen_saturation.is_some(),
            self.weight.is_some(),
            self.height.is_some(),
        ];
        if !measured.contains(&true) {
            return Err(ToolError::InvalidInput(
                "no measurement given: pass at least one of systolic_bp, diastolic_bp, heart_rate, \
                 temperature, respiratory_rate, oxygen_saturation, weight, height"
                    .to_owned(),
            ));
        }
        Ok(())
    }

    fn patient(&self) -> Option<&Mrn> {
        Some(&self.mrn)
    }
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct VitalSignsResult {
    pub status: Success,
    pub mrn: String,
    pub count: usize,
    pub vital_signs: Vec<VitalSignsWire>,
    /// True when the patient has more measurements than `limit`; `message` says how to see them.
    pub truncated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct RecordedVitalSignsResult {
    pub status: Success,
    pub message: String,
    pub vital_signs: VitalSignsWire,
}

#[tool_router(router = vital_sign_tools, vis = "pub(crate)")]
impl EhrServer {
    #[tool(
        title = "Get vital signs",
        description = "List a patient's most recent vital signs, newest first: blood pressure, heart rate, \
                       temperature (°F), respiratory rate, SpO2, weight (lb), height (in), BMI.",
        input_schema = args::input_schema::<GetVitalSignsArgs>(),
        output_schema = args::output_schema::<VitalSignsResult>(),
        annotations(read_only_hint = true, destructive_hint = false, idempotent_hint = true, open_world_hint = false)
    )]
    async fn get_vital_signs(
        &self,
        context: RequestContext<RoleServer>,
        arguments: JsonObject,
    ) -> CallToolResult {
        run_tool!(
            self,
            Tool::GetVitalSigns,
            context,
            arguments,
            get_vital_signs
        )
    }

    #[tool(
        title = "Record vital signs",
        description = "Record a set of vital signs for a patient now. Pass any of systolic_bp/diastolic_bp \
                       (mmHg), heart_rate (bpm), temperature (°F), respiratory_rate, oxygen_saturation (%), \
                       weight (lb), height (in); implausible values are refused. BMI is computed from weight \
                       and height.",
        input_schema = args::input_schema::<RecordVitalSignsArgs>(),
        output_schema = args::output_schema::<RecordedVitalSignsResult>(),
        annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = false, open_world_hint = false)
    )]
    async fn record_vital_signs(
        &self,
        context: RequestContext<RoleServer>,
        arguments: JsonObject,
    ) -> CallToolResult {
        run_tool!(
            self,
            Tool::RecordVitalSigns,
            context,
            arguments,
            record_vital_signs
        )
    }
}

async fn get_vital_signs(
    call: &ToolCall<'_>,
    args: GetVitalSignsArgs,
) -> Result<VitalSignsResult, ToolError> {
    let limit = args.limit.unwrap_or(10);
    let vitals = call
        .store()
        .vital_signs(&args.mrn, limit + 1)
        .await
        .map_err(|e| call.store_error(e))?;
    let (vitals, truncated) = wire::truncate(vitals, limit);
    Ok(VitalSignsResult {
        status: Success::Success,
        mrn: args.mrn.to_string(),
        count: vitals.len(),
        vital_signs: wire::all(&vitals),
        truncated,
        message: truncated.then(|| wire::truncated_note("measurements", limit, 100)),
    })
}

async fn record_vital_signs(
    call: &ToolCall<'_>,
    args: RecordVitalSignsArgs,
) -> Result<RecordedVitalSignsResult, ToolError> {
    let bmi = args
        .weight
        .zip(args.height)
        .and_then(|(weight, height)| bmi_from_imperial(weight, height));
    let vitals = VitalSigns {
        vital_id: RecordId::generate(RecordKind::VitalSigns),
        patient_mrn: args.mrn.clone(),
        recorded_date: Timestamp::now(),
        systolic_bp: args.systolic_bp,
        diastolic_bp: args.diastolic_bp,
        heart_rate: args.heart_rate,
        temperature: args.temperature,
        respiratory_rate: args.respiratory_rate,
        oxygen_saturation: args.oxygen_saturation,
        weight: args.weight,
        height: args.height,
        bmi,
        recorded_by: Some(call.principal.app_name.clone()),
        notes: args.notes.map(Text::into_string),
    };
    let stored = vitals.clone();
    call.write(
        Some(format!("vital_id={}", vitals.vital_id)),
        move |mut tx| {
            Box::pin(
                async move { crate::store::vitals::insert_vital_signs(&mut tx, &stored).await },
            )
        },
    )
    .await?;
    Ok(RecordedVitalSignsResult {
        status: Success::Success,
        message: format!("vital signs recorded ({})", vitals.vital_id),
        vital_signs: VitalSignsWire::from(&vitals),
    })
}
