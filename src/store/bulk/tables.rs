//! The per-table inserts of [`super`]: column lists and how each record binds. The tables of a
//! patient's records ([`PatientTable`]) also serve the one-record inserts of the tools.

use super::{AnyQuery, OnExisting, RowIds, insert_chunks, insert_chunks_returning, row_id};
use crate::domain::clinical::Gender;
use crate::domain::clinical::{
    Allergy, Appointment, LabResult, Medication, Patient, Provider, VitalSigns,
};
use crate::domain::ids::Mrn;
use crate::store::tx::Tx;
use crate::store::{StoreError, now_text};

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

/// A table of records that belong to one patient: its column list (the record's public id first,
/// `created_at`/`updated_at` included, `patient_id` left out) and how a record binds to it. The bulk
/// insert ([`insert_children`]) and the one-record insert ([`insert_for_patient`]) share it, so a table's
/// columns are written once.
pub struct PatientTable<T: 'static> {
    pub name: &'static str,
    pub columns: &'static [&'static str],
    pub bind: for<'q> fn(AnyQuery<'q>, &'q T, &'q str) -> AnyQuery<'q>,
    /// The patient a record belongs to.
    pub patient: fn(&T) -> &Mrn,
}

#[rustfmt::skip]
pub const MEDICATIONS: PatientTable<Medication> = PatientTable {
    name: "medications",
    columns: &[
        "medication_id", "name", "dosage", "frequency", "route", "prescribed_date", "prescriber",
        "status", "refills_remaining", "notes", "created_at", "updated_at",
    ],
    bind: |q, m, now| {
        q.bind(m.medication_id.as_str())
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
            .bind(now)
    },
    patient: |m| &m.patient_mrn,
};

#[rustfmt::skip]
pub const ALLERGIES: PatientTable<Allergy> = PatientTable {
    name: "allergies",
    columns: &[
        "allergy_id", "allergen", "reaction", "severity", "onset_date", "status", "notes",
        "created_at", "updated_at",
    ],
    bind: |q, a, now| {
        q.bind(a.allergy_id.as_str())
            .bind(&a.allergen)
            .bind(&a.reaction)
            .bind(a.severity.as_str())
            .bind(a.onset_date.map(|date| date.to_string()))
            .bind(a.status.as_str())
            .bind(&a.notes)
            .bind(now)
            .bind(now)
    },
    patient: |a| &a.patient_mrn,
};

#[rustfmt::skip]
pub const VITAL_SIGNS: PatientTable<VitalSigns> = PatientTable {
    name: "vital_signs",
    columns: &[
        "vital_id", "recorded_date", "systolic_bp", "diastolic_bp", "heart_rate", "temperature",
        "respiratory_rate", "oxygen_saturation", "weight", "height", "bmi", "recorded_by", "notes",
        "created_at",
    ],
    bind: |q, v, now| {
        q.bind(v.vital_id.as_str())
            .bind(v.recorded_date.to_string())
            .bind(v.systolic_bp)
            .bind(v.diastolic_bp)
            .bind(v.heart_rate)
            .bind(v.temperature)
            .bind(v.respiratory_rate)
            .bind(v.oxygen_saturation)
            .bind(v.weight)
            .bind(v.height)
            .bind(v.bmi)
            .bind(&v.recorded_by)
            .bind(&v.notes)
            .bind(now)
    },
    patient: |v| &v.patient_mrn,
};

#[rustfmt::skip]
pub const LAB_RESULTS: PatientTable<LabResult> = PatientTable {
    name: "lab_results",
    columns: &[
        "order_id", "test_name", "ordered_date", "collected_date", "resulted_date", "status",
        "ordered_by", "results_json", "created_at", "updated_at",
    ],
    bind: |q, l, now| {
        q.bind(l.order_id.as_str())
            .bind(&l.test_name)
            .bind(l.ordered_date.map(|date| date.to_string()))
            .bind(l.collected_date.map(|date| date.to_string()))
            .bind(l.resulted_date.map(|date| date.to_string()))
            .bind(l.status.as_str())
            .bind(&l.ordered_by)
            .bind(&l.results_json)
            .bind(now)
            .bind(now)
    },
    patient: |l| &l.patient_mrn,
};

/// Inserts `records` of patients whose row ids are in `patient_ids` (else `NotFound`).
pub async fn insert_children<T>(
    tx: &mut Tx<'_>,
    table: &PatientTable<T>,
    records: &[T],
    patient_ids: &RowIds,
    on_existing: OnExisting,
) -> Result<u64, StoreError> {
    let mut columns = table.columns.to_vec();
    columns.push("patient_id");
    insert_chunks(
        tx,
        table.name,
        &columns,
        on_existing,
        records,
        |q, record, now| {
            let patient = row_id(patient_ids, (table.patient)(record).as_str(), "patient")?;
            Ok((table.bind)(q, record, now).bind(patient))
        },
    )
    .await
}

/// Inserts one record of the patient `mrn` in one statement
/// (`INSERT … SELECT $1, …, p.id FROM patients p WHERE p.mrn = $n`); `NotFound { what: "patient" }` when
/// there is no such patient.
pub async fn insert_for_patient<T>(
    tx: &mut Tx<'_>,
    table: &PatientTable<T>,
    record: &T,
    mrn: &Mrn,
) -> Result<(), StoreError> {
    let count = table.columns.len();
    let values = (1..=count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "INSERT INTO {} ({}, patient_id) SELECT {values}, p.id FROM patients p WHERE p.mrn = ${}",
        table.name,
        table.columns.join(", "),
        count + 1
    );
    let now = now_text();
    let query = (table.bind)(sqlx::query(sqlx::AssertSqlSafe(sql)), record, &now);
    let result = query.bind(mrn.as_str()).execute(&mut *tx.conn()).await?;
    if result.rows_affected() == 0 {
        return Err(StoreError::NotFound { what: "patient" });
    }
    Ok(())
}
