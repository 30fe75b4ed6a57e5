//! Bulk loading for import and synthetic data: multi-row `INSERT … VALUES (…), (…) RETURNING` statements,
//! run by the caller inside one transaction. Parents return their row ids, which the children use directly.

use std::collections::HashMap;

use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::{Any, AnyConnection, Row};

use super::{StoreError, now_text};
use crate::domain::clinical::{
    Allergy, Appointment, LabResult, Medication, Patient, Provider, VitalSigns,
};
use crate::domain::time::AppointmentTime;

/// Row ids by public key (MRN or NPI text), as returned by the parent inserts.
pub type RowIds = HashMap<String, i64>;

/// What a bulk insert does with a record whose public key (MRN, NPI, record id) is already stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnExisting {
    /// Fail with `Conflict` (the caller's transaction then rolls back).
    Fail,
    /// Leave the stored record as it is and skip this one (`ON CONFLICT (key) DO NOTHING`).
    Skip,
}

impl OnExisting {
    fn clause(self, key: &str) -> String {
        match self {
            Self::Fail => String::new(),
            Self::Skip => format!(" ON CONFLICT ({key}) DO NOTHING"),
        }
    }
}

/// Most bound values in one statement (SQLite allows 32,766, PostgreSQL 65,535).
const MAX_VALUES_PER_STATEMENT: usize = 30_000;

type AnyQuery<'q> = Query<'q, Any, AnyArguments>;

/// How bound values are written. SQLite looks a named parameter (`$7`) up by a linear scan, which makes
/// binding 30,000 of them quadratic; anonymous `?` parameters bind in constant time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placeholders {
    Numbered,
    Anonymous,
}

impl Placeholders {
    fn of(conn: &AnyConnection) -> Self {
        if conn.backend_name() == "SQLite" {
            Self::Anonymous
        } else {
            Self::Numbered
        }
    }

    /// `count` placeholders separated by `, `.
    fn list(self, count: usize, first: usize) -> String {
        let mut text = String::with_capacity(count * 4);
        for n in first..first + count {
            if n > first {
                text.push_str(", ");
            }
            match self {
                Self::Anonymous => text.push('?'),
                Self::Numbered => {
                    text.push('$');
                    text.push_str(&n.to_string());
                }
            }
        }
        text
    }
}

/// `INSERT INTO {table} ({columns}) VALUES (…), (…) {suffix}` for `rows` rows.
fn insert_sql(
    placeholders: Placeholders,
    table: &str,
    columns: &[&str],
    rows: usize,
    suffix: &str,
) -> String {
    let mut sql = format!("INSERT INTO {table} ({}) VALUES ", columns.join(", "));
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        sql.push_str(&placeholders.list(columns.len(), row * columns.len() + 1));
        sql.push(')');
    }
    sql.push_str(suffix);
    sql
}

fn rows_per_statement(columns: &[&str]) -> usize {
    (MAX_VALUES_PER_STATEMENT / columns.len()).max(1)
}

/// Runs one multi-row insert per chunk of `records`, binding each record with `bind`. The first column
/// is the public key. Returns how many rows were inserted.
async fn insert_chunks<T>(
    conn: &mut AnyConnection,
    table: &str,
    columns: &[&str],
    on_existing: OnExisting,
    records: &[T],
    bind: impl for<'q> Fn(AnyQuery<'q>, &'q T, &'q str) -> Result<AnyQuery<'q>, StoreError>,
) -> Result<u64, StoreError> {
    let now = now_text();
    let suffix = on_existing.clause(columns[0]);
    let mut inserted = 0;
    for chunk in records.chunks(rows_per_statement(columns)) {
        let sql = insert_sql(Placeholders::of(conn), table, columns, chunk.len(), &suffix);
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for record in chunk {
            query = bind(query, record, &now)?;
        }
        inserted += query.execute(&mut *conn).await?.rows_affected();
    }
    Ok(inserted)
}

/// Like [`insert_chunks`], collecting `RETURNING id, {key}` of the inserted rows into a map.
async fn insert_chunks_returning<T>(
    conn: &mut AnyConnection,
    table: &str,
    columns: &[&str],
    on_existing: OnExisting,
    records: &[T],
    bind: impl for<'q> Fn(AnyQuery<'q>, &'q T, &'q str) -> AnyQuery<'q>,
) -> Result<RowIds, StoreError> {
    let now = now_text();
    let key = columns[0];
    let suffix = format!("{} RETURNING id, {key}", on_existing.clause(key));
    let mut ids = RowIds::with_capacity(records.len());
    for chunk in records.chunks(rows_per_statement(columns)) {
        let sql = insert_sql(Placeholders::of(conn), table, columns, chunk.len(), &suffix);
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for record in chunk {
            query = bind(query, record, &now);
        }
        for row in query.fetch_all(&mut *conn).await? {
            ids.insert(row.try_get(key)?, row.try_get("id")?);
        }
    }
    Ok(ids)
}

