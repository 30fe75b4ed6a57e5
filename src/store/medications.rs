//! Medications: a patient's list (optionally by status), lookup by id, prescribing and discontinuing.

use sqlx::any::AnyRow;
use sqlx::{Any, Executor, Row};

use super::tx::Tx;
use super::{
    Store, StoreError, fetch_by_public_id, now_text, parsed, parsed_optional, patient_records,
};
use crate::domain::clinical::{Medication, MedicationStatus};
use crate::domain::ids::{Mrn, RecordId};
use crate::domain::time::Date;

pub(crate) const MEDICATION_SELECT: &str = "SELECT m.medication_id, p.mrn AS patient_mrn, m.name, m.dosage, \
     m.frequency, m.route, m.prescribed_date, m.prescriber, m.status, m.refills_remaining, m.notes \
     FROM medications m JOIN patients p ON p.id = m.patient_id";

impl Store {
    /// A patient's medications, newest prescription first; `NotFound` when the patient does not exist.
    pub async fn medications(
        &self,
        mrn: &Mrn,
        status: Option<MedicationStatus>,
    ) -> Result<Vec<Medication>, StoreError> {
        let sql = format!(
            "{MEDICATION_SELECT} WHERE m.patient_id = $1 AND ($2 IS NULL OR m.status = $2) \
             ORDER BY m.prescribed_date DESC, m.medication_id"
        );
        let status = status.map(|status| status.as_str().to_owned());
        patient_records(self, mrn, sql, |q| q.bind(status), medication_from_row).await
    }

    pub async fn medication(&self, medication_id: &RecordId) -> Result<Medication, StoreError> {
        fetch_medication(self.pool(), medication_id).await
    }

    pub async fn insert_medication(&self, medication: &Medication) -> Result<(), StoreError> {
        let mut conn = self.pool().acquire().await?;
        insert_medication(&mut Tx::new(&mut conn), medication).await
    }

    /// Discontinues a medication (see [`discontinue_medication`]).
    pub async fn discontinue_medication(
        &self,
        medication_id: &RecordId,
        reason: Option<&str>,
    ) -> Result<Medication, StoreError> {
        let mut conn = self.pool().acquire().await?;
        discontinue_medication(&mut Tx::new(&mut conn), medication_id, reason).await
    }
}

/// Inserts a medication for `medication.patient_mrn`; `NotFound { what: "patient" }` when there is none.
pub async fn insert_medication(tx: &mut Tx<'_>, medication: &Medication) -> Result<(), StoreError> {
    super::bulk::insert_for_patient(
        tx,
        &super::bulk::MEDICATIONS,
        medication,
        &medication.patient_mrn,
    )
    .await
}

/// Marks a medication discontinued; `reason`, when given, is kept in the notes as
/// `Discontinued: <reason>`. `NotFound` for an unknown id; `Conflict { constraint: "medication_status" }`
/// when it is already discontinued.
pub async fn discontinue_medication(
    tx: &mut Tx<'_>,
    medication_id: &RecordId,
    reason: Option<&str>,
) -> Result<Medication, StoreError> {
    let conn = tx.conn();
    let note = reason
        .map(str::trim)
        .filter(|reason| !reason.is_empty())
        .map(|reason| format!("Discontinued: {reason}"));
    let result = sqlx::query(
        "UPDATE medications SET status = 'discontinued', notes = COALESCE($2, notes), updated_at = $3 \
         WHERE medication_id = $1 AND status <> 'discontinued'",
    )
    .bind(medication_id.as_str())
    .bind(note)
    .bind(now_text())
    .execute(&mut *conn)
    .await?;
    let medication = fetch_medication(&mut *conn, medication_id).await?;
    if result.rows_affected() == 0 {
        return Err(StoreError::Conflict {
            constraint: "medication_status".to_owned(),
        });
    }
    Ok(medication)
}

pub(crate) async fn fetch_medication<'c, E>(
    executor: E,
    medication_id: &RecordId,
) -> Result<Medication, StoreError>
where
    E: Executor<'c, Database = Any>,
{
    fetch_by_public_id(
        executor,
        MEDICATION_SELECT,
        "m.medication_id",
        medication_id.as_str(),
        "medication",
        medication_from_row,
    )
    .await
}

pub(crate) fn medication_from_row(row: &AnyRow) -> Result<Medication, StoreError> {
    Ok(Medication {
        medication_id: parsed(row, "medication_id", |id| {
            RecordId::parse("medication_id", id)
        })?,
        patient_mrn: parsed(row, "patient_mrn", Mrn::parse)?,
        name: row.try_get("name")?,
        dosage: row.try_get("dosage")?,
        frequency: row.try_get("frequency")?,
        route: row.try_get("route")?,
        prescribed_date: parsed_optional(row, "prescribed_date", |date| {
            Date::parse("prescribed_date", date)
        })?,
        prescriber: row.try_get("prescriber")?,
        status: parsed(row, "status", MedicationStatus::parse)?,
        refills_remaining: row.try_get("refills_remaining")?,
        notes: row.try_get("notes")?,
    })
}
