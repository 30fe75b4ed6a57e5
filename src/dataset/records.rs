//! One record of an export file → one domain record: field by field, with the field named on failure.
//! Text is kept exactly as written (dates, times, timestamps), after checking that it parses.

use serde_json::Value;

use super::validate::{FieldError, Fields};
use crate::domain::clinical::{
    Allergy, AllergySeverity, AllergyStatus, Appointment, AppointmentStatus, Gender, LabResult,
    LabStatus, Medication, MedicationStatus, Patient, Provider, VitalSigns, parse_lab_components,
};
use crate::domain::ids::{Mrn, Npi, RecordId};
use crate::domain::time::{AppointmentTime, parse_date, parse_timestamp};

fn error(field: &str, rule: &str) -> FieldError {
    FieldError {
        field: field.to_owned(),
        rule: rule.to_owned(),
    }
}

fn optional_text(fields: &Fields, name: &str) -> Result<Option<String>, FieldError> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(_) => Err(error(name, "expected text or null")),
    }
}

fn required_text(fields: &Fields, name: &str) -> Result<String, FieldError> {
    match optional_text(fields, name)? {
        Some(text) if !text.trim().is_empty() => Ok(text),
        _ => Err(error(name, "is required")),
    }
}

fn optional_integer(fields: &Fields, name: &str) -> Result<Option<i64>, FieldError> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(number)) => number
            .as_i64()
            .map(Some)
            .ok_or_else(|| error(name, "expected a whole number")),
        Some(_) => Err(error(name, "expected a whole number or null")),
    }
}

fn optional_number(fields: &Fields, name: &str) -> Result<Option<f64>, FieldError> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(number)) => Ok(number.as_f64()),
        Some(_) => Err(error(name, "expected a number or null")),
    }
}

fn optional_date(fields: &Fields, name: &str) -> Result<Option<String>, FieldError> {
    let text = optional_text(fields, name)?;
    if let Some(text) = &text {
        parse_date(name, text)?;
    }
    Ok(text)
}

/// A date or a timestamp (lab dates were written either way by the earlier system).
fn optional_date_or_timestamp(fields: &Fields, name: &str) -> Result<Option<String>, FieldError> {
    let text = optional_text(fields, name)?;
    if let Some(text) = &text {
        parse_timestamp(name, text)?;
    }
    Ok(text)
}

fn mrn(fields: &Fields, name: &str) -> Result<Mrn, FieldError> {
    Mrn::parse(&required_text(fields, name)?).map_err(|e| error(name, &e.rule))
}

fn npi(fields: &Fields, name: &str) -> Result<Npi, FieldError> {
    Npi::parse(&required_text(fields, name)?).map_err(|e| error(name, &e.rule))
}

fn record_id(fields: &Fields, name: &str) -> Result<RecordId, FieldError> {
    Ok(RecordId::parse(name, &required_text(fields, name)?)?)
}

/// An enumeration value, checked by `parse`; `default` when the field is missing.
fn status<T>(
    fields: &Fields,
    name: &str,
    default: Option<T>,
    parse: fn(&str) -> Result<T, crate::domain::DomainError>,
) -> Result<T, FieldError> {
    match (optional_text(fields, name)?, default) {
        (Some(text), _) => parse(&text).map_err(|e| error(name, &e.rule)),
        (None, Some(default)) => Ok(default),
        (None, None) => Err(error(name, "is required")),
    }
}

pub(super) fn parse_provider(f: &Fields) -> Result<Provider, FieldError> {
    let accepting = match f.get("accepting_new_patients") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(value)) => *value,
        Some(_) => return Err(error("accepting_new_patients", "expected true or false")),
    };
    Ok(Provider {
        npi: npi(f, "npi")?,
        name: required_text(f, "name")?,
        specialty: optional_text(f, "specialty")?,
        department: optional_text(f, "department")?,
        phone: optional_text(f, "phone")?,
        email: optional_text(f, "email")?,
        accepting_new_patients: accepting,
    })
}

pub(super) fn parse_patient(f: &Fields) -> Result<Patient, FieldError> {
    let dob = required_text(f, "dob")?;
    parse_date("dob", &dob)?;
    let gender = optional_text(f, "gender")?;
    if let Some(gender) = &gender {
        Gender::parse(gender)?;
    }
    Ok(Patient {
        mrn: mrn(f, "mrn")?,
        first_name: required_text(f, "first_name")?,
        last_name: required_text(f, "last_name")?,
        dob,
        gender,
        ssn: optional_text(f, "ssn")?,
        email: optional_text(f, "email")?,
        phone: optional_text(f, "phone")?,
        street: optional_text(f, "street")?,
        city: optional_text(f, "city")?,
        state: optional_text(f, "state")?,
        zip_code: optional_text(f, "zip_code")?,
        insurance_provider: optional_text(f, "insurance_provider")?,
        policy_number: optional_text(f, "policy_number")?,
        group_number: optional_text(f, "group_number")?,
        emergency_contact_name: optional_text(f, "emergency_contact_name")?,
        emergency_contact_relationship: optional_text(f, "emergency_contact_relationship")?,
        emergency_contact_phone: optional_text(f, "emergency_contact_phone")?,
    })
}

