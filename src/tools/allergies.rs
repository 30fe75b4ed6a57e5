//! Allergy tools: `get_allergies`, `add_allergy`.

use rmcp::model::{CallToolResult, JsonObject};
use rmcp::service::RequestContext;
use rmcp::{RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::EhrServer;
use super::args::{
    self, DATE_PATTERN, MRN_PATTERN, ToolArgs, iso_date, optional_text, required_text,
    status_filter,
};
use super::call::{ToolCall, run_tool};
use super::error::ToolError;
use super::wire::{self, AllergyWire, Success};
use crate::auth::Tool;
use crate::domain::clinical::{Allergy, AllergySeverity, AllergyStatus};
use crate::domain::ids::{Mrn, RecordId, RecordKind};

#[derive(Debug, Deserialize, JsonSchema)]
pub struct GetAllergiesArgs {
    #[schemars(with = "String", regex(pattern = MRN_PATTERN))]
    pub mrn: Mrn,
    /// Only allergies with this status (default "active"); "all" for every status.
    #[schemars(extend("enum" = ["active", "inactive", "resolved", "all"]))]
    pub status: Option<String>,
}

impl ToolArgs for GetAllergiesArgs {
    fn validate(&self) -> Result<(), ToolError> {
        status_filter(
            self.status.as_deref(),
            Some(AllergyStatus::Active),
            AllergyStatus::parse,
        )
        .map(|_| ())
    }

    fn patient(&self) -> Option<&Mrn> {
        Some(&self.mrn)
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct AddAllergyArgs {
    #[schemars(with = "String", regex(pattern = MRN_PATTERN))]
    pub mrn: Mrn,
    /// What the patient reacts to, e.g. "Penicillin".
    #[schemars(length(min = 1, max = 200))]
    pub allergen: String,
    /// The reaction, e.g. "Hives".
    #[schemars(length(max = 500))]
    pub reaction: Option<String>,
    /// mild, moderate, severe or life_threatening.
    #[schemars(extend("enum" = ["mild", "moderate", "severe", "life_threatening"]))]
    pub severity: String,
    /// When it started, YYYY-MM-DD.
    #[schemars(regex(pattern = DATE_PATTERN), extend("format" = "date"))]
    pub onset_date: Option<String>,
    #[schemars(length(max = 1000))]
    pub notes: Option<String>,
}

impl ToolArgs for AddAllergyArgs {
    fn validate(&self) -> Result<(), ToolError> {
        required_text("allergen", &self.allergen, 200)?;
        optional_text("reaction", self.reaction.as_deref(), 500)?;
        AllergySeverity::parse(&self.severity)?;
        if let Some(onset) = &self.onset_date {
            if iso_date("onset_date", onset)? > chrono::Utc::now().date_naive() {
                return Err(ToolError::invalid(
                    "onset_date",
                    "must not be in the future",
                ));
            }
        }
        optional_text("notes", self.notes.as_deref(), 1000).map(|_| ())
    }

    fn patient(&self) -> Option<&Mrn> {
        Some(&self.mrn)
    }
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct AllergiesResult {
    pub status: Success,
    pub mrn: String,
    pub count: usize,
    pub allergies: Vec<AllergyWire>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct AllergyResult {
    pub status: Success,
    pub message: String,
    pub allergy: AllergyWire,
}

#[tool_router(router = allergy_tools, vis = "pub(crate)")]
impl EhrServer {
    #[tool(
        title = "Get allergies",
        description = "List a patient's allergies (allergen, reaction, severity, onset, status): the active \
                       ones unless you pass another status, or \"all\". Check this before prescribing.",
        input_schema = args::input_schema::<GetAllergiesArgs>(),
        output_schema = args::output_schema::<AllergiesResult>(),
        annotations(read_only_hint = true, destructive_hint = false, idempotent_hint = true, open_world_hint = false)
    )]
    async fn get_allergies(
        &self,
        context: RequestContext<RoleServer>,
        arguments: JsonObject,
    ) -> CallToolResult {
        run_tool!(self, Tool::GetAllergies, context, arguments, get_allergies)
    }

    #[tool(
        title = "Add allergy",
        description = "Record a new allergy for a patient: allergen, severity (mild, moderate, severe, \
                       life_threatening), optional reaction, onset_date (YYYY-MM-DD) and notes.",
        input_schema = args::input_schema::<AddAllergyArgs>(),
        output_schema = args::output_schema::<AllergyResult>(),
        annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = false, open_world_hint = false)
    )]
    async fn add_allergy(
        &self,
        context: RequestContext<RoleServer>,
        arguments: JsonObject,
    ) -> CallToolResult {
        run_tool!(self, Tool::AddAllergy, context, arguments, add_allergy)
    }
}

async fn get_allergies(
    call: &ToolCall<'_>,
    args: GetAllergiesArgs,
) -> Result<AllergiesResult, ToolError> {
    let status = status_filter(
        args.status.as_deref(),
        Some(AllergyStatus::Active),
        AllergyStatus::parse,
    )?;
    let allergies = call
        .store()
        .allergies(&args.mrn, status)
        .await
        .map_err(|e| call.store_error(e))?;
    Ok(AllergiesResult {
        status: Success::Success,
        mrn: args.mrn.to_string(),
        count: allergies.len(),
        allergies: wire::all(&allergies),
    })
}

async fn add_allergy(
    call: &ToolCall<'_>,
    args: AddAllergyArgs,
) -> Result<AllergyResult, ToolError> {
    let allergy = Allergy {
        allergy_id: RecordId::generate(RecordKind::Allergy),
        patient_mrn: args.mrn.clone(),
        allergen: required_text("allergen", &args.allergen, 200)?,
        reaction: optional_text("reaction", args.reaction.as_deref(), 500)?,
        severity: AllergySeverity::parse(&args.severity)?,
        onset_date: args
            .onset_date
            .as_deref()
            .map(|onset| iso_date("onset_date", onset).map(crate::domain::time::format_date))
            .transpose()?,
        status: AllergyStatus::Active,
        notes: optional_text("notes", args.notes.as_deref(), 1000)?,
    };
    let stored = allergy.clone();
    call.write(
        Some(format!("allergy_id={}", allergy.allergy_id)),
        move |conn| {
            Box::pin(async move { crate::store::allergies::insert_allergy(conn, &stored).await })
        },
    )
    .await?;
    Ok(AllergyResult {
        status: Success::Success,
        message: format!("allergy to {} recorded", allergy.allergen),
        allergy: AllergyWire::from(&allergy),
    })
}
