//! AuditEvent for an audit row (for admins holding `read:audit`).

use serde_json::json;

use super::{MRN_SYSTEM, Resource, TOOL_SYSTEM, instant, meta, prune, timestamp};
use crate::store::audit::AuditRecord;

/// One audit row as an AuditEvent (`id` = `audit-{seq}`). Outcome: success `0`, denied `4`, failed `8`.
pub fn audit_event(record: &AuditRecord) -> Resource {
    let outcome = match record.outcome.as_str() {
        "success" => "0",
        "denied" => "4",
        _ => "8",
    };
    let recorded = timestamp(&record.occurred_at);
    prune(json!({
        "resourceType": "AuditEvent",
        "id": format!("audit-{}", record.seq),
        // An audit row never changes: it was last updated when it was recorded.
        "meta": recorded.map(|at| meta(None, at)),
        "type": { "system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest", "display": "RESTful Operation" },
        "subtype": [{ "system": TOOL_SYSTEM, "code": record.action, "display": record.action }],
        "action": "E",
        "recorded": recorded.map(instant),
        "outcome": outcome,
        "outcomeDesc": record.detail,
        "agent": [{
            "type": record.role.as_deref().map(|role| json!({ "text": role })),
            "who": match &record.client_id {
                Some(client_id) => json!({ "identifier": { "system": "urn:ehr-mcp:client", "value": client_id }, "display": record.app_id }),
                None => json!({ "display": "unauthenticated caller" }),
            },
            "requestor": true,
        }],
        "source": {
            "observer": { "display": "ehr-mcp" },
            "type": [{ "system": "http://terminology.hl7.org/CodeSystem/security-source-type", "code": "4", "display": "Application Server" }],
        },
        "entity": [
            record.patient_mrn.as_deref().map(|mrn| json!({
                "what": { "identifier": { "system": MRN_SYSTEM, "value": mrn } },
                "type": { "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "1", "display": "Person" },
            })),
            json!({ "what": { "identifier": { "system": "urn:ehr-mcp:request", "value": record.request_id } } }),
        ],
    }))
}
