//! Allergy tools: `get_allergies`, `add_allergy`.

use rmcp::model::{CallToolResult, JsonObject};
use rmcp::service::RequestContext;
use rmcp::{RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::EhrServer;
use super::args::{self, MRN_PATTERN, StatusFilter, ToolArgs};
use super::call::{ToolCall, run_tool};
use super::error::ToolError;
use super::wire::{self, AllergyWire, Success};
use crate::auth::Tool;
use crate::domain::clinical::{Allergy, AllergySeverity, AllergyStatus};
use crate::domain::ids::{Mrn, RecordId, RecordKind};
use crate::domain::text::Text;
use crate::domain::text::field::{Label, Note, Reason};
use crate::domain::time::Date;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct GetAllergiesArgs {
    #[schemars(with = "String", regex(pattern = MRN_PATTERN))]
    pub mrn: Mrn,
    /// Only allergies with this status (default "active"); "all" for every status.
    pub status: Option<StatusFilter<AllergyStatus>>,
}

impl ToolArgs for GetAllergiesArgs {
    fn patient(&self) -> Option<&Mrn> {
        Some(&self.mrn)
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct AddAllergyArgs {
    #[schemars(with = "String", regex(pattern = MRN_PATTERN))]
    pub mrn: Mrn,
    /// What the patient reacts to, e.g. "Penicillin".
    pub allergen: Label,
    /// The reaction, e.g. "Hives".
    pub reaction: Option<Reason>,
    /// mild, moderate, severe or life_threatening.
    pub severity: AllergySeverity,
    /// When it started, YYYY-MM-DD, not in the future.
    pub onset_date: Option<Date>,
    pub notes: Option<Note>,
}

impl ToolArgs for AddAllergyArgs {
    fn validate(&self) -> Result<(), ToolError> {
        if let Some(onset) = self.onset_date {
            onset.not_after("onset_date", Date::today())?;
        }
        Ok(())
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
    let status = StatusFilter::resolve(args.status, Some(AllergyStatus::Active));
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
        allergen: args.allergen.into_string(),
        reaction: args.reaction.map(Text::into_string),
        severity: args.severity,
        onset_date: args.onset_date,
        status: AllergyStatus::Active,
        notes: args.notes.map(Text::into_string),
    };
    let stored = allergy.clone();
    call.write(
        Some(format!("allergy_id={}", allergy.allergy_id)),
        move |mut tx| {
            Box::pin(async move { crate::store::allergies::insert_allergy(&mut tx, &stored).await })
        },
    )
    .await?;
    Ok(AllergyResult {
        status: Success::Success,
        message: format!("allergy to {} recorded", allergy.allergen),
        allergy: AllergyWire::from(&allergy),
    })
}
