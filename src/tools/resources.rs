//! MCP resources (`resources/list`, `resources/templates/list`, `resources/read`): a chart's records as
//! readable documents under `ehr://`. Each URI is read under the policy row of the tool that returns the
//! same data ([`ResourceUri::tool`]), through the same lifecycle as tools ([`super::request`]: identity,
//! rate limit, policy, one audit row); a summary withholds the sections the caller's scopes do not cover.
//!
//! | URI | content | policy of |
//! |---|---|---|
//! | `ehr://providers` | provider directory, JSON | `search_providers` |
//! | `ehr://providers/{npi}` | one provider, JSON | `get_provider` |
//! | `ehr://patients/{mrn}` | demographics, JSON (`get_patient`'s shape) | `get_patient` |
//! | `ehr://patients/{mrn}/summary` | summary, JSON (`get_patient_summary`'s shape) | `get_patient_summary` |
//! | `ehr://patients/{mrn}/summary.md` | summary, compact Markdown | `get_patient_summary` |
//! | `ehr://patients/{mrn}/fhir` | summary as a FHIR R4 `collection` Bundle | `get_patient_summary` |
//!
//! `resources/list` shows a known caller what it may read: the directory, and a patient client's own
//! chart; the templates cover every patient. Every result fits the result budget ([`super::views`]).

use std::collections::HashMap;

use chrono::NaiveDateTime;
use rmcp::model::{
    CacheScope, ListResourceTemplatesResult, ListResourcesResult, ProtocolVersion,
    ReadResourceResult, Resource, ResourceContents, ResourceTemplate,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer};
use serde_json::{Value, json};

use super::EhrServer;
use super::call::ToolCall;
use super::error::ToolError;
use super::request::ReadRequest;
use super::summary::SummaryRecords;
use super::views::{self, View};
use super::wire::{ProviderWire, Success};
use crate::auth::{Principal, Tool, policy};
use crate::domain::ids::{Mrn, Npi};
use crate::store::providers::ProviderSearch;

/// The audit action of a resource read.
const ACTION: &str = "resources/read";
const JSON: &str = "application/json";
const MARKDOWN: &str = "text/markdown";
const FHIR_JSON: &str = "application/fhir+json";
/// Most providers the directory resource holds (the budget may cut it further; `search_providers` pages).
const DIRECTORY_LIMIT: u32 = 1000;

/// A parsed `ehr://` URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ResourceUri {
    Providers,
    Provider(Npi),
    Patient(Mrn),
    Summary(Mrn),
    SummaryMarkdown(Mrn),
    SummaryFhir(Mrn),
}

/// One template: its URI template, name, title, MIME type and what it is.
struct Template {
    uri_template: &'static str,
    name: &'static str,
    title: &'static str,
    mime_type: &'static str,
    description: &'static str,
    /// The policy row that decides who may read with this template.
    tool: Tool,
}

const TEMPLATES: &[Template] = &[
    Template {
        uri_template: "ehr://patients/{mrn}/summary.md",
        name: "patient-summary-markdown",
        title: "Patient summary (Markdown)",
        mime_type: MARKDOWN,
        description: "Compact Markdown overview of a chart for an LLM context: demographics, active \
                      medications, allergies, latest vitals, recent labs, upcoming appointments (the \
                      sections your scopes cover).",
        tool: Tool::GetPatientSummary,
    },
    Template {
        uri_template: "ehr://patients/{mrn}/summary",
        name: "patient-summary",
        title: "Patient summary (JSON)",
        mime_type: JSON,
        description: "The get_patient_summary result as JSON; `withheld` names sections your scopes do not cover.",
        tool: Tool::GetPatientSummary,
    },
    Template {
        uri_template: "ehr://patients/{mrn}/fhir",
        name: "patient-summary-fhir",
        title: "Patient summary (FHIR R4 Bundle)",
        mime_type: FHIR_JSON,
        description: "The patient summary as a FHIR R4 collection Bundle: Patient, Coverage, \
                      MedicationRequest, AllergyIntolerance, vital-sign and laboratory Observations, \
                      DiagnosticReport, Appointment.",
        tool: Tool::GetPatientSummary,
    },
    Template {
        uri_template: "ehr://patients/{mrn}",
        name: "patient",
        title: "Patient record",
        mime_type: JSON,
        description: "A patient's demographics (the get_patient result).",
        tool: Tool::GetPatient,
    },
    Template {
        uri_template: "ehr://providers/{npi}",
        name: "provider",
        title: "Provider",
        mime_type: JSON,
        description: "One provider of the directory, by NPI (the get_provider result).",
        tool: Tool::GetProvider,
    },
];