pub(super) fn parse_appointment(f: &Fields) -> Result<Appointment, FieldError> {
    let date = required_text(f, "date")?;
    parse_date("date", &date)?;
    let time = required_text(f, "time")?;
    AppointmentTime::parse(&time)?;
    let duration_minutes = optional_integer(f, "duration_minutes")?.unwrap_or(30);
    if !(1..=1440).contains(&duration_minutes) {
        return Err(error("duration_minutes", "expected 1 to 1440 minutes"));
    }
    Ok(Appointment {
        appointment_id: record_id(f, "appointment_id")?,
        patient_mrn: mrn(f, "patient_mrn")?,
        provider_npi: npi(f, "provider_npi")?,
        provider_name: None,
        date,
        time,
        duration_minutes,
        appointment_type: optional_text(f, "appointment_type")?,
        department: optional_text(f, "department")?,
        location: optional_text(f, "location")?,
        status: status(f, "status", None, AppointmentStatus::parse)?,
        reason: optional_text(f, "reason")?,
        notes: optional_text(f, "notes")?,
    })
}

pub(super) fn parse_medication(f: &Fields) -> Result<Medication, FieldError> {
    let refills_remaining = optional_integer(f, "refills_remaining")?.unwrap_or(0);
    if refills_remaining < 0 {
        return Err(error("refills_remaining", "expected zero or more"));
    }
    Ok(Medication {
        medication_id: record_id(f, "medication_id")?,
        patient_mrn: mrn(f, "patient_mrn")?,
        name: required_text(f, "name")?,
        dosage: optional_text(f, "dosage")?,
        frequency: optional_text(f, "frequency")?,
        route: optional_text(f, "route")?,
        prescribed_date: optional_date(f, "prescribed_date")?,
        prescriber: optional_text(f, "prescriber")?,
        status: status(f, "status", None, MedicationStatus::parse)?,
        refills_remaining,
        notes: optional_text(f, "notes")?,
    })
}

/// `make_id` supplies the id when the record has none (the earlier format).
pub(super) fn parse_allergy(
    f: &Fields,
    make_id: impl FnOnce() -> RecordId,
) -> Result<Allergy, FieldError> {
    let allergy_id = match optional_text(f, "allergy_id")? {
        Some(_) => record_id(f, "allergy_id")?,
        None => make_id(),
    };
    Ok(Allergy {
        allergy_id,
        patient_mrn: mrn(f, "patient_mrn")?,
        allergen: required_text(f, "allergen")?,
        reaction: optional_text(f, "reaction")?,
        severity: status(f, "severity", None, AllergySeverity::parse)?,
        onset_date: optional_date(f, "onset_date")?,
        status: status(
            f,
            "status",
            Some(AllergyStatus::Active),
            AllergyStatus::parse,
        )?,
        notes: optional_text(f, "notes")?,
    })
}

/// `make_id` supplies the id when the record has none (the earlier format).
pub(super) fn parse_vitals(
    f: &Fields,
    make_id: impl FnOnce() -> RecordId,
) -> Result<VitalSigns, FieldError> {
    let vital_id = match optional_text(f, "vital_id")? {
        Some(_) => record_id(f, "vital_id")?,
        None => make_id(),
    };
    let recorded_date = required_text(f, "recorded_date")?;
    parse_timestamp("recorded_date", &recorded_date)?;
    Ok(VitalSigns {
        vital_id,
        patient_mrn: mrn(f, "patient_mrn")?,
        recorded_date,
        systolic_bp: optional_integer(f, "systolic_bp")?,
        diastolic_bp: optional_integer(f, "diastolic_bp")?,
        heart_rate: optional_integer(f, "heart_rate")?,
        temperature: optional_number(f, "temperature")?,
        respiratory_rate: optional_integer(f, "respiratory_rate")?,
        oxygen_saturation: optional_integer(f, "oxygen_saturation")?,
        weight: optional_number(f, "weight")?,
        height: optional_number(f, "height")?,
        bmi: optional_number(f, "bmi")?,
        recorded_by: optional_text(f, "recorded_by")?,
        notes: optional_text(f, "notes")?,
    })
}

pub(super) fn parse_lab(f: &Fields) -> Result<LabResult, FieldError> {
    let results_json = optional_text(f, "results_json")?;
    parse_lab_components(results_json.as_deref())?;
    Ok(LabResult {
        order_id: record_id(f, "order_id")?,
        patient_mrn: mrn(f, "patient_mrn")?,
        test_name: required_text(f, "test_name")?,
        ordered_date: optional_date_or_timestamp(f, "ordered_date")?,
        collected_date: optional_date_or_timestamp(f, "collected_date")?,
        resulted_date: optional_date_or_timestamp(f, "resulted_date")?,
        status: status(f, "status", None, LabStatus::parse)?,
        ordered_by: optional_text(f, "ordered_by")?,
        results_json,
    })
}
