//! FHIR R4 views of the domain records: pure mapping (no I/O) from `domain` types to FHIR JSON, one
//! function per resource, each resource with a stable logical id (Patient = MRN, Practitioner = NPI,
//! the others their public record ids). `docs/FHIR.md` has the mapping tables.
//!
//! Invariants: every resource produced here validates against the official R4 JSON schema and the
//! `fhir.resources` models (tested over the demo data and the seed export); dates without a zone are
//! stated as UTC; nothing here reads the database or knows a transport.

use chrono::{NaiveDate, NaiveDateTime};
use serde_json::{Value, json};

mod audit_event;
pub mod capability;
mod care;
mod observations;
mod people;
pub mod search;

pub use audit_event::audit_event;
pub use care::{allergy_intolerance, appointment, medication_request};
pub use observations::{diagnostic_report, lab_observations, vital_sign_observations};
pub use people::{coverage, patient, practitioner};

/// Our own identifier system for MRNs.
pub const MRN_SYSTEM: &str = "urn:ehr-mcp:mrn";
/// The US NPI identifier system.
pub const NPI_SYSTEM: &str = "http://hl7.org/fhir/sid/us-npi";
/// Our own code system for tool names (AuditEvent subtype).
pub const TOOL_SYSTEM: &str = "urn:ehr-mcp:tool";
pub const LOINC: &str = "http://loinc.org";
pub const UCUM: &str = "http://unitsofmeasure.org";
pub const OBSERVATION_CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/observation-category";

/// A FHIR resource as JSON.
pub type Resource = Value;

/// `{"reference": "Type/id"}`.
pub fn reference(resource_type: &str, id: &str) -> Value {
    json!({ "reference": format!("{resource_type}/{id}") })
}

/// `meta` with `lastUpdated` (when the record last changed on this server: its `updated_at`) and the
/// profile it claims.
fn meta(profile: Option<&str>, last_updated: NaiveDateTime) -> Value {
    let mut meta = serde_json::Map::new();
    meta.insert("lastUpdated".into(), Value::String(instant(last_updated)));
    if let Some(profile) = profile {
        meta.insert("profile".into(), json!([profile]));
    }
    Value::Object(meta)
}

/// A FHIR `instant`/`dateTime` with seconds and zone (the earlier system's times carry no zone: UTC).
pub fn instant(at: NaiveDateTime) -> String {
    at.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A record's ISO timestamp or date as a FHIR `dateTime` (a date alone stays a date).
fn date_time(raw: &str) -> Option<String> {
    let raw = raw.trim();
    if let Ok(date) = NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        return Some(date.format("%Y-%m-%d").to_string());
    }
    crate::domain::time::parse_timestamp("date", raw)
        .ok()
        .map(instant)
}

/// A record's date or timestamp as a point in time (a date alone meaning its midnight, UTC).
fn timestamp(raw: &str) -> Option<NaiveDateTime> {
    crate::domain::time::parse_timestamp("date", raw).ok()
}

/// A text-only CodeableConcept.
fn text_concept(text: &str) -> Value {
    json!({ "text": text })
}

/// A one-coding CodeableConcept.
fn coded(system: &str, code: &str, display: &str) -> Value {
    json!({ "coding": [{ "system": system, "code": code, "display": display }], "text": display })
}

/// Drops `null` members (FHIR forbids them) and empty arrays/objects, recursively.
fn prune(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(key, value)| (key, prune(value)))
                .filter(|(_, value)| !is_empty(value))
                .collect(),
        ),
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(prune)
                .filter(|value| !is_empty(value))
                .collect(),
        ),
        other => other,
    }
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(text) => text.trim().is_empty(),
        Value::Array(items) => items.is_empty(),
        Value::Object(map) => map.is_empty(),
        _ => false,
    }
}

/// A `searchset` Bundle: `total` matches, this page's `entries`, and `self`/`next` links.
pub fn searchset(
    base: &str,
    total: usize,
    entries: Vec<Resource>,
    self_link: &str,
    next_link: Option<&str>,
) -> Resource {
    let mut links = vec![json!({ "relation": "self", "url": self_link })];
    if let Some(next) = next_link {
        links.push(json!({ "relation": "next", "url": next }));
    }
    prune(json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "total": total,
        "link": links,
        "entry": entries.into_iter().map(|resource| entry(base, resource)).collect::<Vec<_>>(),
    }))
}

/// An entry; its `fullUrl` is absolute under `base`, or relative (`Type/id`) when `base` is empty.
fn entry(base: &str, resource: Resource) -> Value {
    let path = format!(
        "{}/{}",
        resource["resourceType"].as_str().unwrap_or_default(),
        resource["id"].as_str().unwrap_or_default()
    );
    let url = if base.is_empty() {
        path
    } else {
        format!("{base}/{path}")
    };
    json!({ "fullUrl": url, "resource": resource, "search": { "mode": "match" } })
}

/// An OperationOutcome with one issue (`code` from the FHIR issue-type value set).
pub fn operation_outcome(severity: &str, code: &str, diagnostics: &str) -> Resource {
    json!({
        "resourceType": "OperationOutcome",
        "issue": [{ "severity": severity, "code": code, "diagnostics": diagnostics }],
    })
}

/// Every resource of a data set, each last updated `at`: Practitioners, Patients (with Coverage),
/// Appointments, MedicationRequests, AllergyIntolerances, vital-sign Observations, lab Observations and
/// DiagnosticReports.
pub fn dataset_resources(dataset: &crate::dataset::Dataset, at: NaiveDateTime) -> Vec<Resource> {
    let mut resources: Vec<Resource> = dataset
        .providers
        .iter()
        .map(|record| practitioner(record, at))
        .collect();
    for record in &dataset.patients {
        resources.push(patient(record, at));
        resources.extend(coverage(record, at));
    }
    resources.extend(dataset.appointments.iter().map(|r| appointment(r, at)));
    resources.extend(
        dataset
            .medications
            .iter()
            .map(|r| medication_request(r, at)),
    );
    resources.extend(dataset.allergies.iter().map(|r| allergy_intolerance(r, at)));
    resources.extend(
        dataset
            .vitals
            .iter()
            .flat_map(|r| vital_sign_observations(r, at)),
    );
    for lab in &dataset.labs {
        resources.extend(lab_observations(lab, at));
        resources.push(diagnostic_report(lab, at));
    }
    resources
}
