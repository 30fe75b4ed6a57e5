//! Medication tools: `get_medications`, `prescribe_medication`, `discontinue_medication`.

use rmcp::model::{CallToolResult, JsonObject};
use rmcp::service::RequestContext;
use rmcp::{RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::EhrServer;
use super::args::{self, MRN_PATTERN, RECORD_ID_PATTERN, StatusFilter, ToolArgs};
use super::call::{ToolCall, run_tool};
use super::error::ToolError;
use super::record_change::{self, RecordChange};
use super::wire::{self, MedicationWire, Success};
use crate::auth::Tool;
use crate::domain::clinical::{Medication, MedicationStatus};
use crate::domain::ids::{Mrn, RecordId, RecordKind};
use crate::domain::text::Text;
use crate::domain::text::field::{Label, Name, Note, Reason, Short};
use crate::domain::time::Date;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct GetMedicationsArgs {
    #[schemars(with = "String", regex(pattern = MRN_PATTERN))]
    pub mrn: Mrn,
    /// Only medications with this status (default "active"); "all" for every status.
    pub status: Option<StatusFilter<MedicationStatus>>,
}

impl ToolArgs for GetMedicationsArgs {
    fn patient(&self) -> Option<&Mrn> {
        Some(&self.mrn)
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct PrescribeMedicationArgs {
    #[schemars(with = "String", regex(pattern = MRN_PATTERN))]
    pub mrn: Mrn,
    /// Drug name, e.g. "Lisinopril".
    pub medication_name: Label,
    /// Strength per dose, e.g. "10mg".
    pub dosage: Name,
    /// How often, e.g. "Once daily".
    pub frequency: Name,
    /// How it is taken, e.g. "Oral" (default "Oral").
    pub route: Option<Short>,
    /// Refills allowed (0-12, default 0).
    #[schemars(range(min = 0, max = 12))]
    pub refills: Option<i64>,
    /// The prescriber's name; defaults to the calling application's name.
    pub prescriber: Option<Label>,
    pub notes: Option<Note>,
}

impl ToolArgs for PrescribeMedicationArgs {
    fn validate(&self) -> Result<(), ToolError> {
        args::in_range("refills", self.refills, 0, 12, "refills")
    }

    fn patient(&self) -> Option<&Mrn> {
        Some(&self.mrn)
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct DiscontinueMedicationArgs {
    /// The patient the medication belongs to.
    #[schemars(with = "String", regex(pattern = MRN_PATTERN))]
    pub mrn: Mrn,
    /// The medication's id (from get_medications), e.g. MED001.
    #[schemars(with = "String", regex(pattern = RECORD_ID_PATTERN))]
    pub medication_id: RecordId,
    /// Why it is stopped (kept in the notes).
    pub reason: Option<Reason>,
}

impl ToolArgs for DiscontinueMedicationArgs {
    fn patient(&self) -> Option<&Mrn> {
        Some(&self.mrn)
    }
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct MedicationsResult {
    pub status: Success,
    pub mrn: String,
    pub count: usize,
    pub medications: Vec<MedicationWire>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct MedicationResult {
    pub status: Success,
    pub message: String,
    pub medication: MedicationWire,
}

#[tool_router(router = medication_tools, vis = "pub(crate)")]
impl EhrServer {
    #[tool(
        title = "Get medications",
        description = "List a patient's medications (name, dosage, frequency, route, prescriber, status, refills), \
                       newest first: the active ones unless you pass another status, or \"all\".",
        input_schema = args::input_schema::<GetMedicationsArgs>(),
        output_schema = args::output_schema::<MedicationsResult>(),
        annotations(read_only_hint = true, destructive_hint = false, idempotent_hint = true, open_world_hint = false)
    )]
    async fn get_medications(
        &self,
        context: RequestContext<RoleServer>,
        arguments: JsonObject,
    ) -> CallToolResult {
        run_tool!(
            self,
            Tool::GetMedications,
            context,
            arguments,
            get_medications
        )
    }

    #[tool(
        title = "Prescribe medication",
        description = "Prescribe a medication for a patient: medication_name, dosage, frequency, optional route, \
                       refills (0-12) and notes. Check get_allergies first. Doctors and pharmacy systems only.",
        input_schema = args::input_schema::<PrescribeMedicationArgs>(),
        output_schema = args::output_schema::<MedicationResult>(),
        annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = false, open_world_hint = false)
    )]
    async fn prescribe_medication(
        &self,
        context: RequestContext<RoleServer>,
        arguments: JsonObject,
    ) -> CallToolResult {
        run_tool!(
            self,
            Tool::PrescribeMedication,
            context,
            arguments,
            prescribe_medication
        )
    }

    #[tool(
        title = "Discontinue medication",
        description = "Stop one of a patient's medications by its medication_id, with an optional reason. \
                       An already discontinued medication is a conflict.",
        input_schema = args::input_schema::<DiscontinueMedicationArgs>(),
        output_schema = args::output_schema::<MedicationResult>(),
        annotations(read_only_hint = false, destructive_hint = true, idempotent_hint = false, open_world_hint = false)
    )]
    async fn discontinue_medication(
        &self,
        context: RequestContext<RoleServer>,
        arguments: JsonObject,
    ) -> CallToolResult {
        run_tool!(
            self,
            Tool::DiscontinueMedication,
            context,
            arguments,
            discontinue_medication
        )
    }
}

