//! Reading an export file into a [`Dataset`]: every field of every record checked, each problem named by
//! its record (section, index, key) and field. Values are kept as written so an export reproduces them.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::format::SECTIONS;
use super::records::{
    parse_allergy, parse_appointment, parse_lab, parse_medication, parse_patient, parse_provider,
    parse_vitals,
};
use super::{Dataset, DatasetError, Problem};
use crate::domain::ids::{RecordId, RecordKind};

/// A rule broken by one field of a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct FieldError {
    pub field: String,
    pub rule: String,
}

impl From<crate::domain::DomainError> for FieldError {
    fn from(error: crate::domain::DomainError) -> Self {
        Self {
            field: error.field,
            rule: error.rule,
        }
    }
}

pub(super) type Fields = Map<String, Value>;

/// Most problems listed in one refusal.
const MAX_PROBLEMS: usize = 25;

/// Parses and checks every record of an export file. Cross-record rules that need the database
/// (references to records not in the file) are left to [`check_references`].
pub(super) fn parse_export(root: &Value) -> Result<Dataset, DatasetError> {
    let sections = root
        .as_object()
        .ok_or_else(|| DatasetError::Shape("expected a JSON object at the top level".to_owned()))?;
    check_top_level_keys(sections)?;
    let mut parser = Parser {
        sections,
        problems: Vec::new(),
    };
    let mut dataset = Dataset {
        providers: parser.section("providers", "npi", parse_provider),
        patients: parser.section("patients", "mrn", parse_patient),
        appointments: parser.section("appointments", "appointment_id", parse_appointment),
        medications: parser.section("medications", "medication_id", parse_medication),
        allergies: Vec::new(),
        vitals: Vec::new(),
        labs: parser.section("labs", "order_id", parse_lab),
    };
    let mut repeats = HashMap::new();
    dataset.allergies = parser.section("allergies", "allergy_id", |f| {
        parse_allergy(f, || content_id(RecordKind::Allergy, f, &mut repeats))
    });
    dataset.vitals = parser.section("vitals", "vital_id", |f| {
        parse_vitals(f, || content_id(RecordKind::VitalSigns, f, &mut repeats))
    });
    let mut problems = parser.problems;
    if problems.is_empty() {
        problems.extend(duplicate_keys(&dataset));
        problems.extend(double_bookings(&dataset));
    }
    if problems.is_empty() {
        Ok(dataset)
    } else {
        problems.truncate(MAX_PROBLEMS);
        Err(DatasetError::Invalid(problems))
    }
}

/// Refuses a file whose top level is not the export's: an unknown key (`"Patients"`, `"name"`) or no
/// section at all (`{}`) would otherwise import nothing and look like success.
fn check_top_level_keys(sections: &Fields) -> Result<(), DatasetError> {
    let expected = SECTIONS.join(", ");
    if let Some(unknown) = sections
        .keys()
        .find(|key| !SECTIONS.contains(&key.as_str()))
    {
        let hint = SECTIONS
            .iter()
            .find(|section| section.eq_ignore_ascii_case(unknown))
            .map(|section| format!(" (keys are lower case: did you mean \"{section}\"?)"))
            .unwrap_or_default();
        return Err(DatasetError::Shape(format!(
            "unknown top-level key \"{}\"{hint}; the export has the keys {expected}; nothing was \
             imported",
            unknown.chars().take(40).collect::<String>().escape_debug()
        )));
    }
    if sections.is_empty() {
        return Err(DatasetError::Shape(format!(
            "the file has none of the export's keys ({expected}); nothing was imported"
        )));
    }
    Ok(())
}

struct Parser<'a> {
    sections: &'a Fields,
    problems: Vec<Problem>,
}

