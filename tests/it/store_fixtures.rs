//! Sample records for the storage tests.

use ehr_mcp::domain::clinical::{Appointment, AppointmentStatus, Patient, Provider};
use ehr_mcp::domain::ids::{Mrn, Npi, RecordId};
use ehr_mcp::store::Store;

pub fn mrn(raw: &str) -> Mrn {
    Mrn::parse(raw).expect("valid MRN")
}

pub fn npi(raw: &str) -> Npi {
    Npi::parse(raw).expect("valid NPI")
}

pub fn record_id(raw: &str) -> RecordId {
    RecordId::parse("id", raw).expect("valid id")
}

pub fn patient(mrn_text: &str, first_name: &str, last_name: &str, dob: &str) -> Patient {
    Patient {
        mrn: mrn(mrn_text),
        first_name: first_name.to_owned(),
        last_name: last_name.to_owned(),
        dob: dob.parse().unwrap(),
        gender: Some(ehr_mcp::domain::clinical::Gender::Male),
        ssn: None,
        email: Some(format!(
            "{}.{}@example.org",
            first_name.to_lowercase(),
            last_name.to_lowercase()
        )),
        phone: Some("+1-555-0101".to_owned()),
        street: Some("123 Main St".to_owned()),
        city: Some("Boston".to_owned()),
        state: Some("MA".to_owned()),
        zip_code: Some("02101".to_owned()),
        insurance_provider: Some("Aetna".to_owned()),
        policy_number: Some("AET123".to_owned()),
        group_number: None,
        emergency_contact_name: Some("Jane Roe".to_owned()),
        emergency_contact_relationship: Some("Spouse".to_owned()),
        emergency_contact_phone: Some("+1-555-0102".to_owned()),
    }
}

pub fn provider(npi_text: &str, name: &str, specialty: &str, department: &str) -> Provider {
    Provider {
        npi: npi(npi_text),
        name: name.to_owned(),
        specialty: Some(specialty.to_owned()),
        department: Some(department.to_owned()),
        phone: Some("+1-555-1000".to_owned()),
        email: Some("provider@hospital.org".to_owned()),
        accepting_new_patients: true,
    }
}

pub fn appointment(
    id: &str,
    mrn_text: &str,
    npi_text: &str,
    date: &str,
    time: &str,
) -> Appointment {
    Appointment {
        appointment_id: record_id(id),
        patient_mrn: mrn(mrn_text),
        provider_npi: npi(npi_text),
        provider_name: None,
        date: date.parse().unwrap(),
        time: time.parse().unwrap(),
        duration_minutes: 30,
        appointment_type: Some("Follow-up".to_owned()),
        department: Some("Primary Care".to_owned()),
        location: Some("Main Clinic - Room 201".to_owned()),
        status: AppointmentStatus::Scheduled,
        reason: Some("Check-up".to_owned()),
        notes: None,
    }
}

/// Stores `patient(mrn, first, last, dob)`; the test fails if the store refuses it.
pub async fn add_patient(
    store: &Store,
    mrn_text: &str,
    first_name: &str,
    last_name: &str,
    dob: &str,
) {
    store
        .insert_patient(&patient(mrn_text, first_name, last_name, dob))
        .await
        .expect("insert patient");
}

/// Books `appointment(id, mrn, npi, date, time)`; the test fails if the store refuses it.
pub async fn book(
    store: &Store,
    id: &str,
    mrn_text: &str,
    npi_text: &str,
    date: &str,
    time: &str,
) -> Appointment {
    store
        .book_appointment(&appointment(id, mrn_text, npi_text, date, time))
        .await
        .unwrap_or_else(|error| panic!("book {id}: {error:?}"))
}
