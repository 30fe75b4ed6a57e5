//! Medication tools: `get_medications`, `prescribe_medication`, `discontinue_medication`.

use rmcp::model::{CallToolResult, JsonObject};
use rmcp::service::RequestContext;
use rmcp::{RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::EhrServer;
use super::args::{
    self, MRN_PATTERN, RECORD_ID_PATTERN, ToolArgs, optional_text, required_text, status_filter,
};
use super::call::{ToolCall, run_tool};
use super::error::ToolError;
use super::record_change::{self, RecordChange};
use super::wire::{self, MedicationWire, Success};
use crate::auth::Tool;
use crate::domain::clinical::{Medication, MedicationStatus};
use crate::domain::ids::{Mrn, RecordId, RecordKind};

#[derive(Debug, Deserialize, JsonSchema)]
pub struct GetMedicationsArgs {
    #[schemars(with = "String", regex(pattern = MRN_PATTERN))]
    pub mrn: Mrn,
    /// Only medications with this status (default "active"); "all" for every status.
    #[schemars(extend("enum" = ["active", "on_hold", "completed", "discontinued", "all"]))]
    pub status: Option<String>,
}

impl ToolArgs for GetMedicationsArgs {
    fn validate(&self) -> Result<(), ToolError> {
        status_filter(
            self.status.as_deref(),
            Some(MedicationStatus::Active),
            MedicationStatus::parse,
        )
        .map(|_| ())
    }

    fn patient(&self) -> Option<&Mrn> {
        Some(&self.mrn)
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct PrescribeMedicationArgs {
    #[schemars(with = "String", regex(pattern = MRN_PATTERN))]
    pub mrn: Mrn,
    /// Drug name, e.g. "Lisinopril".
    #[schemars(length(min = 1, max = 200))]
    pub medication_name: String,
    /// Strength per dose, e.g. "10mg".
    #[schemars(length(min = 1, max = 100))]
    pub dosage: String,
    /// How often, e.g. "Once daily".
    #[schemars(length(min = 1, max = 100))]
    pub frequency: String,
    /// How it is taken, e.g. "Oral" (default "Oral").
    #[schemars(length(max = 50))]
    pub route: Option<String>,
    /// Refills allowed (0-12, default 0).
    #[schemars(range(min = 0, max = 12))]
    pub refills: Option<i64>,
    /// The prescriber's name; defaults to the calling application's name.
    #[schemars(length(max = 200))]
    pub prescriber: Option<String>,
    #[schemars(length(max = 1000))]
    pub notes: Option<String>,
}

impl ToolArgs for PrescribeMedicationArgs {
    fn validate(&self) -> Result<(), ToolError> {
        required_text("medication_name", &self.medication_name, 200)?;
        required_text("dosage", &self.dosage, 100)?;
        required_text("frequency", &self.frequency, 100)?;
        optional_text("route", self.route.as_deref(), 50)?;
        optional_text("prescriber", self.prescriber.as_deref(), 200)?;
        optional_text("notes", self.notes.as_deref(), 1000)?;
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
    #[schemars(regex(pattern = RECORD_ID_PATTERN))]
    pub medication_id: String,
    /// Why it is stopped (kept in the notes).
    #[schemars(length(max = 500))]
    pub reason: Option<String>,
}

impl ToolArgs for DiscontinueMedicationArgs {
    fn validate(&self) -> Result<(), ToolError> {
        RecordId::parse("medication_id", &self.medication_id)?;
        optional_text("reason", self.reason.as_deref(), 500).map(|_| ())
    }

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
    let status = status_filter(
        args.status.as_deref(),
        Some(MedicationStatus::Active),
        MedicationStatus::parse,
    )?;
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
    let prescriber = optional_text("prescriber", args.prescriber.as_deref(), 200)?
        .unwrap_or_else(|| call.principal.app_name.clone());
    let medication = Medication {
        medication_id: RecordId::generate(RecordKind::Medication),
        patient_mrn: args.mrn.clone(),
        name: required_text("medication_name", &args.medication_name, 200)?,
        dosage: Some(required_text("dosage", &args.dosage, 100)?),
        frequency: Some(required_text("frequency", &args.frequency, 100)?),
        route: Some(
            optional_text("route", args.route.as_deref(), 50)?.unwrap_or_else(|| "Oral".to_owned()),
        ),
        prescribed_date: Some(crate::domain::time::format_date(
            chrono::Utc::now().date_naive(),
        )),
        prescriber: Some(prescriber),
        status: MedicationStatus::Active,
        refills_remaining: args.refills.unwrap_or(0),
        notes: optional_text("notes", args.notes.as_deref(), 1000)?,
    };
    let stored = medication.clone();
    call.write(
        Some(format!("medication_id={}", medication.medication_id)),
        move |conn| {
            Box::pin(
                async move { crate::store::medications::insert_medication(conn, &stored).await },
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
        &args.medication_id,
        &args.mrn,
        args.reason.as_deref(),
        async |id| Ok(call.store().medication(id).await?.patient_mrn),
    )
    .await?;
    let stopped = call
        .write(detail, move |conn| {
            Box::pin(async move {
                crate::store::medications::discontinue_medication(conn, &id, reason.as_deref())
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
