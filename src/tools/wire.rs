//! Wire shapes of the records, in the earlier system's field names, built from domain types by explicit
//! conversion. Result envelopes (`{"status": "success", …}`) live with their tools. Only `tools/` knows
//! these shapes.

use schemars::JsonSchema;
use serde::Serialize;

use crate::domain::clinical::{
    Allergy, Appointment, LabComponent, LabResult, Medication, Patient, Provider, VitalSigns,
};

/// The `status` of every successful result.
#[derive(Debug, Clone, Copy, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Success {
    Success,
}

/// The `status` of a search result: `not_found` when nothing matched (the earlier system's word).
#[derive(Debug, Clone, Copy, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SearchStatus {
    Success,
    NotFound,
}

/// A patient as the earlier system answered: the address and the insurance nested.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PatientWire {
    pub mrn: String,
    /// "First Last".
    pub name: String,
    pub first_name: String,
    pub last_name: String,
    /// Date of birth, YYYY-MM-DD.
    pub dob: String,
    pub gender: Option<String>,
    /// Social security number, masked to its last four digits.
    pub ssn: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    /// Always present; its fields are null when unknown.
    pub address: AddressWire,
    /// Null when no insurance is recorded.
    pub insurance: Option<InsuranceWire>,
    /// Null when no emergency contact is recorded.
    pub emergency_contact: Option<EmergencyContactWire>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AddressWire {
    pub street: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    /// ZIP code (the `zip_code` argument of create_patient and update_patient).
    pub zip: Option<String>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct InsuranceWire {
    /// The insurer (the `insurance_provider` argument).
    pub provider: Option<String>,
    pub policy_number: Option<String>,
    pub group_number: Option<String>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct EmergencyContactWire {
    pub name: Option<String>,
    pub relationship: Option<String>,
    pub phone: Option<String>,
}

impl From<&Patient> for PatientWire {
    fn from(patient: &Patient) -> Self {
        let insured = patient.insurance_provider.is_some() || patient.policy_number.is_some();
        let has_contact =
            patient.emergency_contact_name.is_some() || patient.emergency_contact_phone.is_some();
        Self {
            mrn: patient.mrn.to_string(),
            name: format!("{} {}", patient.first_name, patient.last_name),
            first_name: patient.first_name.clone(),
            last_name: patient.last_name.clone(),
            dob: patient.dob.to_string(),
            gender: patient.gender.map(|gender| gender.as_str().to_owned()),
            ssn: patient.ssn.as_deref().map(mask_ssn),
            email: patient.email.clone(),
            phone: patient.phone.clone(),
            address: AddressWire {
                street: patient.street.clone(),
                city: patient.city.clone(),
                state: patient.state.clone(),
                zip: patient.zip_code.clone(),
            },
            insurance: insured.then(|| InsuranceWire {
                provider: patient.insurance_provider.clone(),
                policy_number: patient.policy_number.clone(),
                group_number: patient.group_number.clone(),
            }),
            emergency_contact: has_contact.then(|| EmergencyContactWire {
                name: patient.emergency_contact_name.clone(),
                relationship: patient.emergency_contact_relationship.clone(),
                phone: patient.emergency_contact_phone.clone(),
            }),
        }
    }
}

/// Shows only the last four digits of an SSN (`***-**-1234`), whatever form it was stored in.
pub fn mask_ssn(ssn: &str) -> String {
    let digits: Vec<char> = ssn.chars().filter(char::is_ascii_digit).collect();
    let last_four: String = digits[digits.len().saturating_sub(4)..].iter().collect();
    format!("***-**-{last_four}")
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ProviderWire {
    pub npi: String,
    pub name: String,
    pub specialty: Option<String>,
    pub department: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub accepting_new_patients: bool,
}

impl From<&Provider> for ProviderWire {
    fn from(provider: &Provider) -> Self {
        Self {
            npi: provider.npi.to_string(),
            name: provider.name.clone(),
            specialty: provider.specialty.clone(),
            department: provider.department.clone(),
            phone: provider.phone.clone(),
            email: provider.email.clone(),
            accepting_new_patients: provider.accepting_new_patients,
        }
    }
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AppointmentWire {
    pub appointment_id: String,
    pub patient_mrn: String,
    pub provider_npi: String,
    /// The provider's name (the earlier system's key; `provider_name` is the same).
    pub provider: Option<String>,
    pub provider_name: Option<String>,
    /// YYYY-MM-DD.
    pub date: String,
    /// As booked: "10:00 AM" or "14:30".
    pub time: String,
    pub duration_minutes: i64,
    /// For example "Office Visit" (the earlier system's key; `appointment_type` is the same).
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub appointment_type: Option<String>,
    pub department: Option<String>,
    pub location: Option<String>,
    /// scheduled, confirmed, checked_in, completed, cancelled or no_show.
    pub status: String,
    pub reason: Option<String>,
    pub notes: Option<String>,
}

impl From<&Appointment> for AppointmentWire {
    fn from(appointment: &Appointment) -> Self {
        Self {
            appointment_id: appointment.appointment_id.to_string(),
            patient_mrn: appointment.patient_mrn.to_string(),
            provider_npi: appointment.provider_npi.to_string(),
            provider: appointment.provider_name.clone(),
            provider_name: appointment.provider_name.clone(),
            date: appointment.date.to_string(),
            time: appointment.time.to_string(),
            duration_minutes: appointment.duration_minutes,
            kind: appointment.appointment_type.clone(),
            appointment_type: appointment.appointment_type.clone(),
            department: appointment.department.clone(),
            location: appointment.location.clone(),
            status: appointment.status.as_str().to_owned(),
            reason: appointment.reason.clone(),
            notes: appointment.notes.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct MedicationWire {
    pub medication_id: String,
    pub patient_mrn: String,
    /// The medication's name (the `medication_name` argument of `prescribe_medication`).
    pub name: String,
    pub dosage: Option<String>,
    pub frequency: Option<String>,
    pub route: Option<String>,
    pub prescribed_date: Option<String>,
    pub prescriber: Option<String>,
    /// active, on_hold, completed or discontinued.
    pub status: String,
    pub refills_remaining: i64,
    pub notes: Option<String>,
}

impl From<&Medication> for MedicationWire {
    fn from(medication: &Medication) -> Self {
        Self {
            medication_id: medication.medication_id.to_string(),
            patient_mrn: medication.patient_mrn.to_string(),
            name: medication.name.clone(),
            dosage: medication.dosage.clone(),
            frequency: medication.frequency.clone(),
            route: medication.route.clone(),
            prescribed_date: medication.prescribed_date.map(|date| date.to_string()),
            prescriber: medication.prescriber.clone(),
            status: medication.status.as_str().to_owned(),
            refills_remaining: medication.refills_remaining,
            notes: medication.notes.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AllergyWire {
    pub allergy_id: String,
    pub patient_mrn: String,
    pub allergen: String,
    pub reaction: Option<String>,
    /// mild, moderate, severe or life_threatening.
    pub severity: String,
    pub onset_date: Option<String>,
    /// active, inactive or resolved.
    pub status: String,
    pub notes: Option<String>,
}

impl From<&Allergy> for AllergyWire {
    fn from(allergy: &Allergy) -> Self {
        Self {
            allergy_id: allergy.allergy_id.to_string(),
            patient_mrn: allergy.patient_mrn.to_string(),
            allergen: allergy.allergen.clone(),
            reaction: allergy.reaction.clone(),
            severity: allergy.severity.as_str().to_owned(),
            onset_date: allergy.onset_date.map(|date| date.to_string()),
            status: allergy.status.as_str().to_owned(),
            notes: allergy.notes.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct VitalSignsWire {
    pub vital_id: String,
    pub patient_mrn: String,
    /// ISO timestamp of the measurement.
    pub recorded_date: String,
    pub systolic_bp: Option<i64>,
    pub diastolic_bp: Option<i64>,
    /// "128/82" when both pressures were recorded.
    pub blood_pressure: Option<String>,
    /// Beats per minute.
    pub heart_rate: Option<i64>,
    /// Degrees Fahrenheit.
    pub temperature: Option<f64>,
    /// Breaths per minute.
    pub respiratory_rate: Option<i64>,
    /// Percent.
    pub oxygen_saturation: Option<i64>,
    /// Pounds.
    pub weight: Option<f64>,
    /// Inches.
    pub height: Option<f64>,
    pub bmi: Option<f64>,
    pub recorded_by: Option<String>,
    pub notes: Option<String>,
}

impl From<&VitalSigns> for VitalSignsWire {
    fn from(vitals: &VitalSigns) -> Self {
        Self {
            vital_id: vitals.vital_id.to_string(),
            patient_mrn: vitals.patient_mrn.to_string(),
            recorded_date: vitals.recorded_date.to_string(),
            systolic_bp: vitals.systolic_bp,
            diastolic_bp: vitals.diastolic_bp,
            blood_pressure: vitals
                .systolic_bp
                .zip(vitals.diastolic_bp)
                .map(|(systolic, diastolic)| format!("{systolic}/{diastolic}")),
            heart_rate: vitals.heart_rate,
            temperature: vitals.temperature,
            respiratory_rate: vitals.respiratory_rate,
            oxygen_saturation: vitals.oxygen_saturation,
            weight: vitals.weight,
            height: vitals.height,
            bmi: vitals.bmi,
            recorded_by: vitals.recorded_by.clone(),
            notes: vitals.notes.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct LabComponentWire {
    pub component: String,
    pub value: String,
    pub unit: Option<String>,
    /// Reference range, e.g. "4.5-11.0".
    pub reference: Option<String>,
    /// normal, high, low, critical … as reported.
    pub flag: Option<String>,
}

impl From<&LabComponent> for LabComponentWire {
    fn from(component: &LabComponent) -> Self {
        Self {
            component: component.component.clone(),
            value: component.value.clone(),
            unit: component.unit.clone(),
            reference: component.reference.clone(),
            flag: component.flag.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct LabResultWire {
    pub order_id: String,
    pub patient_mrn: String,
    pub test_name: String,
    pub ordered_date: Option<String>,
    pub collected_date: Option<String>,
    pub resulted_date: Option<String>,
    /// ordered, collected, in_progress, preliminary, final, corrected or cancelled.
    pub status: String,
    pub ordered_by: Option<String>,
    /// The result components, parsed (empty until resulted).
    pub results: Vec<LabComponentWire>,
}

impl From<&LabResult> for LabResultWire {
    fn from(lab: &LabResult) -> Self {
        // A stored `results_json` that does not parse is shown as no components rather than failing the read.
        let components = lab.components().unwrap_or_default();
        Self {
            order_id: lab.order_id.to_string(),
            patient_mrn: lab.patient_mrn.to_string(),
            test_name: lab.test_name.clone(),
            ordered_date: lab.ordered_date.map(|date| date.to_string()),
            collected_date: lab.collected_date.map(|date| date.to_string()),
            resulted_date: lab.resulted_date.map(|date| date.to_string()),
            status: lab.status.as_str().to_owned(),
            ordered_by: lab.ordered_by.clone(),
            results: components.iter().map(LabComponentWire::from).collect(),
        }
    }
}

/// Cuts `rows`, fetched with one more than `limit`, to `limit`; true when there were more. A list is never
/// cut silently: results say `truncated` and how to get the rest.
pub fn truncate<T>(mut rows: Vec<T>, limit: u32) -> (Vec<T>, bool) {
    let limit = limit as usize;
    let truncated = rows.len() > limit;
    rows.truncate(limit);
    (rows, truncated)
}

/// The note of a truncated list.
pub fn truncated_note(what: &str, limit: u32, max: u32) -> String {
    format!(
        "showing the first {limit} {what}; more exist: pass a larger limit (up to {max}) to see them"
    )
}

/// Converts a slice of domain records to their wire shapes.
pub fn all<'a, D: 'a, W: From<&'a D>>(records: &'a [D]) -> Vec<W> {
    records.iter().map(W::from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_list_says_so() {
        assert_eq!(truncate(vec![1, 2, 3], 2), (vec![1, 2], true));
        assert_eq!(truncate(vec![1, 2], 2), (vec![1, 2], false));
    }

    #[test]
    fn ssn_is_always_masked() {
        assert_eq!(mask_ssn("123-45-6789"), "***-**-6789");
        assert_eq!(mask_ssn("***-**-1234"), "***-**-1234");
        assert_eq!(mask_ssn(""), "***-**-");
    }
}
