//! AuditEvent for an audit row (for admins holding `read:audit`). Only what the row holds: no PHI
//! beyond the patient's MRN the row names, and the hash chain (`prev_hash`, `row_hash`) is left out.

use serde_json::{Value, json};

use super::{MRN_SYSTEM, Resource, TOOL_SYSTEM, instant, meta, prune, reference, timestamp};
use crate::store::audit::AuditRecord;

const DCM: &str = "http://dicom.nema.org/resources/ontology/DCM";
const AUDIT_EVENT_TYPE: &str = "http://terminology.hl7.org/CodeSystem/audit-event-type";

/// The AuditEvent `type` of an audited action: signing in and tokens are DICOM "User
/// Authentication", command-line administration "Application Activity", every tool call and FHIR
/// read a "RESTful Operation".
fn event_type(action: &str, transport: &str) -> Value {
    let authentication = action.starts_with("token.")
        || action.starts_with("consent.")
        || matches!(action, "authenticate" | "validate_token" | "user.login");
    if authentication {
        json!({ "system": DCM, "code": "110114", "display": "User Authentication" })
    } else if transport == "cli" {
        json!({ "system": DCM, "code": "110100", "display": "Application Activity" })
    } else {
        json!({ "system": AUDIT_EVENT_TYPE, "code": "rest", "display": "RESTful Operation" })
    }
}

/// The AuditEvent `action` (C create, R read, U update, E execute) of a tool name.
pub fn action_code(action: &str) -> &'static str {
    const READS: [&str; 5] = ["get_", "search_", "query_", "fhir_", "validate_"];
    const CREATES: [&str; 7] = [
        "create_",
        "schedule_",
        "prescribe_",
        "order_",
        "record_",
        "add_",
        "register_",
    ];
    const UPDATES: [&str; 3] = ["update_", "cancel_", "discontinue_"];
    let starts = |prefixes: &[&str]| prefixes.iter().any(|prefix| action.starts_with(prefix));
    if starts(&READS) {
        "R"
    } else if starts(&CREATES) {
        "C"
    } else if starts(&UPDATES) {
        "U"
    } else {
        "E"
    }
}

/// One audit row as an AuditEvent (`id` = `audit-{seq}`): `type`/`subtype`/`action` from the action,
/// `recorded` = occurred at, outcome success `0`, denied `4`, failed `8` (the detail as `outcomeDesc`),
/// the calling client as the agent, this server and the transport as the source, and the patient the
/// call concerned (when it names one) and the request id as entities.
pub fn audit_event(record: &AuditRecord) -> Resource {
    let outcome = match record.outcome.as_str() {
        "success" => "0",
        "denied" => "4",
        _ => "8",
    };
    let recorded = timestamp(&record.occurred_at);
    let who = match &record.client_id {
        Some(client_id) => json!({
            "identifier": { "system": "urn:ehr-mcp:client", "value": client_id },
            "display": record.app_id.as_deref().unwrap_or(client_id),
        }),
        None => json!({ "display": "unauthenticated caller" }),
    };
    let patient = record.patient_mrn.as_deref().map(|mrn| {
        let mut what = reference("Patient", mrn);
        what["identifier"] = json!({ "system": MRN_SYSTEM, "value": mrn });
        json!({
            "what": what,
            "type": { "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "1", "display": "Person" },
            "role": { "system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "1", "display": "Patient" },
        })
    });
    prune(json!({
        "resourceType": "AuditEvent",
        "id": format!("audit-{}", record.seq),
        // An audit row never changes: it was last updated when it was recorded.
        "meta": recorded.map(|at| meta(None, at)),
        "type": event_type(&record.action, &record.transport),
        "subtype": [{ "system": TOOL_SYSTEM, "code": record.action, "display": record.action }],
        "action": action_code(&record.action),
        "recorded": recorded.map(instant),
        "outcome": outcome,
        "outcomeDesc": record.detail,
        "agent": [{
            "role": record.role.as_deref().map(|role| json!([{ "text": role }])),
            "who": who,
            "requestor": true,
        }],
        "source": {
            "site": format!("ehr-mcp ({})", record.transport),
            "observer": { "display": "ehr-mcp" },
            "type": [{ "system": "http://terminology.hl7.org/CodeSystem/security-source-type", "code": "4", "display": "Application Server" }],
        },
        "entity": [
            patient,
            Some(json!({
                "what": { "identifier": { "system": "urn:ehr-mcp:request", "value": record.request_id } },
                "type": { "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2", "display": "System Object" },
            })),
        ],
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_map_to_crud_codes() {
        assert_eq!(action_code("get_patient"), "R");
        assert_eq!(action_code("fhir_search"), "R");
        assert_eq!(action_code("prescribe_medication"), "C");
        assert_eq!(action_code("cancel_appointment"), "U");
        assert_eq!(action_code("token.issue"), "E");
        assert_eq!(event_type("token.issue", "http")["code"], "110114");
        assert_eq!(event_type("client.register", "cli")["code"], "110100");
        assert_eq!(event_type("get_patient", "websocket")["code"], "rest");
    }
}
