//! Data sets: the earlier system's JSON export format (import and export), the demo data set and the
//! deterministic synthetic generator. Everything here reaches the database through `store` only.

use crate::domain::clinical::{
    Allergy, Appointment, LabResult, Medication, Patient, Provider, VitalSigns,
};
use crate::store::StoreError;

mod clinical_records;
pub mod demo;
pub mod export;
pub mod format;
pub mod generator;
pub mod import;
pub mod load;
mod records;
pub mod synthetic;
mod validate;
#[rustfmt::skip]
mod vocabulary;

/// A validated set of records, in the order they are to be written (parents first).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Dataset {
    pub providers: Vec<Provider>,
    pub patients: Vec<Patient>,
    pub appointments: Vec<Appointment>,
    pub medications: Vec<Medication>,
    pub allergies: Vec<Allergy>,
    pub vitals: Vec<VitalSigns>,
    pub labs: Vec<LabResult>,
}

impl Dataset {
    /// How many records of each kind the set holds.
    pub fn counts(&self) -> RecordCounts {
        RecordCounts {
            providers: self.providers.len() as u64,
            patients: self.patients.len() as u64,
            appointments: self.appointments.len() as u64,
            medications: self.medications.len() as u64,
            allergies: self.allergies.len() as u64,
            vitals: self.vitals.len() as u64,
            labs: self.labs.len() as u64,
        }
    }
}

/// Record counts per kind (written, skipped or exported, depending on the context).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecordCounts {
    pub providers: u64,
    pub patients: u64,
    pub appointments: u64,
    pub medications: u64,
    pub allergies: u64,
    pub vitals: u64,
    pub labs: u64,
}

impl RecordCounts {
    pub fn add(&mut self, other: RecordCounts) {
        self.providers += other.providers;
        self.patients += other.patients;
        self.appointments += other.appointments;
        self.medications += other.medications;
        self.allergies += other.allergies;
        self.vitals += other.vitals;
        self.labs += other.labs;
    }
}

impl std::fmt::Display for RecordCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} providers, {} patients, {} appointments, {} medications, {} allergies, \
             {} vital signs, {} lab results",
            self.providers,
            self.patients,
            self.appointments,
            self.medications,
            self.allergies,
            self.vitals,
            self.labs
        )
    }
}

/// One bad value in an import file: which record (section, index and key) and which field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// `patients[12] (mrn MRN012)`.
    pub record: String,
    pub field: String,
    pub rule: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}, field {}: {}", self.record, self.field, self.rule)
    }
}

/// What can go wrong importing, exporting or generating a data set.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("cannot {action} {path}: {source}")]
    File {
        action: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the file is not valid JSON: {0}")]
    Json(#[source] serde_json::Error),
    #[error("the file does not have the export format: {0}")]
    Shape(String),
    /// The file breaks rules; nothing was written.
    #[error("{} invalid record(s), nothing was imported:\n  {}", .0.len(), display_problems(.0))]
    Invalid(Vec<Problem>),
    #[error(
        "the database already holds {patients} patients and {providers} providers; \
         import with --merge to add the file's records by public id, or use an empty database"
    )]
    NotEmpty { patients: i64, providers: i64 },
    #[error("the database already holds synthetic patients; use an empty database")]
    SyntheticPresent,
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn display_problems(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n  ")
}
