//! The FHIR reads: the MCP tools `fhir_read` and `fhir_search`, and [`EhrServer::fhir`], the entry the
//! `/fhir/r4/` HTTP API calls. Both run the one tool lifecycle of `call.rs` (identity, rate limit, policy,
//! one audit row before data leaves) and the same code below; only the links' base differs (absolute
//! for HTTP, relative for MCP).
//!
//! Invariants: every resource is authorised by its kind and its patient (`auth::policy::authorize_read`);
//! a patient client's searches are confined to its own compartment (`auth::policy::compartment`); a
//! search of several kinds (Observation without a category, `$everything`) returns only the kinds the
//! caller may read.

use std::collections::BTreeMap;

use rmcp::model::{CallToolResult, JsonObject};
use rmcp::service::RequestContext;
use rmcp::{RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::EhrServer;
use super::args::{self, ToolArgs};
use super::call::{ToolCall, run_tool};
use super::error::ToolError;
use super::session::BearerPrincipal;
use crate::auth::policy::{authorize_read, compartment};
use crate::auth::{DataKind, Tool};
use crate::domain::ids::{Mrn, Npi, RecordId};
use crate::fhir::search::{
    self, Criteria, ObservationCategory, Paging, ResourceType, Search, SearchError,
};
use crate::fhir::{self as mapping, Resource};
use crate::store::audit::AuditSearch;
use crate::store::fhir::{AppointmentQuery, PatientQuery, ProviderQuery, Stamped, Window};

/// One request to the FHIR API, as the HTTP layer parsed it.
#[derive(Debug, Clone)]
pub enum FhirRequest {
    /// `GET {type}/{id}`.
    Read { resource_type: String, id: String },
    /// `GET {type}?params`.
    Search {
        resource_type: String,
        params: Vec<(String, String)>,
    },
    /// `GET Patient/{id}/$everything?params`.
    Everything {
        id: String,
        params: Vec<(String, String)>,
    },
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct FhirReadArgs {
    /// Patient, Coverage, Practitioner, Appointment, MedicationRequest, AllergyIntolerance, Observation,
    /// DiagnosticReport or (admins) AuditEvent.
    #[schemars(length(max = 64))]
    pub resource_type: String,
    /// The logical id: an MRN for Patient, an NPI for Practitioner, `audit-{seq}` for AuditEvent, the
    /// record id otherwise.
    #[schemars(length(max = 80))]
    pub id: String,
}

impl ToolArgs for FhirReadArgs {}

/// A search parameter's value, or several (a `date` bounding both ends).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ParamValues {
    One(String),
    /// A number (`"_count": 50`), read as its text.
    Number(serde_json::Number),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct FhirSearchArgs {
    /// Patient, Practitioner, Observation, DiagnosticReport, MedicationRequest, AllergyIntolerance,
    /// Appointment or (admins) AuditEvent.
    #[schemars(length(max = 64))]
    pub resource_type: String,
    /// FHIR search parameters by name, e.g. {"patient": "MRN001", "category": "vital-signs",
    /// "date": ["ge2024-01-01", "lt2025-01-01"], "_count": "20", "_offset": "20"}. The `next` link of a
    /// result bundle holds the parameters of the next page.
    #[serde(default)]
    pub params: BTreeMap<String, ParamValues>,
    /// `$everything` (with resource_type Patient and `id`): the patient's whole record.
    pub operation: Option<String>,
    /// The patient's MRN, for `$everything`.
    #[schemars(length(max = 80))]
    pub id: Option<String>,
}

impl ToolArgs for FhirSearchArgs {
    fn validate(&self) -> Result<(), ToolError> {
        let values: usize = self
            .params
            .values()
            .map(|values| match values {
                ParamValues::One(_) | ParamValues::Number(_) => 1,
                ParamValues::Many(many) => many.len(),
            })
            .sum();
        if values > 32 {
            return Err(ToolError::invalid("params", "at most 32 values"));
        }
        match (self.operation.as_deref(), &self.id) {
            (None, None) => Ok(()),
            (Some("$everything"), Some(_)) if self.resource_type == "Patient" => Ok(()),
            (Some("$everything"), Some(_)) => Err(ToolError::invalid(
                "resource_type",
                "$everything is an operation on Patient",
            )),
            (Some("$everything"), None) => Err(ToolError::invalid(
                "id",
                "required with operation $everything",
            )),
            (None, Some(_)) => Err(ToolError::invalid(
                "id",
                "only with operation $everything; a search takes its criteria in params",
            )),
            (Some(_), _) => Err(ToolError::invalid(
                "operation",
                "the only operation is $everything",
            )),
        }
    }
}

/// A FHIR resource or Bundle, as JSON.
#[derive(Debug, Serialize)]
#[serde(transparent)]
pub struct FhirJson(pub Value);

impl JsonSchema for FhirJson {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "FhirResource".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "object",
            "description": "A FHIR R4 resource (a searchset Bundle for a search)",
            "properties": { "resourceType": { "type": "string" } },
            "required": ["resourceType"],
        })
    }
}