impl Parser<'_> {
    fn section<T>(
        &mut self,
        name: &str,
        key_field: &str,
        mut parse: impl FnMut(&Fields) -> Result<T, FieldError>,
    ) -> Vec<T> {
        let records = match self.sections.get(name) {
            None | Some(Value::Null) => return Vec::new(),
            Some(Value::Array(records)) => records,
            Some(_) => {
                self.problems.push(Problem {
                    record: name.to_owned(),
                    field: name.to_owned(),
                    rule: "expected a list of records".to_owned(),
                });
                return Vec::new();
            }
        };
        let mut parsed = Vec::with_capacity(records.len());
        for (index, record) in records.iter().enumerate() {
            let result = record
                .as_object()
                .ok_or_else(|| FieldError {
                    field: "(record)".to_owned(),
                    rule: "expected a JSON object".to_owned(),
                })
                .and_then(&mut parse);
            match result {
                Ok(value) => parsed.push(value),
                Err(error) => self.problems.push(Problem {
                    record: label(name, index, key_field, record.get(key_field)),
                    field: error.field,
                    rule: error.rule,
                }),
            }
        }
        parsed
    }
}

/// `patients[12] (mrn MRN012)`, or `vitals[3]` when the record has no key.
fn label(section: &str, index: usize, key_field: &str, key: Option<&Value>) -> String {
    match key.and_then(Value::as_str) {
        Some(key) => format!("{section}[{index}] ({key_field} {key})"),
        None => format!("{section}[{index}]"),
    }
}

/// A stable id for a record the earlier format left without one: a hash of its content, so importing
/// the same file twice (with `--merge`) recognises the same records. Identical records in one file are
/// numbered in order (`-2`, `-3`…).
fn content_id(kind: RecordKind, fields: &Fields, repeats: &mut HashMap<String, u32>) -> RecordId {
    let digest = Sha256::digest(Value::Object(fields.clone()).to_string().as_bytes());
    let hex: String = digest[..5].iter().map(|b| format!("{b:02X}")).collect();
    let base = format!("{}{hex}", kind.prefix());
    let seen = repeats.entry(base.clone()).or_insert(0);
    *seen += 1;
    let text = if *seen == 1 {
        base
    } else {
        format!("{base}-{seen}")
    };
    // A prefix, upper-case hex and a number always satisfy the id rule.
    RecordId::parse("id", &text).unwrap_or_else(|_| RecordId::generate(kind))
}

fn duplicate_keys(dataset: &Dataset) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut check = |section: &str, field: &str, keys: Vec<&str>| {
        let mut seen = HashMap::new();
        for (index, key) in keys.into_iter().enumerate() {
            if let Some(first) = seen.insert(key, index) {
                problems.push(Problem {
                    record: format!("{section}[{index}] ({field} {key})"),
                    field: field.to_owned(),
                    rule: format!("duplicate of {section}[{first}]"),
                });
            }
        }
    };
    let d = dataset;
    check(
        "providers",
        "npi",
        d.providers.iter().map(|p| p.npi.as_str()).collect(),
    );
    check(
        "patients",
        "mrn",
        d.patients.iter().map(|p| p.mrn.as_str()).collect(),
    );
    check(
        "appointments",
        "appointment_id",
        d.appointments
            .iter()
            .map(|a| a.appointment_id.as_str())
            .collect(),
    );
    check(
        "medications",
        "medication_id",
        d.medications
            .iter()
            .map(|m| m.medication_id.as_str())
            .collect(),
    );
    check(
        "allergies",
        "allergy_id",
        d.allergies.iter().map(|a| a.allergy_id.as_str()).collect(),
    );
    check(
        "vitals",
        "vital_id",
        d.vitals.iter().map(|v| v.vital_id.as_str()).collect(),
    );
    check(
        "labs",
        "order_id",
        d.labs.iter().map(|l| l.order_id.as_str()).collect(),
    );
    problems
}