impl ResourceUri {
    /// Parses an `ehr://` URI; `None` for anything else (answered as resource not found).
    pub(crate) fn parse(uri: &str) -> Option<Self> {
        let path = uri.strip_prefix("ehr://")?;
        let parts: Vec<&str> = path.split('/').collect();
        match parts.as_slice() {
            ["providers"] => Some(Self::Providers),
            ["providers", npi] => Npi::parse(npi).ok().map(Self::Provider),
            ["patients", mrn] => Mrn::parse(mrn).ok().map(Self::Patient),
            ["patients", mrn, "summary"] => Mrn::parse(mrn).ok().map(Self::Summary),
            ["patients", mrn, "summary.md"] => Mrn::parse(mrn).ok().map(Self::SummaryMarkdown),
            ["patients", mrn, "fhir"] => Mrn::parse(mrn).ok().map(Self::SummaryFhir),
            _ => None,
        }
    }

    fn to_uri(&self) -> String {
        match self {
            Self::Providers => "ehr://providers".to_owned(),
            Self::Provider(npi) => format!("ehr://providers/{npi}"),
            Self::Patient(mrn) => format!("ehr://patients/{mrn}"),
            Self::Summary(mrn) => format!("ehr://patients/{mrn}/summary"),
            Self::SummaryMarkdown(mrn) => format!("ehr://patients/{mrn}/summary.md"),
            Self::SummaryFhir(mrn) => format!("ehr://patients/{mrn}/fhir"),
        }
    }

    /// The tool whose policy row decides who may read this resource.
    pub(crate) fn tool(&self) -> Tool {
        match self {
            Self::Providers => Tool::SearchProviders,
            Self::Provider(_) => Tool::GetProvider,
            Self::Patient(_) => Tool::GetPatient,
            Self::Summary(_) | Self::SummaryMarkdown(_) | Self::SummaryFhir(_) => {
                Tool::GetPatientSummary
            }
        }
    }

    fn patient(&self) -> Option<&Mrn> {
        match self {
            Self::Patient(mrn)
            | Self::Summary(mrn)
            | Self::SummaryMarkdown(mrn)
            | Self::SummaryFhir(mrn) => Some(mrn),
            Self::Providers | Self::Provider(_) => None,
        }
    }

    /// The template (or static resource) name, for the audit log: no identifiers.
    fn name(&self) -> &'static str {
        match self {
            Self::Providers => "provider-directory",
            Self::Provider(_) => "provider",
            Self::Patient(_) => "patient",
            Self::Summary(_) => "patient-summary",
            Self::SummaryMarkdown(_) => "patient-summary-markdown",
            Self::SummaryFhir(_) => "patient-summary-fhir",
        }
    }

    fn mime_type(&self) -> &'static str {
        match self {
            Self::SummaryMarkdown(_) => MARKDOWN,
            Self::SummaryFhir(_) => FHIR_JSON,
            _ => JSON,
        }
    }

    fn may_read(&self, principal: &Principal) -> bool {
        policy::authorize(principal, self.tool(), self.patient()).is_ok()
    }
}