impl FhirSearchArgs {
    fn pairs(&self) -> Vec<(String, String)> {
        let mut pairs = Vec::new();
        for (name, values) in &self.params {
            match values {
                ParamValues::One(value) => pairs.push((name.clone(), value.clone())),
                ParamValues::Number(number) => pairs.push((name.clone(), number.to_string())),
                ParamValues::Many(values) => {
                    pairs.extend(values.iter().map(|value| (name.clone(), value.clone())))
                }
            }
        }
        pairs
    }
}

#[tool_router(router = fhir_tools, vis = "pub(crate)")]
impl EhrServer {
    #[tool(
        title = "Read a FHIR resource",
        description = "Read one record as a FHIR R4 resource: Patient/{MRN}, Coverage/{MRN}-coverage, \
                       Practitioner/{NPI}, Appointment, MedicationRequest, AllergyIntolerance, \
                       DiagnosticReport/{order id}, Observation/{vital id}-{bp|hr|temp|rr|spo2|wt|ht|bmi}, \
                       Observation/{order id}-{n} or (admins) AuditEvent/audit-{seq}. The resource is in \
                       structuredContent.",
        input_schema = args::input_schema::<FhirReadArgs>(),
        output_schema = args::output_schema::<FhirJson>(),
        annotations(read_only_hint = true, destructive_hint = false, idempotent_hint = true, open_world_hint = false)
    )]
    async fn fhir_read(
        &self,
        context: RequestContext<RoleServer>,
        arguments: JsonObject,
    ) -> CallToolResult {
        run_tool!(self, Tool::FhirRead, context, arguments, mcp_read)
    }

    #[tool(
        title = "Search FHIR resources",
        description = "Search records as FHIR R4 resources; the result is a searchset Bundle (total, entries, \
                       a `next` link while more pages follow) in structuredContent. Patient: identifier, name, \
                       family, given, birthdate. Practitioner: identifier, name. Observation: patient, category \
                       (vital-signs|laboratory), code, date. DiagnosticReport, AllergyIntolerance: patient. \
                       MedicationRequest: patient, status. Appointment: patient or practitioner, date, status. \
                       AuditEvent (admins): patient, date, agent (client id), subtype (tool), outcome. \
                       Dates take prefixes ge/gt/le/lt. Pages: _count (0-100, default 20) and _offset. \
                       operation \"$everything\" with resource_type Patient and id (MRN): the whole record.",
        input_schema = args::input_schema::<FhirSearchArgs>(),
        output_schema = args::output_schema::<FhirJson>(),
        annotations(read_only_hint = true, destructive_hint = false, idempotent_hint = true, open_world_hint = false)
    )]
    async fn fhir_search(
        &self,
        context: RequestContext<RoleServer>,
        arguments: JsonObject,
    ) -> CallToolResult {
        run_tool!(self, Tool::FhirSearch, context, arguments, mcp_search)
    }
}

