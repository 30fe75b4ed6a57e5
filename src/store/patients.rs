//! Patients: lookup by MRN, inserts, demographic updates and deletes (which cascade to every record).
//! Search lives in [`super::patient_search`].

use sqlx::{Any, Executor};

use super::direct::from_sqlite;
use super::rows::Columns;
use super::tx::Tx;
use super::{Store, StoreError, fetch_by_public_id, now_text, parsed, parsed_optional};
use crate::domain::clinical::{Gender, Patient, PatientUpdate};
use crate::domain::ids::Mrn;
use crate::domain::time::Date;

pub use super::patient_search::{PatientPage, PatientSearch};

/// The patient columns in the order [`patient_from_row`] reads them.
pub(crate) const PATIENT_COLUMNS: &str = "mrn, first_name, last_name, dob, gender, ssn, email, phone, \
     street, city, state, zip_code, insurance_provider, policy_number, group_number, \
     emergency_contact_name, emergency_contact_relationship, emergency_contact_phone";

/// One patient by MRN on the direct SQLite path (`?1`: rusqlite's placeholder).
static PATIENT_BY_MRN: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| format!("SELECT {PATIENT_COLUMNS} FROM patients WHERE mrn = ?1"));

impl Store {
    /// The patient with this MRN.
    pub async fn patient(&self, mrn: &Mrn) -> Result<Patient, StoreError> {
        if let Some(direct) = self.direct() {
            // A point read by key: in place, without a thread hop (see `store::direct`).
            return direct.run(|connection| {
                let mut statement = connection
                    .prepare_cached(&PATIENT_BY_MRN)
                    .map_err(from_sqlite)?;
                let mut rows = statement.query([mrn.as_str()]).map_err(from_sqlite)?;
                match rows.next().map_err(from_sqlite)? {
                    Some(row) => patient_from_row(row),
                    None => Err(StoreError::NotFound { what: "patient" }),
                }
            });
        }
        let mut lease = self.lease().await?;
        let patient = fetch_patient(&mut *lease, mrn).await;
        lease.settle(patient)
    }

    pub async fn insert_patient(&self, patient: &Patient) -> Result<(), StoreError> {
        let mut conn = self.pool().acquire().await?;
        insert_patient(&mut Tx::new(&mut conn), patient).await
    }

    /// Applies the given changes and returns the patient as stored afterwards.
    pub async fn update_patient(
        &self,
        mrn: &Mrn,
        update: &PatientUpdate,
    ) -> Result<Patient, StoreError> {
        let mut conn = self.pool().acquire().await?;
        update_patient(&mut Tx::new(&mut conn), mrn, update).await
    }

    /// Deletes the patient and, by cascade, their appointments, medications, allergies, vitals and labs.
    pub async fn delete_patient(&self, mrn: &Mrn) -> Result<(), StoreError> {
        let mut conn = self.pool().acquire().await?;
        delete_patient(&mut Tx::new(&mut conn), mrn).await
    }

    pub async fn count_patients(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM patients")
            .fetch_one(self.pool())
            .await?)
    }
}

