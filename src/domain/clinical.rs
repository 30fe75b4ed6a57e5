//! Clinical records and their enumerations. Records are plain data of parsed values; the store fills
//! them, tools convert them to the wire shapes. Their serde form is a record of the earlier system's
//! export file (its keys, in its order), which `dataset::export` writes.

use serde::{Deserialize, Serialize};

use super::DomainError;
use super::ids::{Mrn, Npi, RecordId};
use super::time::{Date, DateOrTimestamp, TimeOfDay, Timestamp};

/// Defines a closed set of lower-case text values with `as_str`, `parse` and `ALL`.
macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident, $field:literal, { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(raw: &str) -> Result<Self, DomainError> {
                let wanted = raw.trim();
                Self::ALL
                    .iter()
                    .copied()
                    .find(|value| value.as_str().eq_ignore_ascii_case(wanted))
                    .ok_or_else(|| DomainError::new($field, format!(
                        "expected one of {}", Self::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ")
                    )))
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(deserializer)?;
                Self::parse(&raw).map_err(serde::de::Error::custom)
            }
        }
    };
}

text_enum!(
    /// Administrative gender as the earlier system recorded it.
    Gender, "gender", { Male => "Male", Female => "Female", Other => "Other", Unknown => "Unknown" }
);

text_enum!(
    /// Appointment lifecycle. `scheduled`, `confirmed` and `checked_in` hold the provider's slot.
    AppointmentStatus, "status", {
        Scheduled => "scheduled", Confirmed => "confirmed", CheckedIn => "checked_in",
        Completed => "completed", Cancelled => "cancelled", NoShow => "no_show",
    }
);

impl AppointmentStatus {
    /// Statuses that occupy the provider's slot (the database's partial unique index uses the same list).
    pub const HOLDING_SLOT: [AppointmentStatus; 3] =
        [Self::Scheduled, Self::Confirmed, Self::CheckedIn];

    pub fn holds_slot(self) -> bool {
        Self::HOLDING_SLOT.contains(&self)
    }
}

text_enum!(
    /// Medication order status.
    MedicationStatus, "status", {
        Active => "active", OnHold => "on_hold", Completed => "completed", Discontinued => "discontinued",
    }
);

text_enum!(
    /// Allergy reaction severity.
    AllergySeverity, "severity", {
        Mild => "mild", Moderate => "moderate", Severe => "severe", LifeThreatening => "life_threatening",
    }
);

text_enum!(
    /// Whether an allergy is current.
    AllergyStatus, "status", { Active => "active", Inactive => "inactive", Resolved => "resolved" }
);

text_enum!(
    /// Laboratory order status.
    LabStatus, "status", {
        Ordered => "ordered", Collected => "collected", InProgress => "in_progress",
        Preliminary => "preliminary", Final => "final", Corrected => "corrected", Cancelled => "cancelled",
    }
);

/// Patient demographics. Holds PHI: its `Debug` shows the MRN redacted and nothing else.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Patient {
    pub mrn: Mrn,
    pub first_name: String,
    pub last_name: String,
    pub dob: Date,
    pub gender: Option<Gender>,
    pub ssn: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub street: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub zip_code: Option<String>,
    pub insurance_provider: Option<String>,
    pub policy_number: Option<String>,
    pub group_number: Option<String>,
    pub emergency_contact_name: Option<String>,
    pub emergency_contact_relationship: Option<String>,
    pub emergency_contact_phone: Option<String>,
}

impl std::fmt::Debug for Patient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Patient")
            .field("mrn", &self.mrn)
            .finish_non_exhaustive()
    }
}