impl EhrServer {
    /// The FHIR HTTP API's one entry: the request runs the same lifecycle as a tool call (`fhir_read`
    /// or `fhir_search`: identity from `bearer`, rate limit, policy, one audit row). `base` is the
    /// absolute FHIR base URL for the Bundle links.
    pub async fn fhir(
        &self,
        bearer: Option<BearerPrincipal>,
        request: FhirRequest,
        base: &str,
    ) -> Result<Value, ToolError> {
        let text = |value: String| Value::String(value);
        let mut arguments = JsonObject::new();
        let params = match request {
            FhirRequest::Read { resource_type, id } => {
                arguments.insert("resource_type".into(), text(resource_type));
                arguments.insert("id".into(), text(id));
                let (call, args) = self
                    .begin_as::<FhirReadArgs>(Tool::FhirRead, bearer, arguments)
                    .await?;
                let outcome = read(&call, &args.resource_type, &args.id).await;
                return self.finish_as(call, outcome).await;
            }
            FhirRequest::Search {
                resource_type,
                params,
            } => {
                arguments.insert("resource_type".into(), text(resource_type));
                params
            }
            FhirRequest::Everything { id, params } => {
                arguments.insert("resource_type".into(), text("Patient".to_owned()));
                arguments.insert("operation".into(), text("$everything".to_owned()));
                arguments.insert("id".into(), text(id));
                params
            }
        };
        arguments.insert("params".into(), params_object(params));
        let (call, args) = self
            .begin_as::<FhirSearchArgs>(Tool::FhirSearch, bearer, arguments)
            .await?;
        let outcome = search_with(&call, &args, base).await;
        self.finish_as(call, outcome).await
    }
}

/// Query pairs as the `params` argument: one value as a string, a repeated name as a list.
fn params_object(params: Vec<(String, String)>) -> Value {
    let mut object = serde_json::Map::new();
    for (name, value) in params {
        match object.get_mut(&name) {
            None => {
                object.insert(name, Value::String(value));
            }
            Some(Value::Array(values)) => values.push(Value::String(value)),
            Some(first) => {
                let first = first.take();
                object.insert(name, Value::Array(vec![first, Value::String(value)]));
            }
        }
    }
    Value::Object(object)
}

async fn mcp_read(call: &ToolCall<'_>, args: FhirReadArgs) -> Result<FhirJson, ToolError> {
    read(call, &args.resource_type, &args.id)
        .await
        .map(FhirJson)
}

async fn mcp_search(call: &ToolCall<'_>, args: FhirSearchArgs) -> Result<FhirJson, ToolError> {
    search_with(call, &args, "").await.map(FhirJson)
}

/// A search or `$everything` from the tool's arguments, with links under `base`.
async fn search_with(
    call: &ToolCall<'_>,
    args: &FhirSearchArgs,
    base: &str,
) -> Result<Value, ToolError> {
    let search = match (&args.operation, &args.id) {
        (Some(_), Some(id)) => search::parse_everything(id, &args.pairs()),
        _ => {
            let resource_type = resource_type_of(&args.resource_type)?;
            search::parse_search(resource_type, &args.pairs())
        }
    }
    .map_err(invalid)?;
    run_search(call, search, base).await
}

fn invalid(error: SearchError) -> ToolError {
    ToolError::InvalidInput(error.message)
}

fn resource_type_of(name: &str) -> Result<ResourceType, ToolError> {
    ResourceType::parse(name).ok_or_else(|| {
        let names: Vec<&str> = ResourceType::ALL.iter().map(|t| t.as_str()).collect();
        ToolError::NotFound(format!(
            "this server serves the resource types {}",
            names.join(", ")
        ))
    })
}

/// The kind of data a resource type carries (Observation: per category).
fn kind_of(resource_type: ResourceType, category: Option<ObservationCategory>) -> DataKind {
    match resource_type {
        ResourceType::Patient | ResourceType::Coverage => DataKind::Demographics,
        ResourceType::Practitioner => DataKind::Providers,
        ResourceType::Appointment => DataKind::Appointments,
        ResourceType::MedicationRequest => DataKind::Medications,
        ResourceType::AllergyIntolerance => DataKind::Allergies,
        ResourceType::DiagnosticReport => DataKind::LabResults,
        ResourceType::Observation => match category {
            Some(ObservationCategory::VitalSigns) => DataKind::VitalSigns,
            _ => DataKind::LabResults,
        },
        ResourceType::AuditEvent => DataKind::Audit,
    }
}

impl ToolCall<'_> {
    /// The policy's answer for reading `kind` about `patient` in this call.
    fn may_read(&self, kind: DataKind, patient: Option<&Mrn>) -> Result<(), ToolError> {
        authorize_read(&self.principal, self.tool, kind, patient)
            .map_err(|error| ToolError::from_auth(&self.request_id, error))
    }

    /// Reads one record of `kind`: the scope check first (no database read without it), then the
    /// record, then its patient.
    async fn read_record<T, F>(
        &self,
        kind: DataKind,
        load: F,
        patient_of: impl Fn(&T) -> Option<&Mrn>,
    ) -> Result<Stamped<T>, ToolError>
    where
        F: std::future::Future<Output = Result<Stamped<T>, crate::store::StoreError>>,
    {
        self.may_read(kind, compartment(&self.principal))?;
        let stamped = load.await.map_err(|error| self.store_error(error))?;
        let patient = patient_of(&stamped.record);
        if let Some(mrn) = patient {
            self.concerns(mrn);
        }
        self.may_read(kind, patient)?;
        Ok(stamped)
    }
}

