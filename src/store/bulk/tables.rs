//! The per-table multi-row inserts of [`super`]: column lists and how each record binds.

use super::{OnExisting, RowIds, insert_chunks, insert_chunks_returning, row_id};
use crate::domain::clinical::Gender;
use crate::domain::clinical::{
    Allergy, Appointment, LabResult, Medication, Patient, Provider, VitalSigns,
};
use crate::store::StoreError;
use crate::store::float8::Float8;
use crate::store::tx::Tx;

pub async fn insert_providers(
    tx: &mut Tx<'_>,
    providers: &[Provider],
    on_existing: OnExisting,
) -> Result<RowIds, StoreError> {
    #[rustfmt::skip]
    const COLUMNS: &[&str] = &[
        "npi", "name", "specialty", "department", "phone", "email",
        "accepting_new_patients", "created_at", "updated_at",
    ];
    insert_chunks_returning(
        tx,
        "providers",
        COLUMNS,
        on_existing,
        providers,
        |q, p, now| {
            q.bind(p.npi.as_str())
                .bind(&p.name)
                .bind(&p.specialty)
                .bind(&p.department)
                .bind(&p.phone)
                .bind(&p.email)
                .bind(p.accepting_new_patients)
                .bind(now)
                .bind(now)
        },
    )
    .await
}

pub async fn insert_patients(
    tx: &mut Tx<'_>,
    patients: &[Patient],
    on_existing: OnExisting,
) -> Result<RowIds, StoreError> {
    #[rustfmt::skip]
    const COLUMNS: &[&str] = &[
        "mrn", "first_name", "last_name", "dob", "gender", "ssn", "email", "phone", "street",
        "city", "state", "zip_code", "insurance_provider", "policy_number", "group_number",
        "emergency_contact_name", "emergency_contact_relationship", "emergency_contact_phone",
        "created_at", "updated_at",
    ];
    insert_chunks_returning(
        tx,
        "patients",
        COLUMNS,
        on_existing,
        patients,
        |q, p, now| {
            q.bind(p.mrn.as_str())
                .bind(&p.first_name)
                .bind(&p.last_name)
                .bind(p.dob.to_string())
                .bind(p.gender.map(Gender::as_str))
                .bind(&p.ssn)
                .bind(&p.email)
                .bind(&p.phone)
                .bind(&p.street)
                .bind(&p.city)
                .bind(&p.state)
                .bind(&p.zip_code)
                .bind(&p.insurance_provider)
                .bind(&p.policy_number)
                .bind(&p.group_number)
                .bind(&p.emergency_contact_name)
                .bind(&p.emergency_contact_relationship)
                .bind(&p.emergency_contact_phone)
                .bind(now)
                .bind(now)
        },
    )
    .await
}

/// Inserts appointments whose patients and providers are in the maps (else `NotFound`). Times must parse.
pub async fn insert_appointments(
    tx: &mut Tx<'_>,
    appointments: &[Appointment],
    patient_ids: &RowIds,
    provider_ids: &RowIds,
    on_existing: OnExisting,
) -> Result<u64, StoreError> {
    #[rustfmt::skip]
    const COLUMNS: &[&str] = &[
        "appointment_id", "patient_id", "provider_id", "appointment_date", "appointment_time",
        "slot_time", "duration_minutes", "appointment_type", "department", "location", "status",
        "reason", "notes", "created_at", "updated_at",
    ];
    insert_chunks(
        tx,
        "appointments",
        COLUMNS,
        on_existing,
        appointments,
        |q, a, now| {
            let time = &a.time;
            Ok(q.bind(a.appointment_id.as_str())
                .bind(row_id(patient_ids, a.patient_mrn.as_str(), "patient")?)
                .bind(row_id(provider_ids, a.provider_npi.as_str(), "provider")?)
                .bind(a.date.to_string())
                .bind(a.time.written())
                .bind(time.slot_text())
                .bind(a.duration_minutes)
                .bind(&a.appointment_type)
                .bind(&a.department)
                .bind(&a.location)
                .bind(a.status.as_str())
                .bind(&a.reason)
                .bind(&a.notes)
                .bind(now)
                .bind(now))
        },
    )
    .await
}