/// Cache hints of 2026-07-28 for a listing that depends on the caller.
fn private_listing(context: &RequestContext<RoleServer>) -> (Option<u64>, Option<CacheScope>) {
    let modern = context
        .protocol_version()
        .is_some_and(|version| version >= ProtocolVersion::V_2026_07_28);
    (modern.then_some(0), modern.then_some(CacheScope::Private))
}

impl EhrServer {
    /// `resources/list`: the provider directory and, for a patient client, its own chart documents —
    /// what the caller may read (everything for a caller not known yet).
    pub(crate) async fn list_resources_for(
        &self,
        context: &RequestContext<RoleServer>,
    ) -> ListResourcesResult {
        let caller = self.known_caller(context).await;
        let mut uris = vec![ResourceUri::Providers];
        if let Some(mrn) = caller.as_ref().and_then(|c| c.patient.clone()) {
            uris.extend([
                ResourceUri::SummaryMarkdown(mrn.clone()),
                ResourceUri::Summary(mrn.clone()),
                ResourceUri::SummaryFhir(mrn.clone()),
                ResourceUri::Patient(mrn),
            ]);
        }
        let resources = uris
            .into_iter()
            .filter(|uri| caller.as_ref().is_none_or(|caller| uri.may_read(caller)))
            .map(|uri| {
                let (title, description) = match &uri {
                    ResourceUri::Providers => (
                        "Provider directory",
                        "Every provider: NPI, name, specialty, department, contact, accepting new patients.",
                    ),
                    ResourceUri::SummaryMarkdown(_) => (
                        "My summary (Markdown)",
                        "Your own chart summary, compact Markdown.",
                    ),
                    ResourceUri::Summary(_) => ("My summary (JSON)", "Your own chart summary."),
                    ResourceUri::SummaryFhir(_) => (
                        "My summary (FHIR R4 Bundle)",
                        "Your own chart summary as FHIR R4.",
                    ),
                    _ => ("My record", "Your own demographics."),
                };
                Resource::new(uri.to_uri(), uri.name())
                    .with_title(title)
                    .with_description(description)
                    .with_mime_type(uri.mime_type())
            })
            .collect();
        let (ttl, scope) = private_listing(context);
        let mut result = ListResourcesResult::with_all_items(resources);
        result.ttl_ms = ttl;
        result.cache_scope = scope;
        result
    }

    /// `resources/templates/list`: every template a known caller may read with (all before it is known).
    pub(crate) async fn list_resource_templates_for(
        &self,
        context: &RequestContext<RoleServer>,
    ) -> ListResourceTemplatesResult {
        let caller = self.known_caller(context).await;
        let templates = TEMPLATES
            .iter()
            .filter(|template| {
                caller
                    .as_ref()
                    .is_none_or(|caller| policy::may_call(caller, template.tool))
            })
            .map(|template| {
                ResourceTemplate::new(template.uri_template, template.name)
                    .with_title(template.title)
                    .with_description(template.description)
                    .with_mime_type(template.mime_type)
            })
            .collect();
        let (ttl, scope) = private_listing(context);
        let mut result = ListResourceTemplatesResult::with_all_items(templates);
        result.ttl_ms = ttl;
        result.cache_scope = scope;
        result
    }

