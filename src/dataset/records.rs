//! One record of an export file → one domain record: field by field, each parsed by the same domain type
//! and bound a tool argument of that field uses (`Date`, `TimeOfDay`, `Gender`, `text::field::*`,
//! `Email`, `Phone`), with the field named on failure. Blank text means "not given".

use serde_json::Value;

use super::validate::{FieldError, Fields};
use crate::domain::DomainError;
use crate::domain::clinical::{
    Allergy, AllergySeverity, AllergyStatus, Appointment, AppointmentStatus, Gender, LabResult,
    LabStatus, Medication, MedicationStatus, Patient, Provider, VitalSigns, parse_lab_components,
};
use crate::domain::ids::{Mrn, Npi, RecordId};
use crate::domain::text::field::{Code, Label, Name, Note, Reason, Short};
use crate::domain::text::{Email, Phone};
use crate::domain::time::{Date, DateOrTimestamp, TimeOfDay, Timestamp};

fn error(field: &str, rule: &str) -> FieldError {
    FieldError {
        field: field.to_owned(),
        rule: rule.to_owned(),
    }
}

/// The field's raw text: `None` when missing, null or blank (blank means "not given", as in tool
/// arguments).
fn raw_text<'a>(fields: &'a Fields, name: &str) -> Result<Option<&'a str>, FieldError> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if text.trim().is_empty() => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(error(name, "expected text or null")),
    }
}

/// An optional field parsed by its domain rule; the problem names this field.
fn optional<T>(
    fields: &Fields,
    name: &str,
    parse: impl FnOnce(&str, &str) -> Result<T, DomainError>,
) -> Result<Option<T>, FieldError> {
    raw_text(fields, name)?
        .map(|raw| parse(name, raw).map_err(|e| error(name, &e.rule)))
        .transpose()
}

/// A required field parsed by its domain rule.
fn required<T>(
    fields: &Fields,
    name: &str,
    parse: impl FnOnce(&str, &str) -> Result<T, DomainError>,
) -> Result<T, FieldError> {
    optional(fields, name, parse)?.ok_or_else(|| error(name, "is required"))
}

/// Optional text parsed by `parse` (a [`field`](crate::domain::text::field) alias, `Email`, `Phone`).
fn text<T: Into<String>>(
    fields: &Fields,
    name: &str,
    parse: impl FnOnce(&str, &str) -> Result<T, DomainError>,
) -> Result<Option<String>, FieldError> {
    Ok(optional(fields, name, parse)?.map(Into::into))
}

fn required_text<T: Into<String>>(
    fields: &Fields,
    name: &str,
    parse: impl FnOnce(&str, &str) -> Result<T, DomainError>,
) -> Result<String, FieldError> {
    Ok(required(fields, name, parse)?.into())
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

fn mrn(fields: &Fields, name: &str) -> Result<Mrn, FieldError> {
    required(fields, name, |_, raw| Mrn::parse(raw))
}

fn record_id(fields: &Fields, name: &str) -> Result<RecordId, FieldError> {
    required(fields, name, RecordId::parse)
}

fn date(fields: &Fields, name: &str) -> Result<Option<Date>, FieldError> {
    optional(fields, name, Date::parse)
}

fn lab_date(fields: &Fields, name: &str) -> Result<Option<DateOrTimestamp>, FieldError> {
    optional(fields, name, DateOrTimestamp::parse)
}

/// An enumeration value; `default` when the field is missing.
fn status<T>(
    fields: &Fields,
    name: &str,
    default: Option<T>,
    parse: fn(&str) -> Result<T, DomainError>,
) -> Result<T, FieldError> {
    optional(fields, name, |_, raw| parse(raw))?
        .or(default)
        .ok_or_else(|| error(name, "is required"))
}

pub(super) fn parse_provider(f: &Fields) -> Result<Provider, FieldError> {
    let accepting = match f.get("accepting_new_patients") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(value)) => *value,
        Some(_) => return Err(error("accepting_new_patients", "expected true or false")),
    };
    Ok(Provider {
        npi: required(f, "npi", |_, raw| Npi::parse(raw))?,
        name: required_text(f, "name", Label::parse)?,
        specialty: text(f, "specialty", Name::parse)?,
        department: text(f, "department", Name::parse)?,
        phone: text(f, "phone", Phone::parse)?,
        email: text(f, "email", Email::parse)?,
        accepting_new_patients: accepting,
    })
}

pub(super) fn parse_patient(f: &Fields) -> Result<Patient, FieldError> {
    Ok(Patient {
        mrn: mrn(f, "mrn")?,
        first_name: required_text(f, "first_name", Name::parse)?,
        last_name: required_text(f, "last_name", Name::parse)?,
        dob: required(f, "dob", |name, raw| {
            Date::parse(name, raw)?.not_after(name, Date::today())
        })?,
        gender: optional(f, "gender", |_, raw| Gender::parse(raw))?,
        ssn: text(f, "ssn", Code::parse)?,
        email: text(f, "email", Email::parse)?,
        phone: text(f, "phone", Phone::parse)?,
        street: text(f, "street", Label::parse)?,
        city: text(f, "city", Name::parse)?,
        state: text(f, "state", Short::parse)?,
        zip_code: text(f, "zip_code", Code::parse)?,
        insurance_provider: text(f, "insurance_provider", Label::parse)?,
        policy_number: text(f, "policy_number", Name::parse)?,
        group_number: text(f, "group_number", Name::parse)?,
        emergency_contact_name: text(f, "emergency_contact_name", Label::parse)?,
        emergency_contact_relationship: text(f, "emergency_contact_relationship", Name::parse)?,
        emergency_contact_phone: text(f, "emergency_contact_phone", Phone::parse)?,
    })
}