fn not_found(resource_type: ResourceType, id: &str) -> ToolError {
    let shown: String = id.chars().filter(char::is_ascii_graphic).take(80).collect();
    ToolError::NotFound(format!("{}/{shown} not found", resource_type.as_str()))
}

/// `GET {type}/{id}`.
async fn read(call: &ToolCall<'_>, resource_type: &str, id: &str) -> Result<Value, ToolError> {
    let resource_type = resource_type_of(resource_type)?;
    call.describe(format!("read {}", resource_type.as_str()));
    let missing = || not_found(resource_type, id);
    let record_id = search::parse_id(id).map_err(|_| missing())?;
    let store = call.store();
    let kind = kind_of(resource_type, None);
    match resource_type {
        ResourceType::Patient => {
            let mrn = Mrn::parse(id).map_err(|_| missing())?;
            let patient = call
                .read_record(kind, store.stamped_patient(&mrn), |p| Some(&p.mrn))
                .await?;
            Ok(mapping::patient(&patient.record, patient.last_updated))
        }
        ResourceType::Coverage => {
            let mrn = id
                .strip_suffix("-coverage")
                .and_then(|mrn| Mrn::parse(mrn).ok())
                .ok_or_else(missing)?;
            let patient = call
                .read_record(kind, store.stamped_patient(&mrn), |p| Some(&p.mrn))
                .await?;
            mapping::coverage(&patient.record, patient.last_updated).ok_or_else(missing)
        }
        ResourceType::Practitioner => {
            let npi = Npi::parse(id).map_err(|_| missing())?;
            let provider = call
                .read_record(kind, store.stamped_provider(&npi), |_| None)
                .await?;
            Ok(mapping::practitioner(
                &provider.record,
                provider.last_updated,
            ))
        }
        ResourceType::Appointment => {
            let found = call
                .read_record(kind, store.stamped_appointment(&record_id), |a| {
                    Some(&a.patient_mrn)
                })
                .await?;
            Ok(mapping::appointment(&found.record, found.last_updated))
        }
        ResourceType::MedicationRequest => {
            let found = call
                .read_record(kind, store.stamped_medication(&record_id), |m| {
                    Some(&m.patient_mrn)
                })
                .await?;
            Ok(mapping::medication_request(
                &found.record,
                found.last_updated,
            ))
        }
        ResourceType::AllergyIntolerance => {
            let found = call
                .read_record(kind, store.stamped_allergy(&record_id), |a| {
                    Some(&a.patient_mrn)
                })
                .await?;
            Ok(mapping::allergy_intolerance(
                &found.record,
                found.last_updated,
            ))
        }
        ResourceType::DiagnosticReport => {
            let found = call
                .read_record(kind, store.stamped_lab_result(&record_id), |l| {
                    Some(&l.patient_mrn)
                })
                .await?;
            Ok(mapping::diagnostic_report(
                &found.record,
                found.last_updated,
            ))
        }
        ResourceType::Observation => read_observation(call, id).await?.ok_or_else(missing),
        ResourceType::AuditEvent => {
            // The policy first: no audit row is read for a caller who may not see the log.
            call.may_read(kind, None)?;
            let seq = search::audit_seq(id).ok_or_else(missing)?;
            let record = store
                .audit_record(seq)
                .await
                .map_err(|error| call.store_error(error))?
                .ok_or_else(missing)?;
            Ok(mapping::audit_event(&record))
        }
    }
}