/// Inserts a new patient. A taken MRN is `Conflict` on a constraint naming `mrn`.
pub async fn insert_patient(tx: &mut Tx<'_>, patient: &Patient) -> Result<(), StoreError> {
    let conn = tx.conn();
    let now = now_text();
    sqlx::query(
        "INSERT INTO patients (mrn, first_name, last_name, dob, gender, ssn, email, phone, street, city, \
         state, zip_code, insurance_provider, policy_number, group_number, emergency_contact_name, \
         emergency_contact_relationship, emergency_contact_phone, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $19)",
    )
    .bind(patient.mrn.as_str())
    .bind(&patient.first_name)
    .bind(&patient.last_name)
    .bind(patient.dob.to_string())
    .bind(patient.gender.map(Gender::as_str))
    .bind(&patient.ssn)
    .bind(&patient.email)
    .bind(&patient.phone)
    .bind(&patient.street)
    .bind(&patient.city)
    .bind(&patient.state)
    .bind(&patient.zip_code)
    .bind(&patient.insurance_provider)
    .bind(&patient.policy_number)
    .bind(&patient.group_number)
    .bind(&patient.emergency_contact_name)
    .bind(&patient.emergency_contact_relationship)
    .bind(&patient.emergency_contact_phone)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Applies the set fields of `update`; `NotFound` when no patient has this MRN.
pub async fn update_patient(
    tx: &mut Tx<'_>,
    mrn: &Mrn,
    update: &PatientUpdate,
) -> Result<Patient, StoreError> {
    let conn = tx.conn();
    let result = sqlx::query(
        "UPDATE patients SET first_name = COALESCE($2, first_name), last_name = COALESCE($3, last_name), \
         dob = COALESCE($4, dob), gender = COALESCE($5, gender), email = COALESCE($6, email), \
         phone = COALESCE($7, phone), street = COALESCE($8, street), city = COALESCE($9, city), \
         state = COALESCE($10, state), zip_code = COALESCE($11, zip_code), \
         insurance_provider = COALESCE($12, insurance_provider), \
         policy_number = COALESCE($13, policy_number), group_number = COALESCE($14, group_number), \
         emergency_contact_name = COALESCE($15, emergency_contact_name), \
         emergency_contact_relationship = COALESCE($16, emergency_contact_relationship), \
         emergency_contact_phone = COALESCE($17, emergency_contact_phone), updated_at = $18 \
         WHERE mrn = $1",
    )
    .bind(mrn.as_str())
    .bind(&update.first_name)
    .bind(&update.last_name)
    .bind(update.dob.map(|dob| dob.to_string()))
    .bind(update.gender.map(Gender::as_str))
    .bind(&update.email)
    .bind(&update.phone)
    .bind(&update.street)
    .bind(&update.city)
    .bind(&update.state)
    .bind(&update.zip_code)
    .bind(&update.insurance_provider)
    .bind(&update.policy_number)
    .bind(&update.group_number)
    .bind(&update.emergency_contact_name)
    .bind(&update.emergency_contact_relationship)
    .bind(&update.emergency_contact_phone)
    .bind(now_text())
    .execute(&mut *conn)
    .await?;
    if result.rows_affected() == 0 {
        return Err(StoreError::NotFound { what: "patient" });
    }
    fetch_patient(&mut *conn, mrn).await
}

/// Deletes a patient and (by `ON DELETE CASCADE`) every record of theirs.
pub async fn delete_patient(tx: &mut Tx<'_>, mrn: &Mrn) -> Result<(), StoreError> {
    let conn = tx.conn();
    let result = sqlx::query("DELETE FROM patients WHERE mrn = $1")
        .bind(mrn.as_str())
        .execute(&mut *conn)
        .await?;
    if result.rows_affected() == 0 {
        return Err(StoreError::NotFound { what: "patient" });
    }
    Ok(())
}

/// Reads one patient through any executor (pool, connection or transaction).
pub(crate) async fn fetch_patient<'c, E>(executor: E, mrn: &Mrn) -> Result<Patient, StoreError>
where
    E: Executor<'c, Database = Any>,
{
    let select = format!("SELECT {PATIENT_COLUMNS} FROM patients");
    fetch_by_public_id(
        executor,
        &select,
        "mrn",
        mrn.as_str(),
        "patient",
        patient_from_row,
    )
    .await
}

/// The internal row id of a patient, or `NotFound { what: "patient" }`.
pub(crate) async fn patient_row_id<'c, E>(executor: E, mrn: &Mrn) -> Result<i64, StoreError>
where
    E: Executor<'c, Database = Any>,
{
    sqlx::query_scalar("SELECT id FROM patients WHERE mrn = $1")
        .bind(mrn.as_str())
        .fetch_optional(executor)
        .await?
        .ok_or(StoreError::NotFound { what: "patient" })
}

/// Builds a [`Patient`] from a row selected with [`PATIENT_COLUMNS`].
pub(crate) fn patient_from_row(row: &(impl Columns + ?Sized)) -> Result<Patient, StoreError> {
    Ok(Patient {
        mrn: parsed(row, "mrn", Mrn::parse)?,
        first_name: row.text("first_name")?,
        last_name: row.text("last_name")?,
        dob: parsed(row, "dob", |dob| Date::parse("dob", dob))?,
        gender: parsed_optional(row, "gender", Gender::parse)?,
        ssn: row.optional_text("ssn")?,
        email: row.optional_text("email")?,
        phone: row.optional_text("phone")?,
        street: row.optional_text("street")?,
        city: row.optional_text("city")?,
        state: row.optional_text("state")?,
        zip_code: row.optional_text("zip_code")?,
        insurance_provider: row.optional_text("insurance_provider")?,
        policy_number: row.optional_text("policy_number")?,
        group_number: row.optional_text("group_number")?,
        emergency_contact_name: row.optional_text("emergency_contact_name")?,
        emergency_contact_relationship: row.optional_text("emergency_contact_relationship")?,
        emergency_contact_phone: row.optional_text("emergency_contact_phone")?,
    })
}