pub(super) fn parse_appointment(f: &Fields) -> Result<Appointment, FieldError> {
    let duration_minutes = optional_integer(f, "duration_minutes")?.unwrap_or(30);
    if !(1..=1440).contains(&duration_minutes) {
        return Err(error("duration_minutes", "expected 1 to 1440 minutes"));
    }
    Ok(Appointment {
        appointment_id: record_id(f, "appointment_id")?,
        patient_mrn: mrn(f, "patient_mrn")?,
        provider_npi: required(f, "provider_npi", |_, raw| Npi::parse(raw))?,
        provider_name: None,
        date: required(f, "date", Date::parse)?,
        time: required(f, "time", |_, raw| TimeOfDay::parse(raw))?,
        duration_minutes,
        appointment_type: text(f, "appointment_type", Name::parse)?,
        department: text(f, "department", Name::parse)?,
        location: text(f, "location", Label::parse)?,
        status: status(f, "status", None, AppointmentStatus::parse)?,
        reason: text(f, "reason", Reason::parse)?,
        notes: text(f, "notes", Note::parse)?,
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
        name: required_text(f, "name", Label::parse)?,
        dosage: text(f, "dosage", Name::parse)?,
        frequency: text(f, "frequency", Name::parse)?,
        route: text(f, "route", Short::parse)?,
        prescribed_date: date(f, "prescribed_date")?,
        prescriber: text(f, "prescriber", Label::parse)?,
        status: status(f, "status", None, MedicationStatus::parse)?,
        refills_remaining,
        notes: text(f, "notes", Note::parse)?,
    })
}

/// `make_id` supplies the id when the record has none (the earlier format).
pub(super) fn parse_allergy(
    f: &Fields,
    make_id: impl FnOnce() -> RecordId,
) -> Result<Allergy, FieldError> {
    let allergy_id = match raw_text(f, "allergy_id")? {
        Some(_) => record_id(f, "allergy_id")?,
        None => make_id(),
    };
    Ok(Allergy {
        allergy_id,
        patient_mrn: mrn(f, "patient_mrn")?,
        allergen: required_text(f, "allergen", Label::parse)?,
        reaction: text(f, "reaction", Reason::parse)?,
        severity: status(f, "severity", None, AllergySeverity::parse)?,
        onset_date: optional(f, "onset_date", |name, raw| {
            Date::parse(name, raw)?.not_after(name, Date::today())
        })?,
        status: status(
            f,
            "status",
            Some(AllergyStatus::Active),
            AllergyStatus::parse,
        )?,
        notes: text(f, "notes", Note::parse)?,
    })
}

/// `make_id` supplies the id when the record has none (the earlier format).
pub(super) fn parse_vitals(
    f: &Fields,
    make_id: impl FnOnce() -> RecordId,
) -> Result<VitalSigns, FieldError> {
    let vital_id = match raw_text(f, "vital_id")? {
        Some(_) => record_id(f, "vital_id")?,
        None => make_id(),
    };
    Ok(VitalSigns {
        vital_id,
        patient_mrn: mrn(f, "patient_mrn")?,
        recorded_date: required(f, "recorded_date", Timestamp::parse)?,
        systolic_bp: optional_integer(f, "systolic_bp")?,
        diastolic_bp: optional_integer(f, "diastolic_bp")?,
        heart_rate: optional_integer(f, "heart_rate")?,
        temperature: optional_number(f, "temperature")?,
        respiratory_rate: optional_integer(f, "respiratory_rate")?,
        oxygen_saturation: optional_integer(f, "oxygen_saturation")?,
        weight: optional_number(f, "weight")?,
        height: optional_number(f, "height")?,
        bmi: optional_number(f, "bmi")?,
        recorded_by: text(f, "recorded_by", Label::parse)?,
        notes: text(f, "notes", Note::parse)?,
    })
}

pub(super) fn parse_lab(f: &Fields) -> Result<LabResult, FieldError> {
    let results_json = raw_text(f, "results_json")?.map(str::to_owned);
    parse_lab_components(results_json.as_deref())?;
    Ok(LabResult {
        order_id: record_id(f, "order_id")?,
        patient_mrn: mrn(f, "patient_mrn")?,
        test_name: required_text(f, "test_name", Label::parse)?,
        ordered_date: lab_date(f, "ordered_date")?,
        collected_date: lab_date(f, "collected_date")?,
        resulted_date: lab_date(f, "resulted_date")?,
        status: status(f, "status", None, LabStatus::parse)?,
        ordered_by: text(f, "ordered_by", Label::parse)?,
        results_json,
    })
}