/// `Observation/{vital id}-{suffix}` (vital signs) or `Observation/{order id}-{n}` (a lab component).
async fn read_observation(call: &ToolCall<'_>, id: &str) -> Result<Option<Value>, ToolError> {
    let Some((record, suffix)) = id.rsplit_once('-') else {
        return Ok(None);
    };
    let Ok(record_id) = RecordId::parse("id", record) else {
        return Ok(None);
    };
    let store = call.store();
    let resources = if suffix.bytes().all(|b| b.is_ascii_digit()) {
        let kind = kind_of(
            ResourceType::Observation,
            Some(ObservationCategory::Laboratory),
        );
        let lab = call
            .read_record(kind, store.stamped_lab_result(&record_id), |l| {
                Some(&l.patient_mrn)
            })
            .await;
        match lab {
            Ok(lab) => mapping::lab_observations(&lab.record, lab.last_updated),
            Err(ToolError::NotFound(_)) => return Ok(None),
            Err(other) => return Err(other),
        }
    } else {
        let kind = kind_of(
            ResourceType::Observation,
            Some(ObservationCategory::VitalSigns),
        );
        let vitals = call
            .read_record(kind, store.stamped_vital_signs(&record_id), |v| {
                Some(&v.patient_mrn)
            })
            .await;
        match vitals {
            Ok(vitals) => mapping::vital_sign_observations(&vitals.record, vitals.last_updated),
            Err(ToolError::NotFound(_)) => return Ok(None),
            Err(other) => return Err(other),
        }
    };
    Ok(resources
        .into_iter()
        .find(|resource| resource["id"].as_str() == Some(id)))
}

/// A search: confined to the caller's compartment, authorised per kind, run, paged, as a Bundle.
async fn run_search(
    call: &ToolCall<'_>,
    mut search: Search,
    base: &str,
) -> Result<Value, ToolError> {
    let detail = match search.criteria {
        Criteria::Everything { .. } => "Patient/$everything".to_owned(),
        _ => format!("search {}", search.resource_type.as_str()),
    };
    call.describe(detail);
    if let Some(own) = compartment(&call.principal) {
        if !search.criteria.confine_to(own) {
            return Err(ToolError::Forbidden(
                "patient clients may only access their own records".to_owned(),
            ));
        }
    }
    if let Some(mrn) = search.criteria.patient() {
        call.concerns(mrn);
    }
    let (total, resources) = find(call, &search).await?;
    let link = |offset: u32| match &search.criteria {
        Criteria::Everything { patient } => format!(
            "{}Patient/{}/$everything?{}",
            prefix(base),
            patient.as_str(),
            search.page_query(offset)
        ),
        _ => format!(
            "{}{}?{}",
            prefix(base),
            search.resource_type.as_str(),
            search.page_query(offset)
        ),
    };
    let Paging { count, offset } = search.paging;
    let next_offset = u64::from(offset) + u64::from(count);
    let next = (count > 0 && next_offset < total)
        .then(|| u32::try_from(next_offset).ok())
        .flatten()
        .filter(|next| *next <= search::MAX_OFFSET)
        .map(link);
    Ok(mapping::searchset(
        base,
        usize::try_from(total).unwrap_or(usize::MAX),
        resources,
        &link(offset),
        next.as_deref(),
    ))
}

/// `{base}/` for an absolute base, nothing for relative links.
fn prefix(base: &str) -> String {
    if base.is_empty() {
        String::new()
    } else {
        format!("{base}/")
    }
}

fn window(paging: Paging) -> Window {
    Window {
        limit: paging.count,
        offset: paging.offset,
    }
}

/// The page of `resources` that `paging` asks for, and their total.
fn page(resources: Vec<Resource>, paging: Paging) -> (u64, Vec<Resource>) {
    let total = resources.len() as u64;
    let page = resources
        .into_iter()
        .skip(paging.offset as usize)
        .take(paging.count as usize)
        .collect();
    (total, page)
}

fn required(patient: Option<&Mrn>, resource_type: ResourceType) -> Result<&Mrn, ToolError> {
    patient.ok_or_else(|| {
        ToolError::invalid(
            "patient",
            format!("{} search needs a patient", resource_type.as_str()),
        )
    })
}