    /// `resources/read`.
    pub(crate) async fn read_resource_at(
        &self,
        uri: &str,
        context: &RequestContext<RoleServer>,
    ) -> Result<ReadResourceResult, ErrorData> {
        let Some(parsed) = ResourceUri::parse(uri) else {
            return Err(ErrorData::resource_not_found(
                "no such resource: ehr-mcp serves ehr://providers, ehr://providers/{npi}, \
                 ehr://patients/{mrn}, ehr://patients/{mrn}/summary, …/summary.md and …/fhir \
                 (resources/templates/list)",
                Some(json!({"uri": uri.chars().take(200).collect::<String>()})),
            ));
        };
        let request = ReadRequest {
            action: ACTION,
            detail: parsed.name().to_owned(),
            tool: parsed.tool(),
            patient: parsed.patient().cloned(),
        };
        let budget = self.services().result_budget;
        let canonical = parsed.to_uri();
        let text = self
            .serve_read(request, context, async |call| {
                let text = match &parsed {
                    ResourceUri::SummaryMarkdown(mrn) => views::fit_text(
                        budget,
                        super::markdown::summary(&read_summary(call, mrn).await?.to_wire()),
                        "read ehr://patients/{mrn}/summary or use the list tools with `fields`",
                    ),
                    other => {
                        let value = read_json(call, other).await?;
                        let value = views::fit(&list_view(other), budget, value)?;
                        serde_json::to_string(&value)
                            .map_err(|error| ToolError::internal(&call.request_id, &error))?
                    }
                };
                Ok(text)
            })
            .await?;
        Ok(ReadResourceResult::new(vec![
            ResourceContents::text(text, canonical).with_mime_type(parsed.mime_type()),
        ]))
    }
}

/// The budget view of a resource (the directory is the provider list).
fn list_view(uri: &ResourceUri) -> View {
    let mut none = rmcp::model::JsonObject::new();
    match uri {
        ResourceUri::Providers => View::take(Tool::SearchProviders, &mut none).unwrap_or_default(),
        _ => View::default(),
    }
}

async fn read_summary(call: &ToolCall<'_>, mrn: &Mrn) -> Result<SummaryRecords, ToolError> {
    super::summary::summary_records(call, mrn).await
}

/// A JSON resource's content.
async fn read_json(call: &ToolCall<'_>, uri: &ResourceUri) -> Result<Value, ToolError> {
    let store = call.store();
    let fail = |error| call.store_error(error);
    let to_value = |value: Result<Value, serde_json::Error>| {
        value.map_err(|error| ToolError::internal(&call.request_id, &error))
    };
    match uri {
        ResourceUri::Providers => {
            let search = ProviderSearch {
                term: None,
                specialty: None,
                department: None,
                accepting_new_patients: None,
                limit: DIRECTORY_LIMIT,
            };
            let providers: Vec<ProviderWire> = store
                .search_providers(&search)
                .await
                .map_err(fail)?
                .iter()
                .map(ProviderWire::from)
                .collect();
            Ok(json!({
                "status": Success::Success,
                "count": providers.len(),
                "providers": providers,
            }))
        }
        ResourceUri::Provider(npi) => {
            let provider = store.provider(npi).await.map_err(fail)?;
            to_value(serde_json::to_value(
                json!({"status": Success::Success, "provider": ProviderWire::from(&provider)}),
            ))
        }
        ResourceUri::Patient(mrn) => {
            let patient = store.patient(mrn).await.map_err(fail)?;
            to_value(serde_json::to_value(json!({
                "status": Success::Success,
                "patient": super::wire::PatientWire::from(&patient),
            })))
        }
        ResourceUri::Summary(mrn) => to_value(serde_json::to_value(
            read_summary(call, mrn).await?.to_wire(),
        )),
        ResourceUri::SummaryFhir(mrn) => fhir_bundle(call, &read_summary(call, mrn).await?).await,
        ResourceUri::SummaryMarkdown(_) => Err(ToolError::internal(
            &call.request_id,
            &"the Markdown summary is not JSON",
        )),
    }
}

/// When each record of `stamped` was last changed, by its public id.
fn stamps<T>(
    stamped: Vec<crate::store::fhir::Stamped<T>>,
    id: impl Fn(&T) -> String,
) -> HashMap<String, NaiveDateTime> {
    stamped
        .into_iter()
        .map(|s| (id(&s.record), s.last_updated))
        .collect()
}