/// Two active appointments of one provider in one slot (the database would refuse the second).
fn double_bookings(dataset: &Dataset) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut held = HashMap::new();
    for (index, appointment) in dataset.appointments.iter().enumerate() {
        if !appointment.status.holds_slot() {
            continue;
        }
        let slot = (
            appointment.provider_npi.as_str(),
            appointment.date,
            appointment.time.slot(),
        );
        if let Some(first) = held.insert(slot, index) {
            problems.push(Problem {
                record: format!(
                    "appointments[{index}] (appointment_id {})",
                    appointment.appointment_id
                ),
                field: "time".to_owned(),
                rule: format!("the provider's slot is already booked by appointments[{first}]"),
            });
        }
    }
    problems
}

/// MRNs and NPIs the records refer to that the file itself does not define.
pub(super) fn outside_references(dataset: &Dataset) -> (HashSet<String>, HashSet<String>) {
    let patients: HashSet<&str> = dataset.patients.iter().map(|p| p.mrn.as_str()).collect();
    let providers: HashSet<&str> = dataset.providers.iter().map(|p| p.npi.as_str()).collect();
    let mut mrns = HashSet::new();
    let mut npis = HashSet::new();
    let referenced = dataset
        .appointments
        .iter()
        .map(|a| a.patient_mrn.as_str())
        .chain(dataset.medications.iter().map(|m| m.patient_mrn.as_str()))
        .chain(dataset.allergies.iter().map(|a| a.patient_mrn.as_str()))
        .chain(dataset.vitals.iter().map(|v| v.patient_mrn.as_str()))
        .chain(dataset.labs.iter().map(|l| l.patient_mrn.as_str()));
    for mrn in referenced {
        if !patients.contains(mrn) {
            mrns.insert(mrn.to_owned());
        }
    }
    for appointment in &dataset.appointments {
        if !providers.contains(appointment.provider_npi.as_str()) {
            npis.insert(appointment.provider_npi.as_str().to_owned());
        }
    }
    (mrns, npis)
}

/// Problems for references that neither the file nor the database resolves (`unknown_*`).
pub(super) fn check_references(
    dataset: &Dataset,
    unknown_mrns: &HashSet<String>,
    unknown_npis: &HashSet<String>,
) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut check = |section: &str, key_field: &str, records: Vec<(&str, &str)>| {
        for (index, (key, mrn)) in records.into_iter().enumerate() {
            if unknown_mrns.contains(mrn) {
                problems.push(Problem {
                    record: format!("{section}[{index}] ({key_field} {key})"),
                    field: "patient_mrn".to_owned(),
                    rule: format!("no patient {mrn} in the file or the database"),
                });
            }
        }
    };
    let d = dataset;
    check(
        "appointments",
        "appointment_id",
        d.appointments
            .iter()
            .map(|a| (a.appointment_id.as_str(), a.patient_mrn.as_str()))
            .collect(),
    );
    check(
        "medications",
        "medication_id",
        d.medications
            .iter()
            .map(|m| (m.medication_id.as_str(), m.patient_mrn.as_str()))
            .collect(),
    );
    check(
        "allergies",
        "allergy_id",
        d.allergies
            .iter()
            .map(|a| (a.allergy_id.as_str(), a.patient_mrn.as_str()))
            .collect(),
    );
    check(
        "vitals",
        "vital_id",
        d.vitals
            .iter()
            .map(|v| (v.vital_id.as_str(), v.patient_mrn.as_str()))
            .collect(),
    );
    check(
        "labs",
        "order_id",
        d.labs
            .iter()
            .map(|l| (l.order_id.as_str(), l.patient_mrn.as_str()))
            .collect(),
    );
    for (index, appointment) in dataset.appointments.iter().enumerate() {
        let npi = appointment.provider_npi.as_str();
        if unknown_npis.contains(npi) {
            problems.push(Problem {
                record: format!(
                    "appointments[{index}] (appointment_id {})",
                    appointment.appointment_id
                ),
                field: "provider_npi".to_owned(),
                rule: format!("no provider {npi} in the file or the database"),
            });
        }
    }
    problems.truncate(MAX_PROBLEMS);
    problems
}