/// Row ids of the stored parents among `keys` (MRNs of `patients` or NPIs of `providers`).
pub async fn existing_row_ids(
    conn: &mut AnyConnection,
    parent: Parent,
    keys: &[String],
) -> Result<RowIds, StoreError> {
    let (table, key) = match parent {
        Parent::Patients => ("patients", "mrn"),
        Parent::Providers => ("providers", "npi"),
    };
    let mut ids = RowIds::with_capacity(keys.len());
    for chunk in keys.chunks(MAX_VALUES_PER_STATEMENT) {
        let placeholders = Placeholders::of(conn).list(chunk.len(), 1);
        let sql = format!("SELECT id, {key} FROM {table} WHERE {key} IN ({placeholders})");
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for value in chunk {
            query = query.bind(value.as_str());
        }
        for row in query.fetch_all(&mut *conn).await? {
            ids.insert(row.try_get(key)?, row.try_get("id")?);
        }
    }
    Ok(ids)
}

/// How many patients and providers are stored (to refuse an import into a database in use).
pub async fn parent_counts(conn: &mut AnyConnection) -> Result<(i64, i64), StoreError> {
    let row = sqlx::query(
        "SELECT (SELECT COUNT(*) FROM patients) AS patients, (SELECT COUNT(*) FROM providers) AS providers",
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok((row.try_get("patients")?, row.try_get("providers")?))
}

/// The parent tables whose row ids children refer to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parent {
    Patients,
    Providers,
}

fn row_id(ids: &RowIds, key: &str, what: &'static str) -> Result<i64, StoreError> {
    ids.get(key).copied().ok_or(StoreError::NotFound { what })
}

pub async fn insert_providers(
    conn: &mut AnyConnection,
    providers: &[Provider],
    on_existing: OnExisting,
) -> Result<RowIds, StoreError> {
    #[rustfmt::skip]
    const COLUMNS: &[&str] = &[
        "npi", "name", "specialty", "department", "phone", "email",
        "accepting_new_patients", "created_at", "updated_at",
    ];
    insert_chunks_returning(
        conn,
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
    conn: &mut AnyConnection,
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
        conn,
        "patients",
        COLUMNS,
        on_existing,
        patients,
        |q, p, now| {
            q.bind(p.mrn.as_str())
                .bind(&p.first_name)
                .bind(&p.last_name)
                .bind(&p.dob)
                .bind(&p.gender)
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
    conn: &mut AnyConnection,
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
        conn,
        "appointments",
        COLUMNS,
        on_existing,
        appointments,
        |q, a, now| {
            let time = AppointmentTime::parse(&a.time).map_err(|e| super::invalid("time", e))?;
            Ok(q.bind(a.appointment_id.as_str())
                .bind(row_id(patient_ids, a.patient_mrn.as_str(), "patient")?)
                .bind(row_id(provider_ids, a.provider_npi.as_str(), "provider")?)
                .bind(&a.date)
                .bind(&a.time)
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
    conn: &mut AnyConnection,
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
        conn,
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
                .bind(&m.prescribed_date)
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
    conn: &mut AnyConnection,
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
        conn,
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
                .bind(&a.onset_date)
                .bind(a.status.as_str())
                .bind(&a.notes)
                .bind(now)
                .bind(now))
        },
    )
    .await
}

pub async fn insert_vital_signs(
    conn: &mut AnyConnection,
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
        conn,
        "vital_signs",
        COLUMNS,
        on_existing,
        vitals,
        |q, v, now| {
            Ok(q.bind(v.vital_id.as_str())
                .bind(row_id(patient_ids, v.patient_mrn.as_str(), "patient")?)
                .bind(&v.recorded_date)
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
                .bind(now))
        },
    )
    .await
}

pub async fn insert_lab_results(
    conn: &mut AnyConnection,
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
        conn,
        "lab_results",
        COLUMNS,
        on_existing,
        labs,
        |q, l, now| {
            Ok(q.bind(l.order_id.as_str())
                .bind(row_id(patient_ids, l.patient_mrn.as_str(), "patient")?)
                .bind(&l.test_name)
                .bind(&l.ordered_date)
                .bind(&l.collected_date)
                .bind(&l.resulted_date)
                .bind(l.status.as_str())
                .bind(&l.ordered_by)
                .bind(&l.results_json)
                .bind(now)
                .bind(now))
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_row_statements_number_their_placeholders() {
        assert_eq!(
            insert_sql(Placeholders::Numbered, "t", &["a", "b"], 2, " RETURNING id"),
            "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4) RETURNING id"
        );
        assert_eq!(
            insert_sql(Placeholders::Anonymous, "t", &["a", "b"], 2, ""),
            "INSERT INTO t (a, b) VALUES (?, ?), (?, ?)"
        );
        assert_eq!(rows_per_statement(&["a"; 20]), 1500);
    }
}