/// The summary as a FHIR R4 `collection` Bundle, from the FHIR mapping (`crate::fhir`), each resource
/// with its record's `meta.lastUpdated`. Only the kinds in `records` (what the caller may see) are read.
async fn fhir_bundle(call: &ToolCall<'_>, records: &SummaryRecords) -> Result<Value, ToolError> {
    let store = call.store();
    let fail = |error| call.store_error(error);
    let mrn = records.mrn();
    let now = chrono::Utc::now().naive_utc();
    let at = |stamps: &HashMap<String, NaiveDateTime>, id: String| {
        stamps.get(&id).copied().unwrap_or(now)
    };
    let mut resources: Vec<Value> = Vec::new();
    if records.demographics {
        let patient = store.stamped_patient(mrn).await.map_err(fail)?;
        resources.push(crate::fhir::patient(&patient.record, patient.last_updated));
        resources.extend(crate::fhir::coverage(&patient.record, patient.last_updated));
    }
    if let Some(medications) = &records.active_medications {
        let stamps = stamps(store.patient_medications(mrn).await.map_err(fail)?, |m| {
            m.medication_id.to_string()
        });
        for medication in medications {
            let when = at(&stamps, medication.medication_id.to_string());
            resources.push(crate::fhir::medication_request(medication, when));
        }
    }
    if let Some(allergies) = &records.allergies {
        let stamps = stamps(store.patient_allergies(mrn).await.map_err(fail)?, |a| {
            a.allergy_id.to_string()
        });
        for allergy in allergies {
            let when = at(&stamps, allergy.allergy_id.to_string());
            resources.push(crate::fhir::allergy_intolerance(allergy, when));
        }
    }
    if let Some(vitals) = &records.latest_vital_signs {
        let stamps = stamps(store.patient_vital_signs(mrn).await.map_err(fail)?, |v| {
            v.vital_id.to_string()
        });
        for vital in vitals {
            let when = at(&stamps, vital.vital_id.to_string());
            resources.extend(crate::fhir::vital_sign_observations(vital, when));
        }
    }
    if let Some(labs) = &records.recent_lab_results {
        let stamps = stamps(store.patient_lab_results(mrn).await.map_err(fail)?, |l| {
            l.order_id.to_string()
        });
        for lab in labs {
            let when = at(&stamps, lab.order_id.to_string());
            resources.extend(crate::fhir::lab_observations(lab, when));
            resources.push(crate::fhir::diagnostic_report(lab, when));
        }
    }
    if let Some(appointments) = &records.upcoming_appointments {
        let stamps = stamps(store.patient_appointments(mrn).await.map_err(fail)?, |a| {
            a.appointment_id.to_string()
        });
        for appointment in appointments {
            let when = at(&stamps, appointment.appointment_id.to_string());
            resources.push(crate::fhir::appointment(appointment, when));
        }
    }
    let entries: Vec<Value> = resources
        .into_iter()
        .map(|resource| json!({ "resource": resource }))
        .collect();
    let mut bundle = json!({
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": crate::fhir::instant(now),
    });
    // FHIR forbids empty arrays: a bundle with nothing the caller may see has no `entry`.
    if !entries.is_empty() {
        bundle["entry"] = Value::Array(entries);
    }
    Ok(bundle)
}

#[cfg(test)]
mod tests {
    use super::ResourceUri;

    #[test]
    fn uris_parse_and_print_back() {
        for uri in [
            "ehr://providers",
            "ehr://providers/1234567890",
            "ehr://patients/MRN001",
            "ehr://patients/MRN001/summary",
            "ehr://patients/MRN001/summary.md",
            "ehr://patients/MRN001/fhir",
        ] {
            let parsed = ResourceUri::parse(uri);
            assert_eq!(parsed.map(|p| p.to_uri()).as_deref(), Some(uri));
        }
        for bad in [
            "ehr://patients/M/summary",
            "ehr://patients/MRN001/notes",
            "file:///etc/passwd",
            "ehr://providers/12",
        ] {
            assert_eq!(ResourceUri::parse(bad), None, "{bad}");
        }
    }
}
