//! The earlier system's JSON export format, as written by `export`: one object with the arrays
//! `providers, patients, appointments, medications, allergies, vitals, labs`, records linked by
//! `patient_mrn` and `provider_npi`, keys in the earlier system's order. Allergies and vitals carry
//! `allergy_id` / `vital_id`, which the earlier format lacked (import accepts files with or without them).

use serde::Serialize;

use crate::domain::clinical::{
    Allergy, Appointment, LabResult, Medication, Patient, Provider, VitalSigns,
};

/// The top-level keys, in file order.
pub const SECTIONS: [&str; 7] = [
    "providers",
    "patients",
    "appointments",
    "medications",
    "allergies",
    "vitals",
    "labs",
];

#[derive(Debug, Serialize)]
pub struct ProviderRecord<'a> {
    pub npi: &'a str,
    pub name: &'a str,
    pub specialty: &'a Option<String>,
    pub department: &'a Option<String>,
    pub phone: &'a Option<String>,
    pub email: &'a Option<String>,
    pub accepting_new_patients: bool,
}

impl<'a> From<&'a Provider> for ProviderRecord<'a> {
    fn from(p: &'a Provider) -> Self {
        Self {
            npi: p.npi.as_str(),
            name: &p.name,
            specialty: &p.specialty,
            department: &p.department,
            phone: &p.phone,
            email: &p.email,
            accepting_new_patients: p.accepting_new_patients,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct PatientRecord<'a> {
    pub mrn: &'a str,
    pub first_name: &'a str,
    pub last_name: &'a str,
    pub dob: &'a str,
    pub gender: &'a Option<String>,
    pub ssn: &'a Option<String>,
    pub email: &'a Option<String>,
    pub phone: &'a Option<String>,
    pub street: &'a Option<String>,
    pub city: &'a Option<String>,
    pub state: &'a Option<String>,
    pub zip_code: &'a Option<String>,
    pub insurance_provider: &'a Option<String>,
    pub policy_number: &'a Option<String>,
    pub group_number: &'a Option<String>,
    pub emergency_contact_name: &'a Option<String>,
    pub emergency_contact_relationship: &'a Option<String>,
    pub emergency_contact_phone: &'a Option<String>,
}

impl<'a> From<&'a Patient> for PatientRecord<'a> {
    fn from(p: &'a Patient) -> Self {
        Self {
            mrn: p.mrn.as_str(),
            first_name: &p.first_name,
            last_name: &p.last_name,
            dob: &p.dob,
            gender: &p.gender,
            ssn: &p.ssn,
            email: &p.email,
            phone: &p.phone,
            street: &p.street,
            city: &p.city,
            state: &p.state,
            zip_code: &p.zip_code,
            insurance_provider: &p.insurance_provider,
            policy_number: &p.policy_number,
            group_number: &p.group_number,
            emergency_contact_name: &p.emergency_contact_name,
            emergency_contact_relationship: &p.emergency_contact_relationship,
            emergency_contact_phone: &p.emergency_contact_phone,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct AppointmentRecord<'a> {
    pub appointment_id: &'a str,
    pub patient_mrn: &'a str,
    pub provider_npi: &'a str,
    pub date: &'a str,
    pub time: &'a str,
    pub duration_minutes: i64,
    pub appointment_type: &'a Option<String>,
    pub department: &'a Option<String>,
    pub location: &'a Option<String>,
    pub status: &'a str,
    pub reason: &'a Option<String>,
    pub notes: &'a Option<String>,
}

impl<'a> From<&'a Appointment> for AppointmentRecord<'a> {
    fn from(a: &'a Appointment) -> Self {
        Self {
            appointment_id: a.appointment_id.as_str(),
            patient_mrn: a.patient_mrn.as_str(),
            provider_npi: a.provider_npi.as_str(),
            date: &a.date,
            time: &a.time,
            duration_minutes: a.duration_minutes,
            appointment_type: &a.appointment_type,
            department: &a.department,
            location: &a.location,
            status: a.status.as_str(),
            reason: &a.reason,
            notes: &a.notes,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct MedicationRecord<'a> {
    pub medication_id: &'a str,
    pub patient_mrn: &'a str,
    pub name: &'a str,
    pub dosage: &'a Option<String>,
    pub frequency: &'a Option<String>,
    pub route: &'a Option<String>,
    pub prescribed_date: &'a Option<String>,
    pub prescriber: &'a Option<String>,
    pub status: &'a str,
    pub refills_remaining: i64,
    pub notes: &'a Option<String>,
}

impl<'a> From<&'a Medication> for MedicationRecord<'a> {
    fn from(m: &'a Medication) -> Self {
        Self {
            medication_id: m.medication_id.as_str(),
            patient_mrn: m.patient_mrn.as_str(),
            name: &m.name,
            dosage: &m.dosage,
            frequency: &m.frequency,
            route: &m.route,
            prescribed_date: &m.prescribed_date,
            prescriber: &m.prescriber,
            status: m.status.as_str(),
            refills_remaining: m.refills_remaining,
            notes: &m.notes,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct AllergyRecord<'a> {
    pub allergy_id: &'a str,
    pub patient_mrn: &'a str,
    pub allergen: &'a str,
    pub reaction: &'a Option<String>,
    pub severity: &'a str,
    pub onset_date: &'a Option<String>,
    pub status: &'a str,
    pub notes: &'a Option<String>,
}

impl<'a> From<&'a Allergy> for AllergyRecord<'a> {
    fn from(a: &'a Allergy) -> Self {
        Self {
            allergy_id: a.allergy_id.as_str(),
            patient_mrn: a.patient_mrn.as_str(),
            allergen: &a.allergen,
            reaction: &a.reaction,
            severity: a.severity.as_str(),
            onset_date: &a.onset_date,
            status: a.status.as_str(),
            notes: &a.notes,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct VitalSignsRecord<'a> {
    pub vital_id: &'a str,
    pub patient_mrn: &'a str,
    pub recorded_date: &'a str,
    pub systolic_bp: Option<i64>,
    pub diastolic_bp: Option<i64>,
    pub heart_rate: Option<i64>,
    pub temperature: Option<f64>,
    pub respiratory_rate: Option<i64>,
    pub oxygen_saturation: Option<i64>,
    pub weight: Option<f64>,
    pub height: Option<f64>,
    pub bmi: Option<f64>,
    pub recorded_by: &'a Option<String>,
    pub notes: &'a Option<String>,
}

impl<'a> From<&'a VitalSigns> for VitalSignsRecord<'a> {
    fn from(v: &'a VitalSigns) -> Self {
        Self {
            vital_id: v.vital_id.as_str(),
            patient_mrn: v.patient_mrn.as_str(),
            recorded_date: &v.recorded_date,
            systolic_bp: v.systolic_bp,
            diastolic_bp: v.diastolic_bp,
            heart_rate: v.heart_rate,
            temperature: v.temperature,
            respiratory_rate: v.respiratory_rate,
            oxygen_saturation: v.oxygen_saturation,
            weight: v.weight,
            height: v.height,
            bmi: v.bmi,
            recorded_by: &v.recorded_by,
            notes: &v.notes,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct LabRecord<'a> {
    pub order_id: &'a str,
    pub patient_mrn: &'a str,
    pub test_name: &'a str,
    pub ordered_date: &'a Option<String>,
    pub collected_date: &'a Option<String>,
    pub resulted_date: &'a Option<String>,
    pub status: &'a str,
    pub ordered_by: &'a Option<String>,
    pub results_json: &'a Option<String>,
}

impl<'a> From<&'a LabResult> for LabRecord<'a> {
    fn from(l: &'a LabResult) -> Self {
        Self {
            order_id: l.order_id.as_str(),
            patient_mrn: l.patient_mrn.as_str(),
            test_name: &l.test_name,
            ordered_date: &l.ordered_date,
            collected_date: &l.collected_date,
            resulted_date: &l.resulted_date,
            status: l.status.as_str(),
            ordered_by: &l.ordered_by,
            results_json: &l.results_json,
        }
    }
}