/// Runs a search's criteria: the total and this page's resources.
async fn find(call: &ToolCall<'_>, search: &Search) -> Result<(u64, Vec<Resource>), ToolError> {
    let store = call.store();
    let paging = search.paging;
    let stored = |error| call.store_error(error);
    let kind = |category| kind_of(search.resource_type, category);
    match &search.criteria {
        Criteria::Patient(criteria) => {
            call.may_read(kind(None), criteria.mrn.as_ref())?;
            let query = PatientQuery {
                mrn: criteria.mrn.clone(),
                name_prefix: criteria.name.clone(),
                family_prefix: criteria.family.clone(),
                given_prefix: criteria.given.clone(),
                born_from: criteria.birthdate.from,
                born_until: criteria.birthdate.until,
            };
            let found = store
                .search_stamped_patients(&query, window(paging))
                .await
                .map_err(stored)?;
            let resources = found
                .items
                .iter()
                .map(|p| mapping::patient(&p.record, p.last_updated))
                .collect();
            Ok((found.total, resources))
        }
        Criteria::Practitioner { npi, name } => {
            call.may_read(kind(None), None)?;
            let query = ProviderQuery {
                npi: npi.clone(),
                name_prefix: name.clone(),
            };
            let found = store
                .search_stamped_providers(&query, window(paging))
                .await
                .map_err(stored)?;
            let resources = found
                .items
                .iter()
                .map(|p| mapping::practitioner(&p.record, p.last_updated))
                .collect();
            Ok((found.total, resources))
        }
        Criteria::Appointment {
            patient,
            practitioner,
            date,
            statuses,
        } => {
            if patient.is_none() && practitioner.is_none() {
                return Err(ToolError::invalid(
                    "patient",
                    "Appointment search needs a patient or a practitioner",
                ));
            }
            call.may_read(kind(None), patient.as_ref())?;
            let query = AppointmentQuery {
                patient: patient.clone(),
                provider: practitioner.clone(),
                from: date.from,
                until: date.until,
                statuses: statuses.clone(),
            };
            let found = store
                .search_stamped_appointments(&query, window(paging))
                .await
                .map_err(stored)?;
            let resources = found
                .items
                .iter()
                .map(|a| mapping::appointment(&a.record, a.last_updated))
                .collect();
            Ok((found.total, resources))
        }
        Criteria::MedicationRequest { patient, statuses } => {
            let mrn = required(patient.as_ref(), search.resource_type)?;
            call.may_read(kind(None), Some(mrn))?;
            let records = store.patient_medications(mrn).await.map_err(stored)?;
            let resources = records
                .iter()
                .filter(|m| statuses.is_empty() || statuses.contains(&m.record.status))
                .map(|m| mapping::medication_request(&m.record, m.last_updated))
                .collect();
            Ok(page(resources, paging))
        }
        Criteria::AllergyIntolerance { patient } => {
            let mrn = required(patient.as_ref(), search.resource_type)?;
            call.may_read(kind(None), Some(mrn))?;
            let records = store.patient_allergies(mrn).await.map_err(stored)?;
            let resources = records
                .iter()
                .map(|a| mapping::allergy_intolerance(&a.record, a.last_updated))
                .collect();
            Ok(page(resources, paging))
        }
        Criteria::DiagnosticReport { patient } => {
            let mrn = required(patient.as_ref(), search.resource_type)?;
            call.may_read(kind(None), Some(mrn))?;
            let records = store.patient_lab_results(mrn).await.map_err(stored)?;
            let resources = records
                .iter()
                .map(|l| mapping::diagnostic_report(&l.record, l.last_updated))
                .collect();
            Ok(page(resources, paging))
        }
        Criteria::Observation {
            patient,
            categories,
            codes,
            date,
        } => {
            let mrn = required(patient.as_ref(), search.resource_type)?;
            let wanted = if categories.is_empty() {
                vec![
                    ObservationCategory::VitalSigns,
                    ObservationCategory::Laboratory,
                ]
            } else {
                categories.clone()
            };
            let readable = readable_categories(call, &wanted, mrn, categories.is_empty())?;
            let mut resources = Vec::new();
            for category in readable {
                resources.extend(observations(call, category, mrn).await?);
            }
            resources
                .retain(|resource| search::observation_matches(resource, categories, codes, date));
            Ok(page(resources, paging))
        }
        Criteria::Everything { patient } => everything(call, patient, paging).await,
        Criteria::AuditEvent {
            patient,
            agent,
            subtype,
            outcomes,
            date,
        } => {
            call.may_read(kind(None), None)?;
            let query = AuditSearch {
                client_id: agent.clone(),
                patient_mrn: patient.as_ref().map(|mrn| mrn.as_str().to_owned()),
                action: subtype.clone(),
                outcomes: outcomes.iter().map(|o| (*o).to_owned()).collect(),
                since: date.from.map(|day| day.format("%Y-%m-%d").to_string()),
                until: date.until.map(|day| day.format("%Y-%m-%d").to_string()),
            };
            let (total, records) = store
                .search_audit(&query, paging.count, paging.offset)
                .await
                .map_err(stored)?;
            Ok((total, records.iter().map(mapping::audit_event).collect()))
        }
    }
}