/// Changes to a patient's demographics; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PatientUpdate {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub dob: Option<Date>,
    pub gender: Option<Gender>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub street: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub zip_code: Option<String>,
    pub insurance_provider: Option<String>,
    pub policy_number: Option<String>,
    pub group_number: Option<String>,
    pub emergency_contact_name: Option<String>,
    pub emergency_contact_relationship: Option<String>,
    pub emergency_contact_phone: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Provider {
    pub npi: Npi,
    pub name: String,
    pub specialty: Option<String>,
    pub department: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub accepting_new_patients: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Appointment {
    pub appointment_id: RecordId,
    pub patient_mrn: Mrn,
    pub provider_npi: Npi,
    /// The provider's display name (joined, not stored on the appointment; not in the export).
    #[serde(skip)]
    pub provider_name: Option<String>,
    pub date: Date,
    /// As written when booked (`10:00 AM` or `14:30`), with its slot.
    pub time: TimeOfDay,
    pub duration_minutes: i64,
    pub appointment_type: Option<String>,
    pub department: Option<String>,
    pub location: Option<String>,
    pub status: AppointmentStatus,
    pub reason: Option<String>,
    pub notes: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Medication {
    pub medication_id: RecordId,
    pub patient_mrn: Mrn,
    pub name: String,
    pub dosage: Option<String>,
    pub frequency: Option<String>,
    pub route: Option<String>,
    pub prescribed_date: Option<Date>,
    pub prescriber: Option<String>,
    pub status: MedicationStatus,
    pub refills_remaining: i64,
    pub notes: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Allergy {
    pub allergy_id: RecordId,
    pub patient_mrn: Mrn,
    pub allergen: String,
    pub reaction: Option<String>,
    pub severity: AllergySeverity,
    pub onset_date: Option<Date>,
    pub status: AllergyStatus,
    pub notes: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VitalSigns {
    pub vital_id: RecordId,
    pub patient_mrn: Mrn,
    pub recorded_date: Timestamp,
    pub systolic_bp: Option<i64>,
    pub diastolic_bp: Option<i64>,
    pub heart_rate: Option<i64>,
    /// Degrees Fahrenheit, as the earlier system recorded.
    pub temperature: Option<f64>,
    pub respiratory_rate: Option<i64>,
    pub oxygen_saturation: Option<i64>,
    /// Pounds.
    pub weight: Option<f64>,
    /// Inches.
    pub height: Option<f64>,
    pub bmi: Option<f64>,
    pub recorded_by: Option<String>,
    pub notes: Option<String>,
}

/// Body-mass index from weight in pounds and height in inches, rounded to one decimal.
pub fn bmi_from_imperial(weight_lb: f64, height_in: f64) -> Option<f64> {
    if weight_lb <= 0.0 || height_in <= 0.0 {
        return None;
    }
    let bmi = 703.0 * weight_lb / (height_in * height_in);
    Some((bmi * 10.0).round() / 10.0)
}

/// One analyte of a lab result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabComponent {
    pub component: String,
    pub value: String,
    #[serde(default)]
    pub unit: Option<String>,
    #[serde(default)]
    pub reference: Option<String>,
    #[serde(default)]
    pub flag: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabResult {
    pub order_id: RecordId,
    pub patient_mrn: Mrn,
    pub test_name: String,
    pub ordered_date: Option<DateOrTimestamp>,
    pub collected_date: Option<DateOrTimestamp>,
    pub resulted_date: Option<DateOrTimestamp>,
    pub status: LabStatus,
    pub ordered_by: Option<String>,
    /// The components as the JSON text they were received in (kept verbatim for a lossless export);
    /// [`LabResult::components`] parses it.
    pub results_json: Option<String>,
}

impl LabResult {
    pub fn components(&self) -> Result<Vec<LabComponent>, DomainError> {
        parse_lab_components(self.results_json.as_deref())
    }
}

/// Parses the earlier system's `results_json` text: a JSON list of components (or null/empty).
pub fn parse_lab_components(raw: Option<&str>) -> Result<Vec<LabComponent>, DomainError> {
    match raw.map(str::trim) {
        None | Some("") | Some("null") => Ok(Vec::new()),
        Some(text) => serde_json::from_str(text).map_err(|error| {
            DomainError::new(
                "results_json",
                format!(
                    "expected a JSON list of {{component, value, unit, reference, flag}} ({error})"
                ),
            )
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enumerations_parse_case_insensitively_and_name_the_choices() {
        assert_eq!(
            AppointmentStatus::parse("Scheduled"),
            Ok(AppointmentStatus::Scheduled)
        );
        let error = AllergySeverity::parse("deadly")
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            error.as_deref(),
            Some("invalid severity: expected one of mild, moderate, severe, life_threatening")
        );
    }

    #[test]
    fn bmi_matches_the_earlier_system() {
        assert_eq!(bmi_from_imperial(185.0, 70.0), Some(26.5));
        assert_eq!(bmi_from_imperial(185.0, 0.0), None);
    }

    #[test]
    fn lab_components_parse_from_text() {
        let raw = r#"[{"component": "WBC", "value": "7.5", "unit": "K/uL", "reference": "4.5-11.0", "flag": "normal"}]"#;
        let parsed = parse_lab_components(Some(raw));
        assert_eq!(parsed.map(|c| c.len()), Ok(1));
        assert!(parse_lab_components(Some("{not json")).is_err());
        assert_eq!(parse_lab_components(None), Ok(Vec::new()));
    }
}