pub async fn insert_medications(
    tx: &mut Tx<'_>,
    medications: &[Medication],
    patient_ids: &RowIds,
    on_existing: OnExisting,
) -> Result<u64, StoreError> {
    #[rustfmt::skip]
    const COLUMNS: &[&str] = &[
        "medication_id", "patient_id", "name", "dosage", "frequency", "route", "prescribed_date",
        "prescriber", "status", "refills_remaining", "notes", "created_at", "updated_at",
    ];
    insert_chunks(
        tx,
        "medications",
        COLUMNS,
        on_existing,
        medications,
        |q, m, now| {
            Ok(q.bind(m.medication_id.as_str())
                .bind(row_id(patient_ids, m.patient_mrn.as_str(), "patient")?)
                .bind(&m.name)
                .bind(&m.dosage)
                .bind(&m.frequency)
                .bind(&m.route)
                .bind(m.prescribed_date.map(|date| date.to_string()))
                .bind(&m.prescriber)
                .bind(m.status.as_str())
                .bind(m.refills_remaining)
                .bind(&m.notes)
                .bind(now)
                .bind(now))
        },
    )
    .await
}

pub async fn insert_allergies(
    tx: &mut Tx<'_>,
    allergies: &[Allergy],
    patient_ids: &RowIds,
    on_existing: OnExisting,
) -> Result<u64, StoreError> {
    #[rustfmt::skip]
    const COLUMNS: &[&str] = &[
        "allergy_id", "patient_id", "allergen", "reaction", "severity", "onset_date", "status",
        "notes", "created_at", "updated_at",
    ];
    insert_chunks(
        tx,
        "allergies",
        COLUMNS,
        on_existing,
        allergies,
        |q, a, now| {
            Ok(q.bind(a.allergy_id.as_str())
                .bind(row_id(patient_ids, a.patient_mrn.as_str(), "patient")?)
                .bind(&a.allergen)
                .bind(&a.reaction)
                .bind(a.severity.as_str())
                .bind(a.onset_date.map(|date| date.to_string()))
                .bind(a.status.as_str())
                .bind(&a.notes)
                .bind(now)
                .bind(now))
        },
    )
    .await
}

pub async fn insert_vital_signs(
    tx: &mut Tx<'_>,
    vitals: &[VitalSigns],
    patient_ids: &RowIds,
    on_existing: OnExisting,
) -> Result<u64, StoreError> {
    #[rustfmt::skip]
    const COLUMNS: &[&str] = &[
        "vital_id", "patient_id", "recorded_date", "systolic_bp", "diastolic_bp", "heart_rate",
        "temperature", "respiratory_rate", "oxygen_saturation", "weight", "height", "bmi",
        "recorded_by", "notes", "created_at",
    ];
    insert_chunks(
        tx,
        "vital_signs",
        COLUMNS,
        on_existing,
        vitals,
        |q, v, now| {
            Ok(q.bind(v.vital_id.as_str())
                .bind(row_id(patient_ids, v.patient_mrn.as_str(), "patient")?)
                .bind(v.recorded_date.to_string())
                .bind(v.systolic_bp)
                .bind(v.diastolic_bp)
                .bind(v.heart_rate)
                .bind(Float8(v.temperature))
                .bind(v.respiratory_rate)
                .bind(v.oxygen_saturation)
                .bind(Float8(v.weight))
                .bind(Float8(v.height))
                .bind(Float8(v.bmi))
                .bind(&v.recorded_by)
                .bind(&v.notes)
                .bind(now))
        },
    )
    .await
}

pub async fn insert_lab_results(
    tx: &mut Tx<'_>,
    labs: &[LabResult],
    patient_ids: &RowIds,
    on_existing: OnExisting,
) -> Result<u64, StoreError> {
    #[rustfmt::skip]
    const COLUMNS: &[&str] = &[
        "order_id", "patient_id", "test_name", "ordered_date", "collected_date", "resulted_date",
        "status", "ordered_by", "results_json", "created_at", "updated_at",
    ];
    insert_chunks(
        tx,
        "lab_results",
        COLUMNS,
        on_existing,
        labs,
        |q, l, now| {
            Ok(q.bind(l.order_id.as_str())
                .bind(row_id(patient_ids, l.patient_mrn.as_str(), "patient")?)
                .bind(&l.test_name)
                .bind(l.ordered_date.map(|date| date.to_string()))
                .bind(l.collected_date.map(|date| date.to_string()))
                .bind(l.resulted_date.map(|date| date.to_string()))
                .bind(l.status.as_str())
                .bind(&l.ordered_by)
                .bind(&l.results_json)
                .bind(now)
                .bind(now))
        },
    )
    .await
}
