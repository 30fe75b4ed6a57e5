//! Appointment, MedicationRequest and AllergyIntolerance.

use chrono::{Duration, NaiveDate, NaiveDateTime};
use serde_json::{Value, json};

use super::{Resource, coded, date_time, instant, meta, prune, reference, text_concept};
use crate::domain::clinical::{
    Allergy, AllergySeverity, AllergyStatus, Appointment, AppointmentStatus, Medication,
    MedicationStatus,
};
use crate::domain::time::AppointmentTime;

/// FHIR `AppointmentStatus` for ours.
pub fn appointment_status(status: AppointmentStatus) -> &'static str {
    match status {
        AppointmentStatus::Scheduled | AppointmentStatus::Confirmed => "booked",
        AppointmentStatus::CheckedIn => "checked-in",
        AppointmentStatus::Completed => "fulfilled",
        AppointmentStatus::Cancelled => "cancelled",
        AppointmentStatus::NoShow => "noshow",
    }
}

pub fn appointment(appointment: &Appointment, last_updated: NaiveDateTime) -> Resource {
    let start = NaiveDate::parse_from_str(&appointment.date, "%Y-%m-%d")
        .ok()
        .zip(AppointmentTime::parse(&appointment.time).ok())
        .map(|(date, time)| date.and_time(time.slot));
    let end = start.map(|start| start + Duration::minutes(appointment.duration_minutes.max(0)));
    let provider = reference("Practitioner", appointment.provider_npi.as_str());
    let provider = match &appointment.provider_name {
        Some(name) => json!({ "reference": provider["reference"], "display": name }),
        None => provider,
    };
    prune(json!({
        "resourceType": "Appointment",
        "id": appointment.appointment_id.as_str(),
        "meta": meta(None, last_updated),
        "status": appointment_status(appointment.status),
        "appointmentType": appointment.appointment_type.as_deref().map(text_concept),
        "serviceType": [appointment.department.as_deref().map(text_concept)],
        "reasonCode": [appointment.reason.as_deref().map(text_concept)],
        "description": appointment.reason,
        "start": start.map(instant),
        "end": end.map(instant),
        "minutesDuration": (appointment.duration_minutes > 0).then_some(appointment.duration_minutes),
        "comment": appointment.notes,
        "participant": [
            { "actor": reference("Patient", appointment.patient_mrn.as_str()), "status": "accepted", "required": "required" },
            { "actor": provider, "status": "accepted", "required": "required" },
            appointment.location.as_deref().map(|location| json!({ "actor": { "display": location }, "status": "accepted" })),
        ],
    }))
}

/// FHIR `medicationrequest-status` for ours.
pub fn medication_status(status: MedicationStatus) -> &'static str {
    match status {
        MedicationStatus::Active => "active",
        MedicationStatus::OnHold => "on-hold",
        MedicationStatus::Completed => "completed",
        MedicationStatus::Discontinued => "stopped",
    }
}

/// US Core MedicationRequest; the prescriber is a name only, so `requester` is a display.
pub fn medication_request(medication: &Medication, last_updated: NaiveDateTime) -> Resource {
    let dosage_text = [
        medication.dosage.as_deref(),
        medication.frequency.as_deref(),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" ");
    let authored = medication.prescribed_date.as_deref().and_then(date_time);
    prune(json!({
        "resourceType": "MedicationRequest",
        "id": medication.medication_id.as_str(),
        "meta": meta(
            Some("http://hl7.org/fhir/us/core/StructureDefinition/us-core-medicationrequest"),
            last_updated,
        ),
        "status": medication_status(medication.status),
        "intent": "order",
        "medicationCodeableConcept": text_concept(&medication.name),
        "subject": reference("Patient", medication.patient_mrn.as_str()),
        "authoredOn": authored,
        "requester": medication.prescriber.as_deref().map(|name| json!({ "display": name })),
        "note": [medication.notes.as_deref().map(|text| json!({ "text": text }))],
        "dosageInstruction": [{
            "text": dosage_text,
            "timing": medication.frequency.as_deref().map(|frequency| json!({ "code": text_concept(frequency) })),
            "route": medication.route.as_deref().map(text_concept),
        }],
        "dispenseRequest": { "numberOfRepeatsAllowed": medication.refills_remaining.max(0) },
    }))
}

fn allergy_clinical_status(status: AllergyStatus) -> Value {
    let (code, display) = match status {
        AllergyStatus::Active => ("active", "Active"),
        AllergyStatus::Inactive => ("inactive", "Inactive"),
        AllergyStatus::Resolved => ("resolved", "Resolved"),
    };
    coded(
        "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
        code,
        display,
    )
}

/// Criticality (`low`/`high`) and reaction severity (`mild`/`moderate`/`severe`) from our severity.
pub fn allergy_severity(severity: AllergySeverity) -> (&'static str, &'static str) {
    match severity {
        AllergySeverity::Mild => ("low", "mild"),
        AllergySeverity::Moderate => ("low", "moderate"),
        AllergySeverity::Severe => ("high", "severe"),
        AllergySeverity::LifeThreatening => ("high", "severe"),
    }
}

/// US Core AllergyIntolerance; the reaction text becomes the manifestation.
pub fn allergy_intolerance(allergy: &Allergy, last_updated: NaiveDateTime) -> Resource {
    let (criticality, reaction_severity) = allergy_severity(allergy.severity);
    let reaction = allergy.reaction.as_deref().map(|reaction| {
        json!({ "manifestation": [text_concept(reaction)], "severity": reaction_severity })
    });
    prune(json!({
        "resourceType": "AllergyIntolerance",
        "id": allergy.allergy_id.as_str(),
        "meta": meta(
            Some("http://hl7.org/fhir/us/core/StructureDefinition/us-core-allergyintolerance"),
            last_updated,
        ),
        "clinicalStatus": allergy_clinical_status(allergy.status),
        "verificationStatus": coded(
            "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification",
            "confirmed",
            "Confirmed",
        ),
        "criticality": criticality,
        "code": text_concept(&allergy.allergen),
        "patient": reference("Patient", allergy.patient_mrn.as_str()),
        "onsetDateTime": allergy.onset_date.as_deref().and_then(date_time),
        "note": [allergy.notes.as_deref().map(|text| json!({ "text": text }))],
        "reaction": [reaction],
    }))
}
