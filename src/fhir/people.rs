//! Patient, its Coverage, and Practitioner.

use chrono::NaiveDateTime;
use serde_json::{Value, json};

use super::{MRN_SYSTEM, NPI_SYSTEM, Resource, coded, meta, prune, reference, text_concept};
use crate::domain::clinical::{Patient, Provider};

const IDENTIFIER_TYPE: &str = "http://terminology.hl7.org/CodeSystem/v2-0203";

/// US Core Patient. The SSN is left out (minimum necessary); insurance is a separate [`coverage`].
pub fn patient(patient: &Patient, last_updated: NaiveDateTime) -> Resource {
    let mrn = patient.mrn.as_str();
    prune(json!({
        "resourceType": "Patient",
        "id": mrn,
        "meta": meta(Some("http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"), last_updated),
        "identifier": [{
            "use": "usual",
            "type": coded(IDENTIFIER_TYPE, "MR", "Medical record number"),
            "system": MRN_SYSTEM,
            "value": mrn,
        }],
        "active": true,
        "name": [{
            "use": "official",
            "family": patient.last_name,
            "given": [patient.first_name],
            "text": format!("{} {}", patient.first_name, patient.last_name),
        }],
        "telecom": [
            telecom("phone", patient.phone.as_deref()),
            telecom("email", patient.email.as_deref()),
        ],
        "gender": administrative_gender(patient.gender.as_deref()),
        "birthDate": patient.dob,
        "address": [{
            "use": "home",
            "line": [patient.street],
            "city": patient.city,
            "state": patient.state,
            "postalCode": patient.zip_code,
            "country": "US",
        }],
        "contact": [emergency_contact(patient)],
    }))
}

fn emergency_contact(patient: &Patient) -> Value {
    if patient.emergency_contact_name.is_none() && patient.emergency_contact_phone.is_none() {
        return Value::Null;
    }
    json!({
        "relationship": [
            coded("http://terminology.hl7.org/CodeSystem/v2-0131", "C", "Emergency Contact"),
            patient.emergency_contact_relationship.as_deref().map(text_concept),
        ],
        "name": { "text": patient.emergency_contact_name },
        "telecom": [telecom("phone", patient.emergency_contact_phone.as_deref())],
    })
}

/// `Male`/`Female`/`Other`/`Unknown` (any case) as FHIR administrative gender; anything else unknown.
pub fn administrative_gender(gender: Option<&str>) -> Option<&'static str> {
    let gender = gender?.trim().to_ascii_lowercase();
    Some(match gender.as_str() {
        "male" | "m" => "male",
        "female" | "f" => "female",
        "other" => "other",
        _ => "unknown",
    })
}

fn telecom(system: &str, value: Option<&str>) -> Value {
    match value {
        Some(value) if !value.trim().is_empty() => json!({ "system": system, "value": value }),
        _ => Value::Null,
    }
}

/// The patient's insurance as a Coverage (`{mrn}-coverage`); `None` without an insurer.
pub fn coverage(patient: &Patient, last_updated: NaiveDateTime) -> Option<Resource> {
    let insurer = patient.insurance_provider.as_deref()?;
    let mrn = patient.mrn.as_str();
    let group = patient.group_number.as_deref().map(|group| {
        json!({
            "type": coded("http://terminology.hl7.org/CodeSystem/coverage-class", "group", "Group"),
            "value": group,
        })
    });
    Some(prune(json!({
        "resourceType": "Coverage",
        "id": format!("{mrn}-coverage"),
        "meta": meta(Some("http://hl7.org/fhir/us/core/StructureDefinition/us-core-coverage"), last_updated),
        "status": "active",
        "subscriberId": patient.policy_number,
        "beneficiary": reference("Patient", mrn),
        "relationship": coded("http://terminology.hl7.org/CodeSystem/subscriber-relationship", "self", "Self"),
        "payor": [{ "display": insurer }],
        "class": [group],
    })))
}

/// US Core Practitioner: NPI identifier, name (family = last word, given = the rest, "Dr." dropped),
/// specialty as a qualification, department phone and email as telecom.
pub fn practitioner(provider: &Provider, last_updated: NaiveDateTime) -> Resource {
    let npi = provider.npi.as_str();
    let (given, family) = split_name(&provider.name);
    prune(json!({
        "resourceType": "Practitioner",
        "id": npi,
        "meta": meta(Some("http://hl7.org/fhir/us/core/StructureDefinition/us-core-practitioner"), last_updated),
        "identifier": [{ "system": NPI_SYSTEM, "value": npi }],
        "active": true,
        "name": [{
            "text": provider.name,
            "family": family,
            "given": given,
            "prefix": provider.name.trim().starts_with("Dr.").then_some(["Dr."]),
        }],
        "telecom": [
            telecom("phone", provider.phone.as_deref()),
            telecom("email", provider.email.as_deref()),
        ],
        "qualification": [provider.specialty.as_deref().map(|specialty| json!({ "code": text_concept(specialty) }))],
    }))
}

fn split_name(name: &str) -> (Vec<&str>, Option<&str>) {
    let mut words: Vec<&str> = name
        .split_whitespace()
        .filter(|word| !word.eq_ignore_ascii_case("dr.") && !word.eq_ignore_ascii_case("dr"))
        .collect();
    let family = words.pop();
    (words, family)
}