async fn get_medications(
    call: &ToolCall<'_>,
    args: GetMedicationsArgs,
) -> Result<MedicationsResult, ToolError> {
    let status = StatusFilter::resolve(args.status, Some(MedicationStatus::Active));
    let medications = call
        .store()
        .medications(&args.mrn, status)
        .await
        .map_err(|e| call.store_error(e))?;
    Ok(MedicationsResult {
        status: Success::Success,
        mrn: args.mrn.to_string(),
        count: medications.len(),
        medications: wire::all(&medications),
    })
}

async fn prescribe_medication(
    call: &ToolCall<'_>,
    args: PrescribeMedicationArgs,
) -> Result<MedicationResult, ToolError> {
    let prescriber = args
        .prescriber
        .map_or_else(|| call.principal.app_name.clone(), Text::into_string);
    let medication = Medication {
        medication_id: RecordId::generate(RecordKind::Medication),
        patient_mrn: args.mrn.clone(),
        name: args.medication_name.into_string(),
        dosage: Some(args.dosage.into_string()),
        frequency: Some(args.frequency.into_string()),
        route: Some(
            args.route
                .map_or_else(|| "Oral".to_owned(), Text::into_string),
        ),
        prescribed_date: Some(Date::today()),
        prescriber: Some(prescriber),
        status: MedicationStatus::Active,
        refills_remaining: args.refills.unwrap_or(0),
        notes: args.notes.map(Text::into_string),
    };
    let stored = medication.clone();
    call.write(
        Some(format!("medication_id={}", medication.medication_id)),
        move |mut tx| {
            Box::pin(
                async move { crate::store::medications::insert_medication(&mut tx, &stored).await },
            )
        },
    )
    .await?;
    Ok(MedicationResult {
        status: Success::Success,
        message: format!(
            "{} {} prescribed ({})",
            medication.name,
            medication.dosage.as_deref().unwrap_or_default(),
            medication.medication_id
        ),
        medication: MedicationWire::from(&medication),
    })
}

async fn discontinue_medication(
    call: &ToolCall<'_>,
    args: DiscontinueMedicationArgs,
) -> Result<MedicationResult, ToolError> {
    let RecordChange { id, reason, detail } = record_change::check(
        call,
        "medication",
        "medication_id",
        args.medication_id,
        &args.mrn,
        args.reason,
        async |id| Ok(call.store().medication(id).await?.patient_mrn),
    )
    .await?;
    let stopped = call
        .write(detail, move |mut tx| {
            Box::pin(async move {
                crate::store::medications::discontinue_medication(&mut tx, &id, reason.as_deref())
                    .await
            })
        })
        .await?;
    Ok(MedicationResult {
        status: Success::Success,
        message: format!("{} discontinued", stopped.name),
        medication: MedicationWire::from(&stopped),
    })
}
