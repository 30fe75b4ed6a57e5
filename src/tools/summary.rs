//! `get_patient_summary`: demographics, active medications, active allergies, latest vitals, recent labs
//! and upcoming appointments in one call.

use rmcp::model::{CallToolResult, JsonObject};
use rmcp::service::RequestContext;
use rmcp::{RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::EhrServer;
use super::args::{self, MRN_PATTERN, ToolArgs};
use super::call::{ToolCall, run_tool};
use super::error::ToolError;
use super::wire::{
    self, AllergyWire, AppointmentWire, LabResultWire, MedicationWire, PatientWire, Success,
    VitalSignsWire,
};
use crate::domain::clinical::{AllergyStatus, MedicationStatus};
use crate::domain::ids::Mrn;
use crate::store::appointments::AppointmentFilter;

/// How many recent lab results and upcoming appointments a summary shows.
const RECENT_LABS: u32 = 5;
const UPCOMING_APPOINTMENTS: u32 = 10;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct GetPatientSummaryArgs {
    #[schemars(with = "String", regex(pattern = MRN_PATTERN))]
    pub mrn: Mrn,
}

impl ToolArgs for GetPatientSummaryArgs {
    fn patient(&self) -> Option<&Mrn> {
        Some(&self.mrn)
    }
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct PatientSummaryResult {
    pub status: Success,
    pub mrn: String,
    pub patient: PatientWire,
    pub active_medications: Vec<MedicationWire>,
    /// Active allergies.
    pub allergies: Vec<AllergyWire>,
    /// The most recent vital signs, if any were recorded.
    pub latest_vital_signs: Option<VitalSignsWire>,
    /// The most recent lab orders and results, newest first.
    pub recent_lab_results: Vec<LabResultWire>,
    /// Scheduled, confirmed or checked-in appointments from today on, soonest first.
    pub upcoming_appointments: Vec<AppointmentWire>,
}

#[tool_router(router = summary_tools, vis = "pub(crate)")]
impl EhrServer {
    #[tool(
        title = "Get patient summary",
        description = "One call for a patient overview: demographics, active medications, active allergies, \
                       latest vital signs, the 5 most recent lab results and upcoming appointments. Start here \
                       before a visit or a medication review.",
        input_schema = args::input_schema::<GetPatientSummaryArgs>(),
        output_schema = args::output_schema::<PatientSummaryResult>(),
        annotations(read_only_hint = true, destructive_hint = false, idempotent_hint = true, open_world_hint = false)
    )]
    async fn get_patient_summary(
        &self,
        context: RequestContext<RoleServer>,
        arguments: JsonObject,
    ) -> CallToolResult {
        run_tool!(
            self,
            "get_patient_summary",
            context,
            arguments,
            get_patient_summary
        )
    }
}

async fn get_patient_summary(
    call: &ToolCall<'_>,
    args: GetPatientSummaryArgs,
) -> Result<PatientSummaryResult, ToolError> {
    let store = call.store();
    let mrn = &args.mrn;
    let fail = |error| call.store_error(error);
    let patient = store.patient(mrn).await.map_err(fail)?;
    let today = crate::domain::time::format_date(chrono::Utc::now().date_naive());
    let filter = AppointmentFilter {
        status: None,
        from_date: Some(today),
        provider_npi: None,
        limit: UPCOMING_APPOINTMENTS * 3,
    };
    let (medications, allergies, vitals, labs, appointments) = futures::try_join!(
        store.medications(mrn, Some(MedicationStatus::Active)),
        store.allergies(mrn, Some(AllergyStatus::Active)),
        store.vital_signs(mrn, 1),
        store.lab_results(mrn, None, RECENT_LABS),
        store.appointments(mrn, &filter),
    )
    .map_err(fail)?;
    let upcoming: Vec<AppointmentWire> = appointments
        .iter()
        .filter(|appointment| appointment.status.holds_slot())
        .take(UPCOMING_APPOINTMENTS as usize)
        .map(AppointmentWire::from)
        .collect();
    Ok(PatientSummaryResult {
        status: Success::Success,
        mrn: mrn.to_string(),
        patient: PatientWire::from(&patient),
        active_medications: wire::all(&medications),
        allergies: wire::all(&allergies),
        latest_vital_signs: vitals.first().map(VitalSignsWire::from),
        recent_lab_results: wire::all(&labs),
        upcoming_appointments: upcoming,
    })
}
