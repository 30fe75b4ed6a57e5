//! `get_patient_summary`: demographics, active medications, active allergies, latest vitals, recent labs
//! and upcoming appointments in one call — each section only when the caller's scopes allow its kind of
//! data (`auth::policy::readable`); the result names the sections it withheld.

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
use crate::auth::Tool;
use crate::auth::{DataKind, policy};
use crate::domain::clinical::{
    Allergy, AllergyStatus, Appointment, LabResult, Medication, MedicationStatus, Patient,
    VitalSigns,
};
use crate::domain::ids::Mrn;
use crate::store::StoreError;
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

/// A patient overview. Each section is there only when the caller's scopes allow its kind of data;
/// `withheld` names the sections left out for that reason.
#[derive(Debug, Serialize, JsonSchema)]
pub struct PatientSummaryResult {
    pub status: Success,
    pub mrn: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patient: Option<PatientWire>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active_medications: Option<Vec<MedicationWire>>,
    /// Active allergies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allergies: Option<Vec<AllergyWire>>,
    /// The most recent vital signs (null when none were recorded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latest_vital_signs: Option<Option<VitalSignsWire>>,
    /// The most recent lab orders and results, newest first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recent_lab_results: Option<Vec<LabResultWire>>,
    /// Scheduled, confirmed or checked-in appointments from today on, soonest first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upcoming_appointments: Option<Vec<AppointmentWire>>,
    /// The sections this caller's scopes do not cover, by their names above (empty when none).
    pub withheld: Vec<&'static str>,
}

/// The result key of each summary section.
pub(super) fn section_name(kind: DataKind) -> &'static str {
    match kind {
        DataKind::Demographics => "patient",
        DataKind::Medications => "active_medications",
        DataKind::Allergies => "allergies",
        DataKind::VitalSigns => "latest_vital_signs",
        DataKind::LabResults => "recent_lab_results",
        DataKind::Appointments => "upcoming_appointments",
        DataKind::Providers | DataKind::Clients | DataKind::Audit => "other",
    }
}

/// Runs `fetch` only for a section the caller may see.
async fn section<T>(
    shown: bool,
    fetch: impl std::future::Future<Output = Result<T, StoreError>>,
) -> Result<Option<T>, StoreError> {
    if shown {
        fetch.await.map(Some)
    } else {
        Ok(None)
    }
}

#[tool_router(router = summary_tools, vis = "pub(crate)")]
impl EhrServer {
    #[tool(
        title = "Get patient summary",
        description = "One call for a patient overview: demographics, active medications, active allergies, \
                       latest vital signs, the 5 most recent lab results and upcoming appointments — each section \
                       your scopes cover; `withheld` names the others. Start here before a visit or a \
                       medication review.",
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
            Tool::GetPatientSummary,
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
    Ok(summary_records(call, &args.mrn).await?.to_wire())
}

/// The domain records of a patient summary (the tool, its resources in JSON, Markdown and FHIR, and the
/// prompts all read this): each section only when the caller may see its kind of data.
pub(super) struct SummaryRecords {
    pub patient: Patient,
    /// Whether the caller may see the demographics (the patient is always read, to tell not found).
    pub demographics: bool,
    pub active_medications: Option<Vec<Medication>>,
    pub allergies: Option<Vec<Allergy>>,
    /// The latest vital signs (at most one).
    pub latest_vital_signs: Option<Vec<VitalSigns>>,
    pub recent_lab_results: Option<Vec<LabResult>>,
    pub upcoming_appointments: Option<Vec<Appointment>>,
    /// The kinds of data the caller's scopes do not cover.
    pub withheld: Vec<DataKind>,
}

impl SummaryRecords {
    pub fn mrn(&self) -> &Mrn {
        &self.patient.mrn
    }

    pub fn to_wire(&self) -> PatientSummaryResult {
        PatientSummaryResult {
            status: Success::Success,
            mrn: self.mrn().to_string(),
            patient: self.demographics.then(|| PatientWire::from(&self.patient)),
            active_medications: self.active_medications.as_deref().map(wire::all),
            allergies: self.allergies.as_deref().map(wire::all),
            latest_vital_signs: self
                .latest_vital_signs
                .as_ref()
                .map(|vitals| vitals.first().map(VitalSignsWire::from)),
            recent_lab_results: self.recent_lab_results.as_deref().map(wire::all),
            upcoming_appointments: self.upcoming_appointments.as_deref().map(wire::all),
            withheld: self
                .withheld
                .iter()
                .map(|kind| section_name(*kind))
                .collect(),
        }
    }
}

/// Reads the summary of `mrn` for `call`'s caller (the policy row of `get_patient_summary` decides).
pub(super) async fn summary_records(
    call: &ToolCall<'_>,
    mrn: &Mrn,
) -> Result<SummaryRecords, ToolError> {
    let store = call.store();
    let fail = |error| call.store_error(error);
    let sections = policy::policy(Tool::GetPatientSummary).returns;
    let visible = policy::readable(&call.principal, sections);
    let shown = |kind| visible.contains(&kind);
    // Not found is told the same way whatever the caller may see.
    let patient = store.patient(mrn).await.map_err(fail)?;
    let today = crate::domain::time::Date::today();
    let filter = AppointmentFilter {
        status: None,
        from_date: Some(today),
        provider_npi: None,
        limit: UPCOMING_APPOINTMENTS * 3,
    };
    let (medications, allergies, vitals, labs, appointments) = futures::try_join!(
        section(
            shown(DataKind::Medications),
            store.medications(mrn, Some(MedicationStatus::Active))
        ),
        section(
            shown(DataKind::Allergies),
            store.allergies(mrn, Some(AllergyStatus::Active))
        ),
        section(shown(DataKind::VitalSigns), store.vital_signs(mrn, 1)),
        section(
            shown(DataKind::LabResults),
            store.lab_results(mrn, None, RECENT_LABS)
        ),
        section(
            shown(DataKind::Appointments),
            store.appointments(mrn, &filter)
        ),
    )
    .map_err(fail)?;
    let upcoming = appointments.map(|appointments| {
        appointments
            .into_iter()
            .filter(|appointment| appointment.status.holds_slot())
            .take(UPCOMING_APPOINTMENTS as usize)
            .collect()
    });
    Ok(SummaryRecords {
        demographics: shown(DataKind::Demographics),
        patient,
        active_medications: medications,
        allergies,
        latest_vital_signs: vitals,
        recent_lab_results: labs,
        upcoming_appointments: upcoming,
        withheld: sections
            .iter()
            .copied()
            .filter(|kind| !shown(*kind))
            .collect(),
    })
}