/// The categories of `wanted` the caller may read. Asked for explicitly, each must be readable; left
/// open (no `category`), the readable ones, and at least one.
fn readable_categories(
    call: &ToolCall<'_>,
    wanted: &[ObservationCategory],
    mrn: &Mrn,
    open: bool,
) -> Result<Vec<ObservationCategory>, ToolError> {
    let mut readable = Vec::new();
    let mut refused = None;
    for category in wanted {
        match call.may_read(
            kind_of(ResourceType::Observation, Some(*category)),
            Some(mrn),
        ) {
            Ok(()) => readable.push(*category),
            Err(error) if open => refused = Some(error),
            Err(error) => return Err(error),
        }
    }
    match refused {
        Some(error) if readable.is_empty() => Err(error),
        _ => Ok(readable),
    }
}

async fn observations(
    call: &ToolCall<'_>,
    category: ObservationCategory,
    mrn: &Mrn,
) -> Result<Vec<Resource>, ToolError> {
    let store = call.store();
    let stored = |error| call.store_error(error);
    Ok(match category {
        ObservationCategory::VitalSigns => store
            .patient_vital_signs(mrn)
            .await
            .map_err(stored)?
            .iter()
            .flat_map(|v| mapping::vital_sign_observations(&v.record, v.last_updated))
            .collect(),
        ObservationCategory::Laboratory => store
            .patient_lab_results(mrn)
            .await
            .map_err(stored)?
            .iter()
            .flat_map(|l| mapping::lab_observations(&l.record, l.last_updated))
            .collect(),
    })
}

/// `Patient/{id}/$everything`: the Patient (and Coverage), then every record of the kinds the caller
/// may read — appointments, medications, allergies, vital signs, lab observations and reports.
async fn everything(
    call: &ToolCall<'_>,
    mrn: &Mrn,
    paging: Paging,
) -> Result<(u64, Vec<Resource>), ToolError> {
    const KINDS: [DataKind; 6] = [
        DataKind::Demographics,
        DataKind::Appointments,
        DataKind::Medications,
        DataKind::Allergies,
        DataKind::VitalSigns,
        DataKind::LabResults,
    ];
    let readable: Vec<DataKind> = KINDS
        .into_iter()
        .filter(|kind| call.may_read(*kind, Some(mrn)).is_ok())
        .collect();
    if readable.is_empty() {
        call.may_read(DataKind::Demographics, Some(mrn))?;
    }
    let store = call.store();
    let stored = |error| call.store_error(error);
    let mut resources = Vec::new();
    for kind in readable {
        match kind {
            DataKind::Demographics => {
                let patient = store.stamped_patient(mrn).await.map_err(stored)?;
                resources.push(mapping::patient(&patient.record, patient.last_updated));
                resources.extend(mapping::coverage(&patient.record, patient.last_updated));
            }
            DataKind::Appointments => resources.extend(
                store
                    .patient_appointments(mrn)
                    .await
                    .map_err(stored)?
                    .iter()
                    .map(|a| mapping::appointment(&a.record, a.last_updated)),
            ),
            DataKind::Medications => resources.extend(
                store
                    .patient_medications(mrn)
                    .await
                    .map_err(stored)?
                    .iter()
                    .map(|m| mapping::medication_request(&m.record, m.last_updated)),
            ),
            DataKind::Allergies => resources.extend(
                store
                    .patient_allergies(mrn)
                    .await
                    .map_err(stored)?
                    .iter()
                    .map(|a| mapping::allergy_intolerance(&a.record, a.last_updated)),
            ),
            DataKind::VitalSigns => {
                resources.extend(observations(call, ObservationCategory::VitalSigns, mrn).await?)
            }
            DataKind::LabResults => {
                for lab in store.patient_lab_results(mrn).await.map_err(stored)? {
                    resources.extend(mapping::lab_observations(&lab.record, lab.last_updated));
                    resources.push(mapping::diagnostic_report(&lab.record, lab.last_updated));
                }
            }
            DataKind::Providers | DataKind::Clients | DataKind::Audit => {}
        }
    }
    Ok(page(resources, paging))
}
