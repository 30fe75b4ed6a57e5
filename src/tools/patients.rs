//! Patient tools: `get_patient`, `search_patients`, `create_patient`, `update_patient`.

use rmcp::model::{CallToolResult, JsonObject};
use rmcp::service::RequestContext;
use rmcp::{RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::EhrServer;
use super::args::{self, MRN_PATTERN, ToolArgs};
use super::call::{ToolCall, run_tool};
use super::demographics::{Demographics, check_birth_date, generated_mrn};
use super::error::ToolError;
use super::wire::{PatientWire, SearchStatus, Success};
use crate::auth::Tool;
use crate::domain::clinical::{Patient, PatientUpdate};
use crate::domain::ids::Mrn;
use crate::domain::text::Text;
use crate::domain::text::field::Name;
use crate::domain::time::Date;
use crate::store::patients::PatientSearch;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct GetPatientArgs {
    /// Medical record number, e.g. MRN001.
    #[schemars(with = "String", regex(pattern = MRN_PATTERN))]
    pub mrn: Mrn,
}

impl ToolArgs for GetPatientArgs {
    fn patient(&self) -> Option<&Mrn> {
        Some(&self.mrn)
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SearchPatientsArgs {
    /// Name (first, last or both, any order, partial, case-insensitive), MRN, or date of birth (YYYY-MM-DD).
    pub search_term: Text<100>,
    /// Most patients to return (1-100, default 20).
    #[schemars(range(min = 1, max = 100))]
    pub limit: Option<u32>,
    /// `next_cursor` from the previous page, to get the next one.
    #[schemars(length(max = 512))]
    pub cursor: Option<String>,
}

impl ToolArgs for SearchPatientsArgs {
    fn validate(&self) -> Result<(), ToolError> {
        args::in_range("limit", self.limit, 1, 100, "patients")
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct CreatePatientArgs {
    /// The new patient's MRN; generated when omitted.
    #[schemars(with = "Option<String>", regex(pattern = MRN_PATTERN))]
    pub mrn: Option<Mrn>,
    pub first_name: Name,
    pub last_name: Name,
    /// Date of birth, YYYY-MM-DD, not in the future.
    pub dob: Date,
    #[serde(flatten)]
    pub demographics: Demographics,
}

impl ToolArgs for CreatePatientArgs {
    fn validate(&self) -> Result<(), ToolError> {
        check_birth_date(self.dob).map(|_| ())
    }

    fn patient(&self) -> Option<&Mrn> {
        self.mrn.as_ref()
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct UpdatePatientArgs {
    /// The patient to change.
    #[schemars(with = "String", regex(pattern = MRN_PATTERN))]
    pub mrn: Mrn,
    pub first_name: Option<Name>,
    pub last_name: Option<Name>,
    /// Date of birth, YYYY-MM-DD, not in the future.
    pub dob: Option<Date>,
    #[serde(flatten)]
    pub demographics: Demographics,
}

impl ToolArgs for UpdatePatientArgs {
    fn validate(&self) -> Result<(), ToolError> {
        self.dob.map(check_birth_date).transpose().map(|_| ())
    }

    fn patient(&self) -> Option<&Mrn> {
        Some(&self.mrn)
    }
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct PatientResult {
    pub status: Success,
    pub patient: PatientWire,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct PatientChangeResult {
    pub status: Success,
    pub message: String,
    pub patient: PatientWire,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct PatientListResult {
    /// `not_found` when no patient matched.
    pub status: SearchStatus,
    pub count: usize,
    pub patients: Vec<PatientWire>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    /// Says so when nothing matched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// What to try when nothing matched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suggestion: Option<String>,
}

#[tool_router(router = patient_tools, vis = "pub(crate)")]
impl EhrServer {
    #[tool(
        title = "Get patient",
        description = "Get one patient's demographics (name, date of birth, gender, contact, address, insurance, \
                       emergency contact; SSN masked) by MRN. Use search_patients first if you only know a name.",
        input_schema = args::input_schema::<GetPatientArgs>(),
        output_schema = args::output_schema::<PatientResult>(),
        annotations(read_only_hint = true, destructive_hint = false, idempotent_hint = true, open_world_hint = false)
    )]
    async fn get_patient(
        &self,
        context: RequestContext<RoleServer>,
        arguments: JsonObject,
    ) -> CallToolResult {
        run_tool!(self, Tool::GetPatient, context, arguments, get_patient)
    }

    #[tool(
        title = "Search patients",
        description = "Find patients by name (first and/or last, either order, partial, case-insensitive), by MRN \
                       or by date of birth (YYYY-MM-DD). Returns up to `limit` patients and a `next_cursor` when \
                       more match; when none matches, status is \"not_found\" with an empty list.",
        input_schema = args::input_schema::<SearchPatientsArgs>(),
        output_schema = args::output_schema::<PatientListResult>(),
        annotations(read_only_hint = true, destructive_hint = false, idempotent_hint = true, open_world_hint = false)
    )]
    async fn search_patients(
        &self,
        context: RequestContext<RoleServer>,
        arguments: JsonObject,
    ) -> CallToolResult {
        run_tool!(
            self,
            Tool::SearchPatients,
            context,
            arguments,
            search_patients
        )
    }

    #[tool(
        title = "Create patient",
        description = "Register a new patient with first_name, last_name and dob (YYYY-MM-DD), plus optional \
                       gender, contact, address, insurance and emergency contact. The MRN is generated unless \
                       given; a taken MRN is a conflict.",
        input_schema = args::input_schema::<CreatePatientArgs>(),
        output_schema = args::output_schema::<PatientChangeResult>(),
        annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = false, open_world_hint = false)
    )]
    async fn create_patient(
        &self,
        context: RequestContext<RoleServer>,
        arguments: JsonObject,
    ) -> CallToolResult {
        run_tool!(
            self,
            Tool::CreatePatient,
            context,
            arguments,
            create_patient
        )
    }

    #[tool(
        title = "Update patient demographics",
        description = "Change a patient's demographics: only the fields you pass change, the rest stay as they \
                       are. Returns the patient as stored afterwards.",
        input_schema = args::input_schema::<UpdatePatientArgs>(),
        output_schema = args::output_schema::<PatientChangeResult>(),
        annotations(read_only_hint = false, destructive_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    async fn update_patient(
        &self,
        context: RequestContext<RoleServer>,
        arguments: JsonObject,
    ) -> CallToolResult {
        run_tool!(
            self,
            Tool::UpdatePatient,
            context,
            arguments,
            update_patient
        )
    }
}

async fn get_patient(
    call: &ToolCall<'_>,
    args: GetPatientArgs,
) -> Result<PatientResult, ToolError> {
    let patient = call
        .store()
        .patient(&args.mrn)
        .await
        .map_err(|e| call.store_error(e))?;
    Ok(PatientResult {
        status: Success::Success,
        patient: PatientWire::from(&patient),
    })
}

async fn search_patients(
    call: &ToolCall<'_>,
    args: SearchPatientsArgs,
) -> Result<PatientListResult, ToolError> {
    let search = PatientSearch {
        term: args.search_term.into_string(),
        limit: args.limit.unwrap_or(20),
        cursor: args.cursor,
    };
    let page = call
        .store()
        .search_patients(&search)
        .await
        .map_err(|e| call.store_error(e))?;
    // A caller bound to one patient sees only what the policy lets it see.
    let patients: Vec<PatientWire> = page
        .patients
        .iter()
        .filter(|patient| call.may_see(&patient.mrn))
        .map(PatientWire::from)
        .collect();
    let none = patients.is_empty();
    Ok(PatientListResult {
        status: if none {
            SearchStatus::NotFound
        } else {
            SearchStatus::Success
        },
        count: patients.len(),
        patients,
        next_cursor: page.next_cursor,
        message: none.then(|| "no patients match this search".to_owned()),
        suggestion: none.then(|| {
            "Try searching with just first or last name, the MRN, or the date of birth \
             (YYYY-MM-DD), or verify the spelling."
                .to_owned()
        }),
    })
}

async fn create_patient(
    call: &ToolCall<'_>,
    args: CreatePatientArgs,
) -> Result<PatientChangeResult, ToolError> {
    let details = PatientUpdate::from(args.demographics);
    let mrn = match args.mrn {
        Some(mrn) => mrn,
        None => generated_mrn()?,
    };
    let patient = Patient {
        mrn: mrn.clone(),
        first_name: args.first_name.into_string(),
        last_name: args.last_name.into_string(),
        dob: args.dob,
        gender: details.gender,
        ssn: None,
        email: details.email,
        phone: details.phone,
        street: details.street,
        city: details.city,
        state: details.state,
        zip_code: details.zip_code,
        insurance_provider: details.insurance_provider,
        policy_number: details.policy_number,
        group_number: details.group_number,
        emergency_contact_name: details.emergency_contact_name,
        emergency_contact_relationship: details.emergency_contact_relationship,
        emergency_contact_phone: details.emergency_contact_phone,
    };
    let stored = patient.clone();
    call.write(Some(format!("mrn={mrn}")), move |mut tx| {
        Box::pin(async move { crate::store::patients::insert_patient(&mut tx, &stored).await })
    })
    .await?;
    Ok(PatientChangeResult {
        status: Success::Success,
        message: format!("patient {mrn} created"),
        patient: PatientWire::from(&patient),
    })
}

async fn update_patient(
    call: &ToolCall<'_>,
    args: UpdatePatientArgs,
) -> Result<PatientChangeResult, ToolError> {
    let update = PatientUpdate {
        first_name: args.first_name.map(Text::into_string),
        last_name: args.last_name.map(Text::into_string),
        dob: args.dob,
        ..PatientUpdate::from(args.demographics)
    };
    if update == PatientUpdate::default() {
        return Err(ToolError::InvalidInput(
            "nothing to update: pass at least one demographic field".to_owned(),
        ));
    }
    let mrn = args.mrn;
    let target = mrn.clone();
    let patient = call
        .write(None, move |mut tx| {
            Box::pin(async move {
                crate::store::patients::update_patient(&mut tx, &target, &update).await
            })
        })
        .await?;
    Ok(PatientChangeResult {
        status: Success::Success,
        message: format!("patient {mrn} updated"),
        patient: PatientWire::from(&patient),
    })
}
