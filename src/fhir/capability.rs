//! The CapabilityStatement of the FHIR API: built from the same table of resource types and search
//! parameters the search parser reads ([`super::search`]), so it states exactly what is served.

use chrono::NaiveDateTime;
use serde_json::{Value, json};

use super::search::ResourceType;
use super::{Resource, instant, prune};

/// Where the authorization server's endpoints are (for the SMART `oauth-uris` extension).
#[derive(Debug, Clone)]
pub struct OAuthUris {
    pub token: String,
    pub authorize: Option<String>,
}

fn profile(resource_type: ResourceType) -> Option<&'static str> {
    Some(match resource_type {
        ResourceType::Patient => "http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient",
        ResourceType::Coverage => {
            "http://hl7.org/fhir/us/core/StructureDefinition/us-core-coverage"
        }
        ResourceType::Practitioner => {
            "http://hl7.org/fhir/us/core/StructureDefinition/us-core-practitioner"
        }
        ResourceType::MedicationRequest => {
            "http://hl7.org/fhir/us/core/StructureDefinition/us-core-medicationrequest"
        }
        ResourceType::AllergyIntolerance => {
            "http://hl7.org/fhir/us/core/StructureDefinition/us-core-allergyintolerance"
        }
        ResourceType::DiagnosticReport => {
            "http://hl7.org/fhir/us/core/StructureDefinition/us-core-diagnosticreport-lab"
        }
        ResourceType::Observation | ResourceType::Appointment | ResourceType::AuditEvent => {
            return None;
        }
    })
}

fn resource(resource_type: ResourceType) -> Value {
    let params = resource_type.search_params();
    let mut interactions = vec![json!({ "code": "read" })];
    if !params.is_empty() {
        interactions.push(json!({ "code": "search-type" }));
    }
    let operations = (resource_type == ResourceType::Patient).then(|| {
        json!([{
            "name": "everything",
            "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything",
            "documentation": "The patient's record: Patient, Coverage and every record of the kinds the token may read; paged with _count and _offset.",
        }])
    });
    let search_params: Vec<Value> = params
        .iter()
        .map(|param| {
            json!({ "name": param.name, "type": param.kind, "documentation": param.documentation })
        })
        .collect();
    let observation_profiles = (resource_type == ResourceType::Observation).then(|| {
        json!([
            "http://hl7.org/fhir/StructureDefinition/vitalsigns",
            "http://hl7.org/fhir/us/core/StructureDefinition/us-core-observation-lab",
        ])
    });
    json!({
        "type": resource_type.as_str(),
        "profile": profile(resource_type),
        "supportedProfile": observation_profiles,
        "interaction": interactions,
        "searchParam": search_params,
        "operation": operations,
    })
}

/// The CapabilityStatement for the API at `base` (an `instance` statement, dated `now`).
pub fn capability_statement(
    base: &str,
    version: &str,
    oauth: &OAuthUris,
    now: NaiveDateTime,
) -> Resource {
    let mut oauth_uris = vec![json!({ "url": "token", "valueUri": oauth.token })];
    if let Some(authorize) = &oauth.authorize {
        oauth_uris.push(json!({ "url": "authorize", "valueUri": authorize }));
    }
    prune(json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": instant(now),
        "publisher": "ehr-mcp",
        "kind": "instance",
        "software": { "name": "ehr-mcp", "version": version },
        "implementation": { "description": "ehr-mcp FHIR R4 API (read and search)", "url": base },
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "rest": [{
            "mode": "server",
            "documentation": "Read and search only. Bearer tokens from the token endpoint, with our scopes or SMART v1/v2 scopes (patient/*.rs, user/Observation.rs, system/*.read); a patient token reaches its own compartment only. Searches page with _count (1-100, default 20) and _offset; unknown parameters are refused.",
            "security": {
                "cors": false,
                "service": [{
                    "coding": [{
                        "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                        "code": "SMART-on-FHIR",
                        "display": "SMART-on-FHIR",
                    }],
                }],
                "extension": [{
                    "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                    "extension": oauth_uris,
                }],
            },
            "resource": ResourceType::ALL.into_iter().map(resource).collect::<Vec<_>>(),
        }],
    }))
}
